//! What the server serves from memory: the catalog as a revision graph (prerequisite clauses,
//! bundles, leaf-ness, page order) and the deployments (approvals, declines, groups). Built from
//! the store, swapped whole when the store changes; requests read an `Arc` and never wait.

use super::prerequisites::Signatures;
use crate::admin::Action;
use crate::catalog::Guid;
use crate::store::{CatalogRevision, Store, StoreResult};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Core fragments up to this size are kept in memory (most are; the long tail is read on demand).
pub const IN_MEMORY_CORE_BYTES: u64 = 16 << 10;
/// Bits in an unsatisfiable prerequisite clause member (an update the catalog lacks).
pub const MISSING: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Category,
    Detectoid,
    Software,
    Driver,
}

#[derive(Debug, Clone)]
pub struct Rev {
    pub revision_id: i32,
    pub update_id: Guid,
    pub update_id_text: String,
    pub revision_number: i32,
    pub kind: Kind,
    pub is_latest: bool,
    /// Not expired and not withdrawn by a bundle: may be offered at all.
    pub offerable: bool,
    /// A software or driver update an administrator approves (not a bundle member).
    pub top_level: bool,
    pub is_leaf: bool,
    /// Indices of the newest revision of each update a clause names (`MISSING` when absent).
    pub clauses: Vec<Vec<u32>>,
    pub children: Vec<u32>,
    pub parents: Vec<u32>,
    /// Category revisions it belongs to (product, classification...).
    pub categories: Vec<u32>,
    pub files: Vec<[u8; 20]>,
    /// `2026-10-04`: the date the revision became known here (LastChangeTime of implicit deployments).
    pub date: String,
    /// Escaped Core fragment, when small enough to keep in memory.
    pub core: Option<Arc<str>>,
    pub core_size: u64,
    pub category_kind: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FileEntry {
    pub extension: String,
    pub size: u64,
    pub present: bool,
    /// `PatchingType="Express"`: clients fetch ranges of it instead of the full file.
    pub express: bool,
    pub sha256: Option<[u8; 32]>,
}

#[derive(Debug, Default)]
pub struct Snapshot {
    pub stamp: i64,
    pub revs: Vec<Rev>,
    /// Snapshot index by revision id (`u32::MAX`: not served); see `index_of`.
    revision_index: Vec<u32>,
    pub latest_by_update: HashMap<Guid, u32>,
    pub by_identity: HashMap<(Guid, i32), u32>,
    pub files: HashMap<[u8; 20], FileEntry>,
    pub max_revision_id: i32,
    /// Every offerable revision but drivers (the driver pass has its own walk), in the order
    /// software-pass pages are filled: non-leaf updates (so clients can evaluate the layers
    /// below), then bundle members, then the rest; within each by gate (see `runs`), then
    /// revision id.
    pub page_order: Vec<u32>,
    /// Revision ids and prerequisite signatures in page order: a scan walks these arrays.
    pub page_order_ids: Vec<i32>,
    pub page_order_signatures: Vec<u32>,
    /// Consecutive positions of the page order that share a gate (their first prerequisite
    /// clause): a page skips a whole run when its gate is not installed.
    pub runs: Vec<Run>,
    pub gates: Signatures,
    /// Per revision, its prerequisite signature (revisions with identical prerequisites share one).
    pub signature_of: Vec<u32>,
    pub signatures: Signatures,
}

#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub start: u32,
    pub end: u32,
    pub gate: u32,
}

impl Snapshot {
    /// The catalog index of a revision id, if this server serves it.
    pub fn index_of(&self, revision_id: i32) -> Option<u32> {
        usize::try_from(revision_id)
            .ok()
            .and_then(|i| self.revision_index.get(i))
            .copied()
            .filter(|&i| i != u32::MAX)
    }

