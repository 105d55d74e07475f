//! How SyncUpdates decides what to return (WSUS-PROTOCOL.md §3.6): the client's scope, the
//! prerequisite filter against what it reports installed, pages (WSUS's 30 updates, more when a
//! group set is offered so much that pages of 30 would not finish a scan) within a byte budget,
//! out-of-scope and changed revisions.

use super::offers::Offers;
use super::prerequisites::{IdSet, Memo};
use super::snapshot::{Deployments, Kind, MISSING, Snapshot};
use crate::catalog::Guid;
use crate::wsus::client::{Deployment, SyncParameters};

/// Real WSUS sends at most 30 NewUpdates per SyncUpdates answer (the conformance captures).
pub const WSUS_PAGE_UPDATES: usize = 30;
/// The most updates a page carries, whatever the catalog: about as many of the smallest updates
/// (detectoids, ~900 answer bytes each) as `PAGE_BYTES` holds, so the byte budget, not the count,
/// bounds every answer. Real agents are known to take pages of 200 (wsus-rs recorded Windows 11
/// taking 200 in bodies of 851,505 and 1,125,833 bytes); more go only to group sets offered over
/// 200 × `TARGET_TRIPS` revisions, whose scans pages of 200 could not finish in time.
pub const MAX_PAGE_UPDATES: usize = 1000;
/// Round trips the pages of everything a group set is offered should take by count. The rest of
/// WUA's 200 is for the pages the byte budget ends early (~50 measured in a 100,000-revision
/// scan), the layering rounds and the driver pass.
pub const TARGET_TRIPS: usize = 80;
/// Answer bytes a page may spend: Core fragments and `UPDATE_INFO_BYTES` per update, so answers
/// stay within the 1.1 MB known agents took. A single larger fragment still goes alone.
pub const PAGE_BYTES: u64 = 1 << 20;
/// What an update costs in an answer beside its Core fragment: the `UpdateInfo` and
/// `Deployment` elements and the fragment's escaping (396 bytes measured for detectoids).
pub const UPDATE_INFO_BYTES: u64 = 400;
/// WUA gives up a scan after this many SyncUpdates round trips (0x80244010).
pub const WUA_MAX_TRIPS: u64 = 200;
/// Round trips of a first scan besides full pages: the layering rounds while categories and
/// detectoids arrive (3 measured on generated catalogs) and the driver pass.
pub const OTHER_TRIPS: u64 = 5;
/// `ferry status` warns when a first scan may take more round trips than this: half of WUA's
/// limit, because large Core fragments add pages the estimate does not count.
pub const WARN_TRIPS: u64 = 100;

/// How many updates a SyncUpdates page carries, chosen once per group set from how many
/// revisions it is offered: WSUS's 30 while pages of 30 hold them all in `TARGET_TRIPS`, else as
/// many as that takes, up to `MAX_PAGE_UPDATES`. Either way a page stops at `PAGE_BYTES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagePolicy {
    updates: usize,
}

impl PagePolicy {
    pub const WSUS: PagePolicy = PagePolicy { updates: WSUS_PAGE_UPDATES };

    /// The policy for a group set offered `offered` revisions.
    pub fn for_offered(offered: u64) -> PagePolicy {
        let wanted = usize::try_from(offered.div_ceil(TARGET_TRIPS as u64)).unwrap_or(usize::MAX);
        PagePolicy { updates: wanted.clamp(WSUS_PAGE_UPDATES, MAX_PAGE_UPDATES) }
    }

    /// The most updates a page carries.
    pub fn updates(self) -> usize {
        self.updates
    }

    /// Whether a page holding `count` updates and `bytes` answer bytes takes one more whose Core
    /// fragment is `size` bytes (the first always goes, however large).
    fn takes(self, count: usize, bytes: u64, size: u64) -> bool {
        count == 0
            || (count < self.updates
                && bytes.saturating_add(size).saturating_add(UPDATE_INFO_BYTES) <= PAGE_BYTES)
    }
}

/// What a first scan costs a computer that needs everything it may be offered, by count: the
/// pages of `PagePolicy` plus `OTHER_TRIPS`. Large Core fragments add pages of their own, so a
/// measured scan (`ferry dev loadgen --once`) may take more.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScanOutlook {
    pub offerable_revisions: u64,
    pub page_updates: usize,
    pub estimated_round_trips: u64,
    pub round_trip_limit: u64,
    /// Set when `estimated_round_trips` exceeds `WARN_TRIPS`: what is wrong and what helps.
    pub warning: Option<String>,
}

