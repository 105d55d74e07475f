//! `ferry import BUNDLE --trust PUB...`: verify, then load into the store; idempotent, resumable.

use super::output;
use ferry::bundle::import::{ImportOptions, ImportOutcome, import_into};
use ferry::store::StoreLocation;
use ferry::units::format_size;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    bundle: PathBuf,
    /// Public key(s) to trust for this import (minisign .pub), besides the store's.
    #[arg(long, value_name = "PUB")]
    trust: Vec<PathBuf>,
    /// Import an expired bundle anyway (with a warning).
    #[arg(long)]
    allow_expired: bool,
    /// Apply the approval policy the bundle carries (rules, approvals and declines decided on
    /// the connected side; see `ferry inspect`). Without it the policy is reported, not applied.
    #[arg(long)]
    apply_approvals: bool,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(at: &StoreLocation, args: Args) -> anyhow::Result<()> {
    let extra: Vec<_> = args
        .trust
        .iter()
        .map(|p| super::trust::load_public_key(p))
        .collect::<anyhow::Result<_>>()?;
    let options =
        ImportOptions { allow_expired: args.allow_expired, apply_approvals: args.apply_approvals };
    let bar = output::progress(0, "importing", true);
    let report = import_into(at, &args.bundle, &extra, &options, &mut |_, done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    // Names in warnings and below come from the bundle: printed without control characters.
    for w in &report.warnings {
        eprintln!("warning: {}", output::printable(w));
    }
    if args.json {
        return output::json(&report);
    }
    if report.outcome == ImportOutcome::AlreadyImported {
        println!(
            "bundle {} #{} ({}) was already imported: nothing to do",
            report.channel, report.sequence, report.bundle_id
        );
    } else {
        println!(
            "imported {} #{} ({}), signed by key {}: {} revisions added ({} already present), {} payload files, {} removed, {} read",
            report.channel,
            report.sequence,
            report.bundle_id,
            report.signer_key_id,
            report.revisions_added,
            report.revisions_unchanged,
            report.files_added,
            report.removed,
            format_size(report.bytes_read)
        );
    }
    if let Some(p) = &report.approval_policy {
        let line = format!(
            "approval policy applied: {} approval(s), {} decline(s), rules added: {}, groups created: {}",
            p.approved,
            p.declined,
            if p.rules_added.is_empty() { "none".to_string() } else { p.rules_added.join(", ") },
            if p.groups_created.is_empty() {
                "none".to_string()
            } else {
                p.groups_created.join(", ")
            }
        );
        println!("{}", output::printable(&line));
    }
    for r in &report.rules {
        println!(
            "{}",
            output::printable(&format!(
                "rule {:?} approved {} update(s) for {}",
                r.rule,
                r.approved.len(),
                r.group
            ))
        );
    }
    Ok(())
}