    pub fn load(store: &Store) -> StoreResult<Snapshot> {
        let stamp = store.catalog_stamp()?;
        let all = store.catalog_revisions()?;
        let removed = store.removed_update_ids()?;
        let mut cores: HashMap<i32, Arc<str>> = HashMap::new();
        store.for_each_small_core(IN_MEMORY_CORE_BYTES, &mut |id, core| {
            cores.insert(id, Arc::from(crate::wsus::client::escape_fragment(&core)));
        })?;
        let mut files = HashMap::new();
        for f in store.all_files()? {
            files.insert(
                f.sha1.0,
                FileEntry {
                    extension: f.extension.clone(),
                    size: f.size,
                    present: f.present,
                    express: f.is_express(),
                    sha256: f.sha256.map(|d| d.0),
                },
            );
        }
        Ok(Self::build(stamp, all, &removed, cores, files))
    }

    fn build(
        stamp: i64,
        all: Vec<CatalogRevision>,
        removed: &HashSet<String>,
        cores: HashMap<i32, Arc<str>>,
        files: HashMap<[u8; 20], FileEntry>,
    ) -> Snapshot {
        let by_identity_all: HashMap<(String, i32), usize> = all
            .iter()
            .enumerate()
            .map(|(i, r)| ((r.update_id.clone(), r.revision_number), i))
            .collect();
        let (mut revs, index_of) = served_revisions(&all, &by_identity_all, removed, cores);
        let latest_by_update: HashMap<Guid, u32> = revs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_latest)
            .map(|(i, r)| (r.update_id, i as u32))
            .collect();
        link(&mut revs, &all, &index_of, &by_identity_all, &latest_by_update);
        let (signatures, gates, signature_of, gate_of) = signatures_and_gates(&revs);
        let (page_order, runs) = page_order(&revs, &gate_of);
        let max_revision_id = revs.iter().map(|r| r.revision_id).max().unwrap_or(0);
        let mut revision_index = vec![u32::MAX; max_revision_id.max(0) as usize + 1];
        for (i, r) in revs.iter().enumerate() {
            if r.revision_id >= 0 {
                revision_index[r.revision_id as usize] = i as u32;
            }
        }
        Snapshot {
            page_order_ids: page_order.iter().map(|&i| revs[i as usize].revision_id).collect(),
            page_order_signatures: page_order.iter().map(|&i| signature_of[i as usize]).collect(),
            runs,
            gates,
            signature_of,
            signatures,
            stamp,
            revision_index,
            by_identity: revs
                .iter()
                .enumerate()
                .map(|(i, r)| ((r.update_id, r.revision_number), i as u32))
                .collect(),
            max_revision_id,
            latest_by_update,
            revs,
            files,
            page_order,
        }
    }
}

/// The revisions served: the newest of each update, plus the exact revisions bundles name;
/// with the index each got, by position in `all`. Links between them are made by [`link`].
fn served_revisions(
    all: &[CatalogRevision],
    by_identity_all: &HashMap<(String, i32), usize>,
    removed: &HashSet<String>,
    mut cores: HashMap<i32, Arc<str>>,
) -> (Vec<Rev>, HashMap<usize, u32>) {
    let mut wanted: Vec<bool> = all.iter().map(|r| r.is_latest).collect();
    for r in all.iter().filter(|r| r.is_latest) {
        for (u, n) in &r.bundle_members {
            if let Some(&i) = by_identity_all.get(&(u.clone(), *n)) {
                wanted[i] = true;
            }
        }
    }
    let mut index_of: HashMap<usize, u32> = HashMap::new();
    let mut revs: Vec<Rev> = Vec::new();
    for (i, r) in all.iter().enumerate() {
        if !wanted[i] {
            continue;
        }
        let Ok(update_id) = Guid::parse(&r.update_id) else { continue };
        let kind = match r.update_type.as_str() {
            "Category" => Kind::Category,
            "Detectoid" => Kind::Detectoid,
            "Driver" => Kind::Driver,
            _ => Kind::Software,
        };
        index_of.insert(i, revs.len() as u32);
        revs.push(Rev {
            revision_id: r.revision_id,
            update_id,
            update_id_text: r.update_id.clone(),
            revision_number: r.revision_number,
            kind,
            is_latest: r.is_latest,
            offerable: !r.expired && !removed.contains(r.update_id.as_str()),
            top_level: false,
            is_leaf: true,
            clauses: Vec::new(),
            children: Vec::new(),
            parents: Vec::new(),
            categories: Vec::new(),
            files: r.files.iter().map(|f| f.sha1.0).collect(),
            date: r.ingested_at.get(..10).unwrap_or("1970-01-01").to_string(),
            core: cores.remove(&r.revision_id),
            core_size: r.core_size,
            category_kind: r.category_kind.clone(),
        });
    }
    (revs, index_of)
}