impl ScanOutlook {
    /// The outlook for computers that may be offered `offerable` revisions
    /// (`Store::offerable_revisions`).
    pub fn for_offerable(offerable: u64) -> ScanOutlook {
        let policy = PagePolicy::for_offered(offerable);
        let estimated = offerable.div_ceil(policy.updates() as u64) + OTHER_TRIPS;
        let warning = (estimated > WARN_TRIPS).then(|| {
            format!(
                "a first scan by a computer that needs all {offerable} revisions it may be offered takes about {estimated} \
                 SyncUpdates round trips at pages of {}, and Windows Update gives up after {WUA_MAX_TRIPS} (0x80244010). \
                 Decline what no computer needs: `ferry cleanup --decline-superseded` (updates superseded by approved ones), \
                 and updates of products no computer runs (`ferry updates list --product NAME --ids | ferry updates decline -`); \
                 on the connected side, export profiles with fewer products and include_superseded = false",
                policy.updates()
            )
        });
        ScanOutlook {
            offerable_revisions: offerable,
            page_updates: policy.updates(),
            estimated_round_trips: estimated,
            round_trip_limit: WUA_MAX_TRIPS,
            warning,
        }
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

/// Who is asking: what its groups are offered, and what it saw last.
pub struct Client<'a> {
    pub offers: &'a Offers,
    pub seen_stamp: i64,
}

/// The revisions a category-filtered scan may see: the filter categories and their ancestors,
/// and the updates in those categories with what they need.
fn filtered_scope(catalog: &Snapshot, filter: &[Guid]) -> Vec<bool> {
    let mut keep = vec![false; catalog.revs.len()];
    let wanted: Vec<u32> =
        filter.iter().filter_map(|g| catalog.latest_by_update.get(g).copied()).collect();
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
    catalog: &Snapshot,
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
    let scope = (!params.filter_categories.is_empty())
        .then(|| filtered_scope(catalog, &params.filter_categories));
    let in_scope = |i: u32| scope.as_ref().is_none_or(|s| s[i as usize]);
    let mut memo = Memo::new(&catalog.signatures, &installed);
    let offers = client.offers;
    let policy = offers.page_policy();

    let mut page = Page::default();
    let mut bytes = 0u64;
    'runs: for run in &catalog.runs {
        if !catalog.gates.satisfied(run.gate, &installed) {
            continue;
        }
        for pos in run.start as usize..run.end as usize {
            let id = catalog.page_order_ids[pos];
            if cached.contains(id)
                || !offers.offered_at(pos)
                || !memo.satisfied(catalog.page_order_signatures[pos])
            {
                continue;
            }
            let i = catalog.page_order[pos];
            if !in_scope(i) {
                continue;
            }
            let Some(d) = offers.get(i) else { continue };
            let size = core_size(i);
            if !policy.takes(page.new_updates.len(), bytes, size) {
                page.truncated = true;
                break 'runs;
            }
            bytes = bytes.saturating_add(size).saturating_add(UPDATE_INFO_BYTES);
            page.new_updates.push((i, d.clone()));
        }
    }

