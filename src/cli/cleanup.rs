//! `ferry cleanup`: Invoke-WsusServerCleanup's switches, with a dry run that lists what would go.

use super::output;
use ferry::store::StoreLocation;
use ferry::store::{CleanupOptions, Store};
use ferry::units::format_size;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// List what would go and how many bytes would be freed; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Decline updates superseded by an approved update, not approved in the last 30 days and
    /// needed by no computer (WSUS's rule).
    #[arg(long)]
    decline_superseded: bool,
    /// Decline expired updates nobody approved.
    #[arg(long)]
    decline_expired: bool,
    /// Delete content files no update that is not declined needs, and stray files.
    #[arg(long)]
    unneeded_content: bool,
    /// Forget computers that have not contacted the server for this many days.
    #[arg(long, value_name = "DAYS")]
    obsolete_computers: Option<u32>,
    #[arg(long)]
    json: bool,
}

pub fn run(at: &StoreLocation, a: Args) -> anyhow::Result<()> {
    let options = CleanupOptions {
        decline_superseded: a.decline_superseded,
        decline_expired: a.decline_expired,
        unneeded_content: a.unneeded_content,
        obsolete_computers_days: a.obsolete_computers,
    };
    if !(options.decline_superseded
        || options.decline_expired
        || options.unneeded_content
        || options.obsolete_computers_days.is_some())
    {
        anyhow::bail!(
            "say what to clean: --decline-superseded, --decline-expired, --unneeded-content, --obsolete-computers DAYS \
             (with --dry-run to see it first)"
        );
    }
    let mut store = Store::open_at(at)?;
    let plan = ferry::admin::AdminService::new(&mut store).cleanup(&options, !a.dry_run)?;
    if a.json {
        return output::json(&serde_json::json!({ "dry_run": a.dry_run, "plan": plan }));
    }
    let verb = |now: &str, later: &str| if a.dry_run { later.to_string() } else { now.to_string() };
    for d in &plan.declines {
        println!(
            "{} {} {} ({})",
            verb("declined", "would decline"),
            d.update_id,
            d.title.as_deref().unwrap_or(""),
            d.reason
        );
    }
    for f in &plan.files {
        println!(
            "{} content/{} ({}{})",
            verb("deleted", "would delete"),
            f.path,
            format_size(f.size),
            if f.known { "" } else { ", stray" }
        );
    }
    for c in &plan.computers {
        println!(
            "{} computer {} (last contact {})",
            verb("removed", "would remove"),
            c.name,
            c.last_contact_at
        );
    }
    println!(
        "{}: {} update(s) declined, {} file(s) deleted ({} freed), {} computer(s) removed",
        if a.dry_run { "dry run" } else { "cleanup done" },
        plan.declines.len(),
        plan.files.len(),
        format_size(plan.bytes_freed),
        plan.computers.len()
    );
    Ok(())
}
