//! `ferry check [--deep]`: exit 1 naming each problem.

use super::{Exit, output};
use ferry::store::Store;
use ferry::store::StoreLocation;
use ferry::units::format_size;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also re-parse every document against its stored fragments and re-hash every content
    /// file against both its SHA-1 and SHA-256.
    #[arg(long)]
    deep: bool,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(at: &StoreLocation, args: Args) -> anyhow::Result<()> {
    let store = Store::open_at(at)?;
    check(&store, args.deep, args.json)
}

/// Checks `store` and prints what was found; exit 1 when it is not clean.
pub(super) fn check(store: &Store, deep: bool, json: bool) -> anyhow::Result<()> {
    let args = Args { deep, json };
    let bar = if args.json {
        indicatif::ProgressBar::hidden()
    } else {
        output::progress(0, "hashing content", true)
    };
    let report = store.check(args.deep, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if args.json {
        output::json(&report)?;
    } else {
        for p in &report.problems {
            println!("PROBLEM  {}: {}", p.subject, p.problem);
        }
        let what = if args.deep {
            format!(
                ", {} documents re-parsed, {} re-hashed",
                report.documents_reparsed,
                format_size(report.bytes_hashed)
            )
        } else {
            String::new()
        };
        println!(
            "{}: {} revisions, {} content files checked{what}",
            if report.is_clean() { "clean" } else { "NOT CLEAN" },
            report.revisions_checked,
            report.files_checked
        );
        if !report.is_clean() {
            eprintln!(
                "{} problem(s). Content problems: re-import the bundle that carried the file (ferry import is idempotent). \
                 Database problems: restore the store from a backup.",
                report.problems.len()
            );
        }
    }
    if report.is_clean() { Ok(()) } else { Err(Exit(1).into()) }
}