/// The graph between served revisions: prerequisite clauses (as indexes, `MISSING` for an
/// update not served), categories, bundle children and parents, leaf-ness (no one's
/// prerequisite) and top level (software or a driver, newest, in no bundle).
fn link(
    revs: &mut [Rev],
    all: &[CatalogRevision],
    index_of: &HashMap<usize, u32>,
    by_identity_all: &HashMap<(String, i32), usize>,
    latest_by_update: &HashMap<Guid, u32>,
) {
    let mut named_as_prerequisite: HashSet<u32> = HashSet::new();
    for (&i, &idx) in index_of {
        let r = &all[i];
        let clauses: Vec<Vec<u32>> = r
            .prerequisite_clauses
            .iter()
            .map(|clause| {
                clause
                    .iter()
                    .map(|u| {
                        Guid::parse(u)
                            .ok()
                            .and_then(|g| latest_by_update.get(&g).copied())
                            .unwrap_or(MISSING)
                    })
                    .collect()
            })
            .collect();
        for &m in clauses.iter().flatten().filter(|&&m| m != MISSING) {
            named_as_prerequisite.insert(m);
        }
        let categories: Vec<u32> = clauses
            .iter()
            .flatten()
            .copied()
            .filter(|&m| m != MISSING && revs[m as usize].kind == Kind::Category)
            .collect();
        let children: Vec<u32> = r
            .bundle_members
            .iter()
            .filter_map(|(u, n)| by_identity_all.get(&(u.clone(), *n)))
            .filter_map(|j| index_of.get(j).copied())
            .collect();
        let rev = &mut revs[idx as usize];
        rev.clauses = clauses;
        rev.categories = categories;
        rev.children = children;
    }
    for i in 0..revs.len() {
        let children = revs[i].children.clone();
        for c in children {
            revs[c as usize].parents.push(i as u32);
        }
    }
    for (i, r) in revs.iter_mut().enumerate() {
        r.is_leaf = !named_as_prerequisite.contains(&(i as u32));
        r.top_level =
            matches!(r.kind, Kind::Software | Kind::Driver) && r.is_latest && r.parents.is_empty();
    }
}

/// Each revision's prerequisite signature (its clauses by revision id, category clauses first)
/// and its gate: the first clause (a category clause when it has one: the product), which rules
/// out most revisions for most machines at once.
fn signatures_and_gates(revs: &[Rev]) -> (Signatures, Signatures, Vec<u32>, Vec<u32>) {
    let mut signatures = Signatures::default();
    let mut gates = Signatures::default();
    let mut gate_of: Vec<u32> = Vec::with_capacity(revs.len());
    let served_id = |m: u32| if m == MISSING { -1 } else { revs[m as usize].revision_id };
    let is_category = |m: u32| m != MISSING && revs[m as usize].kind == Kind::Category;
    let signature_of: Vec<u32> = revs
        .iter()
        .map(|r| {
            let mut clauses: Vec<(bool, Vec<i32>)> = r
                .clauses
                .iter()
                .map(|c| {
                    (c.iter().all(|&m| is_category(m)), c.iter().map(|&m| served_id(m)).collect())
                })
                .collect();
            clauses.sort_by_key(|(categories, _)| !categories);
            let clauses: Vec<Vec<i32>> = clauses.into_iter().map(|(_, c)| c).collect();
            gate_of.push(gates.intern(clauses.first().cloned().into_iter().collect()));
            signatures.intern(clauses)
        })
        .collect();
    signatures.freeze();
    gates.freeze();
    (signatures, gates, signature_of, gate_of)
}

