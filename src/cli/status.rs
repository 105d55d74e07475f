//! `ferry status`: what the store holds, and whether first scans of it finish.

use super::output;
use ferry::server::ScanOutlook;
use ferry::store::Store;
use ferry::store::StoreLocation;
use ferry::units::format_size;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(at: &StoreLocation, args: Args) -> anyhow::Result<()> {
    let store = Store::open_at(at)?;
    let s = store.catalog_status()?;
    let scan = ScanOutlook::for_offerable(store.offerable_revisions()?);
    if args.json {
        return output::json(
            &serde_json::json!({ "store": at.to_string(), "catalog": s, "scan": scan }),
        );
    }
    println!("store     {at}");
    println!("updates   {} (revisions stored: {})", s.updates, s.revisions);
    for (kind, n) in &s.by_type {
        println!("  {kind:<10} {n}");
    }
    let cats: Vec<String> = s.categories_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if !cats.is_empty() {
        println!("categories {}", cats.join(", "));
    }
    println!("bundles   {}   expired {}", s.bundles, s.expired);
    println!("metadata  {} of update documents", format_size(s.document_bytes));
    println!(
        "files     {} ({}), {} present in content ({})",
        s.files,
        format_size(s.file_bytes),
        s.files_present,
        format_size(s.present_bytes)
    );
    for line in scan_lines(&scan) {
        println!("{line}");
    }
    Ok(())
}

/// The scan outlook for people: one line, and the warning when there is one.
fn scan_lines(scan: &ScanOutlook) -> Vec<String> {
    let mut lines = vec![format!(
        "scans     a computer may be offered {} revisions: its first scan takes about {} of at most {} SyncUpdates round trips (pages of {})",
        scan.offerable_revisions,
        scan.estimated_round_trips,
        scan.round_trip_limit,
        scan.page_updates
    )];
    if let Some(w) = &scan.warning {
        lines.push(format!("warning: {w}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_too_large_for_first_scans_gets_a_warning_naming_the_cleanup() {
        let small = scan_lines(&ScanOutlook::for_offerable(1_200));
        assert_eq!(small.len(), 1, "{small:?}");
        assert!(
            small[0].contains("about 45 of at most 200") && small[0].contains("pages of 30"),
            "{small:?}"
        );
        let large = scan_lines(&ScanOutlook::for_offerable(150_000));
        assert_eq!(large.len(), 2, "{large:?}");
        assert!(
            large[1].starts_with("warning: ")
                && large[1].contains("ferry cleanup --decline-superseded"),
            "{large:?}"
        );
    }
}
