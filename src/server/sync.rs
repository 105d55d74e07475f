//! How SyncUpdates decides what to return (WSUS-PROTOCOL.md §3.6): the client's scope, the
//! prerequisite filter against what it reports installed, pages of at most 30 updates within a
//! byte budget, out-of-scope and changed revisions.

use super::catalog::{Catalog, Deployments, Kind, MISSING, Rev};
use crate::catalog::Guid;
use crate::wsus::client::{Deployment, SyncParameters};

pub const PAGE_UPDATES: usize = 30;
/// Core fragment bytes per page; a single larger fragment still goes alone.
pub const PAGE_BYTES: u64 = 1 << 20;

/// A set of revision ids, as a bitmap (ids are dense).
pub struct IdSet {
    bits: Vec<u64>,
}

impl IdSet {
    pub fn new(max_id: i32) -> IdSet {
        IdSet { bits: vec![0; (max_id.max(0) as usize >> 6) + 1] }
    }
    pub fn insert(&mut self, id: i32) {
        if id >= 0 && ((id as usize) >> 6) < self.bits.len() {
            self.bits[id as usize >> 6] |= 1 << (id & 63);
        }
    }
    pub fn contains(&self, id: i32) -> bool {
        id >= 0 && self.bits.get(id as usize >> 6).is_some_and(|w| w & (1 << (id & 63)) != 0)
    }
}

/// The answer before it is written: revisions (as catalog indices) with their deployments.
#[derive(Debug, Default)]
pub struct Page {
    pub new_updates: Vec<(u32, Deployment)>,
    pub out_of_scope: Vec<i32>,
    pub changed: Vec<(u32, Deployment)>,
    pub truncated: bool,
}

/// Who is asking: effective groups (deepest first), and what it saw last.
pub struct Client<'a> {
    pub groups: &'a [(Guid, usize)],
    pub seen_stamp: i64,
}

fn implicit(action: &'static str, rev: &Rev) -> Deployment {
    Deployment { id: rev.revision_id, action, deadline: None, last_change: rev.date.clone() }
}

/// The deployment a revision has for this client, or `None` when it is out of scope.
pub fn deployment(catalog: &Catalog, deployments: &Deployments, client: &Client<'_>, idx: u32) -> Option<Deployment> {
    let rev = &catalog.revs[idx as usize];
    if !rev.offerable {
        return None;
    }
    match rev.kind {
        Kind::Category | Kind::Detectoid => rev.is_latest.then(|| implicit("Evaluate", rev)),
        Kind::Software | Kind::Driver if rev.top_level => {
            if deployments.declined.contains(&rev.update_id) {
                return None;
            }
            match deployments.approval_for(&rev.update_id, client.groups) {
                Some(a) if a.action == "Block" => None,
                Some(a) => {
                    Some(Deployment { id: a.deployment_id, action: a.action, deadline: a.deadline.clone(), last_change: a.date.clone() })
                }
                // Not approved: clients evaluate it and report whether they need it.
                None if rev.kind == Kind::Software => Some(implicit("PreDeploymentCheck", rev)),
                None => None,
            }
        }
        _ => {
            // A bundle member goes with any bundle in scope; software another update requires
            // is evaluated.
            if !rev.parents.is_empty() {
                let carried = rev.parents.iter().any(|&p| {
                    let parent = &catalog.revs[p as usize];
                    parent.is_latest && deployment(catalog, deployments, client, p).is_some()
                });
                carried.then(|| implicit("Bundle", rev))
            } else if rev.is_latest && !rev.is_leaf && !deployments.declined.contains(&rev.update_id) {
                Some(implicit("Evaluate", rev))
            } else {
                None
            }
        }
    }
}

fn eligible(catalog: &Catalog, rev: &Rev, installed: &IdSet) -> bool {
    rev.clauses.iter().all(|clause| clause.iter().any(|&m| m != MISSING && installed.contains(catalog.revs[m as usize].revision_id)))
}