/// The order pages walk (the software pass: offerable revisions but drivers, §3.6): non-leaves
/// first, then bundle members, then the rest, each by gate then revision id; and the runs of
/// one gate in it.
fn page_order(revs: &[Rev], gate_of: &[u32]) -> (Vec<u32>, Vec<Run>) {
    let phase = |r: &Rev| {
        if !r.is_leaf {
            0
        } else if !r.parents.is_empty() {
            1
        } else {
            2
        }
    };
    let software_pass = |r: &Rev| r.offerable && r.kind != Kind::Driver;
    let mut page_order: Vec<u32> =
        (0..revs.len() as u32).filter(|&i| software_pass(&revs[i as usize])).collect();
    page_order.sort_by_key(|&i| {
        (phase(&revs[i as usize]), gate_of[i as usize], revs[i as usize].revision_id)
    });
    let mut runs: Vec<Run> = Vec::new();
    for (pos, &i) in page_order.iter().enumerate() {
        let gate = gate_of[i as usize];
        match runs.last_mut() {
            Some(run) if run.gate == gate && run.end as usize == pos => run.end += 1,
            _ => runs.push(Run { start: pos as u32, end: pos as u32 + 1, gate }),
        }
    }
    (page_order, runs)
}

/// One approval as the server applies it.
#[derive(Debug, Clone)]
pub struct ApprovalEntry {
    pub group: Guid,
    pub action: Action,
    pub deadline: Option<String>,
    pub deployment_id: i32,
    pub date: String,
    pub stamp: i64,
}

/// Client-visible deployment ids of approvals start here; implicit deployments (Evaluate,
/// Bundle, PreDeploymentCheck) use the revision id, which stays far below.
pub const APPROVAL_ID_BASE: i32 = 1 << 30;

#[derive(Debug, Default)]
pub struct Deployments {
    pub stamp: i64,
    pub by_update: HashMap<Guid, Vec<ApprovalEntry>>,
    pub declined: HashSet<Guid>,
    /// Updates whose deployments changed, with the stamp of the change.
    pub changes: Vec<(i64, Guid)>,
    pub parent: HashMap<Guid, Guid>,
    pub group_names: HashMap<Guid, String>,
}

impl Deployments {
    pub fn load(store: &Store) -> StoreResult<Deployments> {
        let mut d = Deployments { stamp: store.deployment_stamp()?, ..Default::default() };
        for g in store.groups()? {
            let Ok(id) = Guid::parse(&g.group_id) else { continue };
            if let Some(p) = g.parent_id.as_deref().and_then(|p| Guid::parse(p).ok()) {
                d.parent.insert(id, p);
            }
            d.group_names.insert(id, g.name);
        }
        for a in store.approvals()? {
            let (Ok(update), Ok(group)) = (Guid::parse(&a.update_id), Guid::parse(&a.group_id))
            else {
                continue;
            };
            d.changes.push((a.changed_stamp, update));
            d.by_update.entry(update).or_default().push(ApprovalEntry {
                group,
                action: a.action,
                deadline: a.deadline.clone(),
                deployment_id: APPROVAL_ID_BASE.saturating_add(a.approval_id),
                date: a.changed_at.get(..10).unwrap_or("1970-01-01").to_string(),
                stamp: a.changed_stamp,
            });
        }
        for x in store.declines()? {
            if let Ok(u) = Guid::parse(&x.update_id) {
                d.declined.insert(u);
                d.changes.push((x.changed_stamp, u));
            }
        }
        for (stamp, update) in store.approval_change_log()? {
            if let Ok(u) = Guid::parse(&update) {
                d.changes.push((stamp, u));
            }
        }
        d.changes.sort_by_key(|(s, _)| *s);
        Ok(d)
    }

    /// The groups a computer belongs to, with every ancestor, deepest first with its depth.
    pub fn effective_groups(&self, groups: &[Guid]) -> Vec<(Guid, usize)> {
        let mut out: Vec<(Guid, usize)> = Vec::new();
        for &g in groups {
            let mut chain = vec![g];
            let mut cur = g;
            while let Some(&p) = self.parent.get(&cur) {
                if chain.contains(&p) || chain.len() > 64 {
                    break;
                }
                chain.push(p);
                cur = p;
            }
            let depth = chain.len();
            for (k, id) in chain.into_iter().enumerate() {
                let d = depth - k;
                match out.iter_mut().find(|(x, _)| *x == id) {
                    Some(e) => e.1 = e.1.max(d),
                    None => out.push((id, d)),
                }
            }
        }
        let all = Guid::parse(crate::store::ALL_COMPUTERS).expect("valid");
        if !out.iter().any(|(g, _)| *g == all) {
            out.push((all, 1));
        }
        out.sort_by_key(|g| std::cmp::Reverse(g.1));
        out
    }

