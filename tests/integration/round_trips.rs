//! First scans finish within WUA's 200 SyncUpdates round trips (0x80244010 after that): pages
//! grow when what a computer may be offered needs it, and stay WSUS's 30 when not.

use crate::served::Served;
use crate::util::{ferry, json_of, stdout_of};
use ferry::server::{MAX_PAGE_UPDATES, WSUS_PAGE_UPDATES};

fn synth(updates: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    stdout_of(ferry(&data).args([
        "dev",
        "synth",
        "--updates",
        &updates.to_string(),
        "--payload-bytes",
        "1000",
    ]));
    (dir, data)
}

#[test]
fn a_first_scan_that_pages_of_30_could_not_finish_in_150_round_trips_finishes_in_150() {
    // 8,000 revisions: a machine every update applies to receives over 5,000 updates, which
    // pages of 30 cannot carry in 150 calls (the fixed pages took 195).
    let (_dir, data) = synth(8_000);
    let server = Served::start(&data, &[]);
    let scan = ferry::loadgen::scan_once(&server.url())
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert!(
        scan.new_updates.div_ceil(WSUS_PAGE_UPDATES as u64) > 150,
        "pages of 30 would have finished this: {scan:?}"
    );
    assert!(scan.sync_calls <= 150, "{scan:?}");
    assert!(
        scan.largest_page > WSUS_PAGE_UPDATES && scan.largest_page <= MAX_PAGE_UPDATES,
        "{scan:?}"
    );

    let status = json_of(ferry(&data).args(["status"]));
    let outlook = &status["scan"];
    assert!(outlook["page_updates"].as_u64() > Some(WSUS_PAGE_UPDATES as u64), "{outlook}");
    assert!(outlook["estimated_round_trips"].as_u64() <= Some(100), "{outlook}");
    assert!(outlook["warning"].is_null(), "{outlook}");
}

#[test]
fn a_small_catalog_is_scanned_in_wsus_pages_of_30() {
    let (_dir, data) = synth(1_500);
    let server = Served::start(&data, &[]);
    let scan = ferry::loadgen::scan_once(&server.url())
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert!(scan.new_updates > 10 * WSUS_PAGE_UPDATES as u64, "{scan:?}");
    assert_eq!(scan.largest_page, WSUS_PAGE_UPDATES, "{scan:?}");
    let status = json_of(ferry(&data).args(["status"]));
    assert_eq!(status["scan"]["page_updates"].as_u64(), Some(WSUS_PAGE_UPDATES as u64), "{status}");
    assert!(status["scan"]["warning"].is_null(), "{status}");
}