    // Cached revisions the client should forget: unknown here, replaced by a newer revision,
    // declined, out of its groups' scope, or no longer reachable through its prerequisites.
    for &id in params.installed_non_leaf.iter().chain(&params.other_cached) {
        let keep = catalog.index_of(id).is_some_and(|i| {
            offers.get(i).is_some()
                && in_scope(i)
                && memo.satisfied(catalog.signature_of[i as usize])
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
        if !cached.contains(rev.revision_id)
            || !in_scope(i)
            || !memo.satisfied(catalog.signature_of[i as usize])
        {
            continue;
        }
        if let Some(d) = offers.get(i) {
            page.changed.push((i, d.clone()));
        }
    }
    page
}

/// The driver pass: approved drivers matching a device the client reports, in pages of the
/// group set's policy.
pub fn driver_page(
    catalog: &Snapshot,
    client: &Client<'_>,
    params: &SyncParameters,
    hardware_ids: &dyn Fn(u32) -> Vec<String>,
) -> Page {
    let policy = client.offers.page_policy();
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
    let mut bytes = 0u64;
    for (i, rev) in catalog.revs.iter().enumerate() {
        if rev.kind != Kind::Driver || !rev.top_level || cached.contains(rev.revision_id) {
            continue;
        }
        let Some(d) = client.offers.get(i as u32) else { continue };
        if !hardware_ids(i as u32).iter().any(|h| device_ids.contains(&h.to_ascii_lowercase())) {
            continue;
        }
        if !policy.takes(page.new_updates.len(), bytes, rev.core_size) {
            page.truncated = true;
            break;
        }
        bytes = bytes.saturating_add(rev.core_size).saturating_add(UPDATE_INFO_BYTES);
        page.new_updates.push((i as u32, d.clone()));
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages of 30 while 30 finish the offered revisions in `TARGET_TRIPS`, then as large as
    /// that takes, never above the maximum.
    #[test]
    fn pages_are_wsus_30_for_small_offers_and_grow_to_the_maximum_for_large_ones() {
        let cases: &[(u64, usize)] = &[
            (0, 30),
            (1, 30),
            (1_200, 30),
            (2_400, 30),
            (2_401, 31),
            (7_820, 98),
            (16_000, 200),
            (16_001, 201),
            (29_306, 367),
            (79_920, 999),
            (80_000, 1000),
            (97_825, 1000),
            (10_000_000, 1000),
            (u64::MAX, 1000),
        ];
        for &(offered, updates) in cases {
            assert_eq!(PagePolicy::for_offered(offered).updates(), updates, "{offered} offered");
        }
        assert_eq!(PagePolicy::for_offered(2_400), PagePolicy::WSUS);
    }

    #[test]
    fn pages_grow_monotonically_within_bounds_and_hold_the_offer_in_the_target_trips() {
        let mut last = 0;
        for offered in (0..200_000u64).step_by(97) {
            let updates = PagePolicy::for_offered(offered).updates();
            assert!(
                (WSUS_PAGE_UPDATES..=MAX_PAGE_UPDATES).contains(&updates),
                "{offered}: {updates}"
            );
            assert!(updates >= last, "{offered}: {updates} after {last}");
            if offered <= (MAX_PAGE_UPDATES * TARGET_TRIPS) as u64 {
                assert!(
                    offered.div_ceil(updates as u64) <= TARGET_TRIPS as u64,
                    "{offered}: pages of {updates}"
                );
            }
            last = updates;
        }
    }

    /// (updates already on the page, their answer bytes, the next fragment's size, taken)
    #[test]
    fn a_page_stops_at_its_count_or_its_byte_budget_but_takes_any_first_update() {
        let room = PAGE_BYTES - UPDATE_INFO_BYTES;
        let cases: &[(PagePolicy, usize, u64, u64, bool)] = &[
            (PagePolicy::WSUS, 0, 0, 0, true),
            (PagePolicy::WSUS, 29, 0, 0, true),
            (PagePolicy::WSUS, 30, 0, 0, false),
            (PagePolicy::for_offered(u64::MAX), 999, 0, 0, true),
            (PagePolicy::for_offered(u64::MAX), 1000, 0, 0, false),
            (PagePolicy::WSUS, 1, 0, room, true),
            (PagePolicy::WSUS, 1, 0, room + 1, false),
            (PagePolicy::WSUS, 5, room - 100, 100, true),
            (PagePolicy::WSUS, 5, room - 100, 101, false),
            (PagePolicy::WSUS, 0, 0, 46_887_043, true),
            (PagePolicy::WSUS, 1, 500, u64::MAX, false),
        ];
        for (i, &(policy, count, bytes, size, taken)) in cases.iter().enumerate() {
            assert_eq!(policy.takes(count, bytes, size), taken, "case {i}");
        }
    }

    #[test]
    fn the_outlook_warns_only_when_even_the_largest_pages_need_more_than_half_the_limit() {
        // (offerable revisions, pages of, estimated round trips, warns)
        let cases: &[(u64, usize, u64, bool)] = &[
            (0, 30, 5, false),
            (1_200, 30, 45, false),
            (2_400, 30, 85, false),
            (29_306, 367, 85, false),
            (95_000, 1000, 100, false),
            (95_001, 1000, 101, true),
            (97_825, 1000, 103, true),
            (250_000, 1000, 255, true),
        ];
        for &(offerable, page, trips, warns) in cases {
            let o = ScanOutlook::for_offerable(offerable);
            assert_eq!(
                (o.page_updates, o.estimated_round_trips, o.warning.is_some()),
                (page, trips, warns),
                "{offerable}"
            );
            assert_eq!(o.round_trip_limit, 200);
        }
        let warning = ScanOutlook::for_offerable(97_825).warning.unwrap();
        for needle in [
            "97825 revisions",
            "about 103",
            "after 200",
            "ferry cleanup --decline-superseded",
            "ferry updates decline -",
        ] {
            assert!(warning.contains(needle), "{needle} missing from: {warning}");
        }
    }
}
