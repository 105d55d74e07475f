//! What each revision offers to computers of one set of groups (its deployment, or nothing),
//! computed once per catalog, deployments and group set, and shared by all their requests: a
//! fleet has few distinct group sets, and a scan asks about every revision many times.

use super::snapshot::{Deployments, Kind, Rev, Snapshot};
use super::sync::PagePolicy;
use crate::admin::Action;
use crate::catalog::Guid;
use crate::wsus::client::Deployment;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Offers {
    catalog_stamp: i64,
    deployment_stamp: i64,
    of: Vec<Option<Deployment>>,
    /// Whether the revision at each position of the catalog's page order is offered (a bitmap,
    /// walked in order by every page).
    in_page_order: Vec<u64>,
    /// Page sizes for these computers, from how many revisions they are offered.
    page_policy: PagePolicy,
}

fn implicit(action: &'static str, rev: &Rev) -> Deployment {
    Deployment { id: rev.revision_id, action, deadline: None, last_change: rev.date.clone() }
}

impl Offers {
    /// `groups`: the computer's effective groups, deepest first (`Deployments::effective_groups`).
    pub fn build(
        catalog: &Snapshot,
        deployments: &Deployments,
        groups: &[(Guid, usize)],
    ) -> Offers {
        let mut of: Vec<Option<Option<Deployment>>> = vec![None; catalog.revs.len()];
        for i in 0..catalog.revs.len() {
            compute(catalog, deployments, groups, i as u32, &mut of);
        }
        let of: Vec<Option<Deployment>> = of.into_iter().map(|d| d.flatten()).collect();
        let mut in_page_order = vec![0u64; catalog.page_order.len().div_ceil(64)];
        let mut offered = 0u64;
        for (pos, &i) in catalog.page_order.iter().enumerate() {
            if of[i as usize].is_some() {
                in_page_order[pos >> 6] |= 1 << (pos & 63);
                offered += 1;
            }
        }
        let page_policy = PagePolicy::for_offered(offered);
        Offers {
            catalog_stamp: catalog.stamp,
            deployment_stamp: deployments.stamp,
            of,
            in_page_order,
            page_policy,
        }
    }

    /// How these computers' SyncUpdates answers are paged.
    pub fn page_policy(&self) -> PagePolicy {
        self.page_policy
    }

    /// Whether the revision at `pos` in the catalog's page order is offered.
    pub fn offered_at(&self, pos: usize) -> bool {
        self.in_page_order[pos >> 6] & (1 << (pos & 63)) != 0
    }

    /// The deployment a revision has for these computers, or `None` when it is out of their scope.
    pub fn get(&self, idx: u32) -> Option<&Deployment> {
        self.of.get(idx as usize).and_then(Option::as_ref)
    }
}

/// The WSUS rules (WSUS-PROTOCOL.md §3.6), memoized in `memo` (bundle members ask about their parents).
fn compute(
    catalog: &Snapshot,
    deployments: &Deployments,
    groups: &[(Guid, usize)],
    idx: u32,
    memo: &mut Vec<Option<Option<Deployment>>>,
) -> Option<Deployment> {
    if let Some(known) = &memo[idx as usize] {
        return known.clone();
    }
    // Guards a (malformed) bundle cycle: a revision being computed counts as out of scope.
    memo[idx as usize] = Some(None);
    let rev = &catalog.revs[idx as usize];
    let d = if !rev.offerable {
        None
    } else {
        match rev.kind {
            Kind::Category | Kind::Detectoid => rev.is_latest.then(|| implicit("Evaluate", rev)),
            Kind::Software | Kind::Driver if rev.top_level => {
                if deployments.declined.contains(&rev.update_id) {
                    None
                } else {
                    match deployments.approval_for(&rev.update_id, groups) {
                        Some(a) if a.action == Action::Block => None,
                        Some(a) => Some(Deployment {
                            id: a.deployment_id,
                            action: a.action.as_str(),
                            deadline: a.deadline.clone(),
                            last_change: a.date.clone(),
                        }),
                        // Not approved: clients evaluate it and report whether they need it.
                        None if rev.kind == Kind::Software => {
                            Some(implicit("PreDeploymentCheck", rev))
                        }
                        None => None,
                    }
                }
            }
            _ => {
                if !rev.parents.is_empty() {
                    // A bundle member goes with any bundle in scope.
                    let carried = rev.parents.iter().any(|&p| {
                        catalog.revs[p as usize].is_latest
                            && compute(catalog, deployments, groups, p, memo).is_some()
                    });
                    carried.then(|| implicit("Bundle", rev))
                } else if rev.is_latest
                    && !rev.is_leaf
                    && !deployments.declined.contains(&rev.update_id)
                {
                    // Software another update requires is evaluated.
                    Some(implicit("Evaluate", rev))
                } else {
                    None
                }
            }
        }
    };
    memo[idx as usize] = Some(d.clone());
    d
}

/// Offers by group set, rebuilt when the catalog or the deployments change.
#[derive(Default)]
pub struct OffersCache {
    map: Mutex<HashMap<Vec<Guid>, Arc<Offers>>>,
}

/// Distinct group sets kept; a server with more simply rebuilds some.
const MAX_GROUP_SETS: usize = 256;

impl OffersCache {
    pub fn get(
        &self,
        catalog: &Snapshot,
        deployments: &Deployments,
        computer_groups: &[Guid],
    ) -> Arc<Offers> {
        let mut key = computer_groups.to_vec();
        key.sort();
        key.dedup();
        if let Some(o) = self.map.lock().expect("offers lock").get(&key)
            && o.catalog_stamp == catalog.stamp
            && o.deployment_stamp == deployments.stamp
        {
            return o.clone();
        }
        // Built outside the lock: two requests may build the same set once each, which is cheaper
        // than making every other group set wait.
        let offers =
            Arc::new(Offers::build(catalog, deployments, &deployments.effective_groups(&key)));
        let mut map = self.map.lock().expect("offers lock");
        map.retain(|_, o| {
            o.catalog_stamp == catalog.stamp && o.deployment_stamp == deployments.stamp
        });
        if map.len() >= MAX_GROUP_SETS {
            map.clear();
        }
        map.insert(key, offers.clone());
        offers
    }
}