    /// The approval that applies to a computer in `groups` (from `effective_groups`), by the
    /// WSUS rules: the deepest group with an approval decides; among groups equally deep,
    /// Install wins over Uninstall over Block, and the earlier deadline wins.
    pub fn approval_for(&self, update: &Guid, groups: &[(Guid, usize)]) -> Option<&ApprovalEntry> {
        let approvals = self.by_update.get(update)?;
        let mut best: Option<(&ApprovalEntry, usize)> = None;
        for a in approvals {
            let Some(&(_, depth)) = groups.iter().find(|(g, _)| *g == a.group) else { continue };
            best = match best {
                None => Some((a, depth)),
                Some((b, bd)) => {
                    let better = depth > bd
                        || (depth == bd
                            && (a.action < b.action
                                || (a.action == b.action
                                    && a.deadline.is_some()
                                    && (b.deadline.is_none() || a.deadline < b.deadline))));
                    Some(if better { (a, depth) } else { (b, bd) })
                }
            };
        }
        best.map(|(a, _)| a)
    }
}

#[cfg(test)]
mod targeting_tests {
    use super::*;

    fn g(n: u8) -> Guid {
        Guid::from_bytes([n; 16])
    }

    /// A computer in several groups gets one approval per update by WSUS's rules: the deepest
    /// group decides; equally deep, Install beats Uninstall beats Block, then the earlier deadline.
    #[test]
    fn the_deepest_group_then_install_then_the_earlier_deadline_wins() {
        let all = Guid::parse(crate::store::ALL_COMPUTERS).unwrap();
        // All Computers > Servers(1) > Web(2); All Computers > Lab(3); All Computers > Kiosks(4)
        let mut d = Deployments::default();
        d.parent.insert(g(1), all);
        d.parent.insert(g(2), g(1));
        d.parent.insert(g(3), all);
        d.parent.insert(g(4), all);
        let entry = |group, action, deadline: Option<&str>| ApprovalEntry {
            group,
            action,
            deadline: deadline.map(str::to_string),
            deployment_id: 0,
            date: String::new(),
            stamp: 0,
        };
        let update = g(9);
        // (approvals, the computer's groups, expected (group, action, deadline))
        type Expected<'a> = Option<(Guid, Action, Option<&'a str>)>;
        let cases: Vec<(Vec<ApprovalEntry>, Vec<Guid>, Expected<'_>)> = vec![
            (
                vec![entry(all, Action::Install, None)],
                vec![g(3)],
                Some((all, Action::Install, None)),
            ),
            (
                vec![entry(all, Action::Install, None), entry(g(1), Action::Uninstall, None)],
                vec![g(2)],
                Some((g(1), Action::Uninstall, None)),
            ),
            (
                vec![entry(g(1), Action::Install, None), entry(g(2), Action::Block, None)],
                vec![g(2)],
                Some((g(2), Action::Block, None)),
            ),
            (
                vec![entry(g(3), Action::Uninstall, None), entry(g(4), Action::Install, None)],
                vec![g(3), g(4)],
                Some((g(4), Action::Install, None)),
            ),
            (
                vec![
                    entry(g(3), Action::Install, Some("2026-12-20T00:00:00Z")),
                    entry(g(4), Action::Install, Some("2026-12-10T00:00:00Z")),
                ],
                vec![g(3), g(4)],
                Some((g(4), Action::Install, Some("2026-12-10T00:00:00Z"))),
            ),
            (vec![entry(g(1), Action::Install, None)], vec![g(3)], None),
        ];
        for (i, (approvals, groups, expected)) in cases.into_iter().enumerate() {
            d.by_update.insert(update, approvals);
            let effective = d.effective_groups(&groups);
            let got = d
                .approval_for(&update, &effective)
                .map(|a| (a.group, a.action, a.deadline.as_deref()));
            assert_eq!(got, expected, "case {i}");
        }
    }
}
