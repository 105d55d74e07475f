//! How SyncUpdates decides what to return (WSUS-PROTOCOL.md §3.6): the client's scope, the
//! prerequisite filter against what it reports installed, pages of at most 30 updates within a
//! byte budget, out-of-scope and changed revisions.

use super::catalog::{Catalog, Deployments, Kind, MISSING};
use super::offers::Offers;
use super::prerequisites::{IdSet, Memo};
use crate::catalog::Guid;
use crate::wsus::client::{Deployment, SyncParameters};

pub const PAGE_UPDATES: usize = 30;
/// Core fragment bytes per page; a single larger fragment still goes alone.
pub const PAGE_BYTES: u64 = 1 << 20;

/// The answer before it is written: revisions (as catalog indices) with their deployments.
#[derive(Debug, Default)]
pub struct Page {
    pub new_updates: Vec<(u32, Deployment)>,
    pub out_of_scope: Vec<i32>,
    pub changed: Vec<(u32, Deployment)>,
    pub truncated: bool,
}

/// Who is asking: what its groups are offered, and what it saw last.
pub struct Client<'a> {
    pub offers: &'a Offers,
    pub seen_stamp: i64,
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
    let mut memo = Memo::new(&catalog.signatures, &installed);
    let offers = client.offers;

    let mut page = Page::default();
    let mut bytes = 0u64;
    'runs: for run in &catalog.runs {
        if !catalog.gates.satisfied(run.gate, &installed) {
            continue;
        }
        for pos in run.start as usize..run.end as usize {
            let id = catalog.page_order_ids[pos];
            if cached.contains(id) || !offers.offered_at(pos) || !memo.satisfied(catalog.page_order_signatures[pos]) {
                continue;
            }
            let i = catalog.page_order[pos];
            if !in_scope(i) {
                continue;
            }
            let Some(d) = offers.get(i) else { continue };
            let size = core_size(i);
            if page.new_updates.len() >= PAGE_UPDATES || (!page.new_updates.is_empty() && bytes + size > PAGE_BYTES) {
                page.truncated = true;
                break 'runs;
            }
            bytes += size;
            page.new_updates.push((i, d.clone()));
        }
    }

    // Cached revisions the client should forget: unknown here, replaced by a newer revision,
    // declined, out of its groups' scope, or no longer reachable through its prerequisites.
    for &id in params.installed_non_leaf.iter().chain(&params.other_cached) {
        let keep = catalog
            .index_of(id)
            .is_some_and(|i| offers.get(i).is_some() && in_scope(i) && memo.satisfied(catalog.signature_of[i as usize]));
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
        if !cached.contains(rev.revision_id) || !in_scope(i) || !memo.satisfied(catalog.signature_of[i as usize]) {
            continue;
        }
        if let Some(d) = offers.get(i) {
            page.changed.push((i, d.clone()));
        }
    }
    page
}

/// The driver pass: approved drivers matching a device the client reports.
pub fn driver_page(catalog: &Catalog, client: &Client<'_>, params: &SyncParameters, hardware_ids: &dyn Fn(u32) -> Vec<String>) -> Page {
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
        let Some(d) = client.offers.get(i as u32) else { continue };
        if !hardware_ids(i as u32).iter().any(|h| device_ids.contains(&h.to_ascii_lowercase())) {
            continue;
        }
        if page.new_updates.len() >= PAGE_UPDATES {
            page.truncated = true;
            break;
        }
        page.new_updates.push((i as u32, d.clone()));
    }
    page
}