/// The revisions a category-filtered scan may see: the filter categories and their ancestors,
/// and the updates in those categories with what they need.
fn filtered_scope(catalog: &Catalog, filter: &[Guid]) -> Vec<bool> {
    let mut keep = vec![false; catalog.revs.len()];
    let wanted: Vec<u32> = filter.iter().filter_map(|g| catalog.latest_by_update.get(g).copied()).collect();
    let mut queue: Vec<u32> = wanted.clone();
    for (i, r) in catalog.revs.iter().enumerate() {
        if r.top_level && r.categories.iter().any(|c| wanted.contains(c)) {
            queue.push(i as u32);
        }
    }
    while let Some(i) = queue.pop() {
        if std::mem::replace(&mut keep[i as usize], true) {
            continue;
        }
        let r = &catalog.revs[i as usize];
        queue.extend(r.clauses.iter().flatten().copied().filter(|&m| m != MISSING));
        queue.extend(r.children.iter().copied());
    }
    keep
}

/// One SyncUpdates call of the software pass.
pub fn software_page(
    catalog: &Catalog,
    deployments: &Deployments,
    client: &Client<'_>,
    params: &SyncParameters,
    core_size: &dyn Fn(u32) -> u64,
) -> Page {
    let mut installed = IdSet::new(catalog.max_revision_id);
    let mut cached = IdSet::new(catalog.max_revision_id);
    for &id in &params.installed_non_leaf {
        installed.insert(id);
        cached.insert(id);
    }
    for &id in &params.other_cached {
        cached.insert(id);
    }
    let scope = (!params.filter_categories.is_empty()).then(|| filtered_scope(catalog, &params.filter_categories));
    let in_scope = |i: u32| scope.as_ref().is_none_or(|s| s[i as usize]);

    let mut page = Page::default();
    let mut bytes = 0u64;
    for &i in &catalog.page_order {
        let rev = &catalog.revs[i as usize];
        if cached.contains(rev.revision_id) || !in_scope(i) || !eligible(catalog, rev, &installed) {
            continue;
        }
        let Some(d) = deployment(catalog, deployments, client, i) else { continue };
        let size = core_size(i);
        if page.new_updates.len() >= PAGE_UPDATES || (!page.new_updates.is_empty() && bytes + size > PAGE_BYTES) {
            page.truncated = true;
            break;
        }
        bytes += size;
        page.new_updates.push((i, d));
    }

    // Cached revisions the client should forget: unknown here, replaced by a newer revision,
    // declined, out of its groups' scope, or no longer reachable through its prerequisites.
    for &id in params.installed_non_leaf.iter().chain(&params.other_cached) {
        let keep = catalog.by_revision_id.get(&id).is_some_and(|&i| {
            let rev = &catalog.revs[i as usize];
            in_scope(i) && eligible(catalog, rev, &installed) && deployment(catalog, deployments, client, i).is_some()
        });
        if !keep {
            page.out_of_scope.push(id);
        }
    }

    // Cached revisions whose deployment changed since the client last looked.
    let mut seen = std::collections::HashSet::new();
    for (stamp, update) in deployments.changes.iter().rev() {
        if *stamp <= client.seen_stamp {
            break;
        }
        if !seen.insert(*update) {
            continue;
        }
        let Some(&i) = catalog.latest_by_update.get(update) else { continue };
        let rev = &catalog.revs[i as usize];
        if !cached.contains(rev.revision_id) || !in_scope(i) || !eligible(catalog, rev, &installed) {
            continue;
        }
        if let Some(d) = deployment(catalog, deployments, client, i) {
            page.changed.push((i, d));
        }
    }
    page
}

/// The driver pass: approved drivers matching a device the client reports.
pub fn driver_page(
    catalog: &Catalog,
    deployments: &Deployments,
    client: &Client<'_>,
    params: &SyncParameters,
    hardware_ids: &dyn Fn(u32) -> Vec<String>,
) -> Page {
    let mut cached = IdSet::new(catalog.max_revision_id);
    for &id in &params.cached_driver_ids {
        cached.insert(id);
    }
    let device_ids: std::collections::HashSet<String> = params
        .system_spec
        .iter()
        .flatten()
        .flat_map(|d| d.hardware_ids.iter().chain(&d.compatible_ids))
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let mut page = Page::default();
    for (i, rev) in catalog.revs.iter().enumerate() {
        if rev.kind != Kind::Driver || !rev.top_level || cached.contains(rev.revision_id) {
            continue;
        }
        let Some(d) = deployment(catalog, deployments, client, i as u32) else { continue };
        if !hardware_ids(i as u32).iter().any(|h| device_ids.contains(&h.to_ascii_lowercase())) {
            continue;
        }
        if page.new_updates.len() >= PAGE_UPDATES {
            page.truncated = true;
            break;
        }
        page.new_updates.push((i as u32, d));
    }
    page
}
