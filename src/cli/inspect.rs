//! `ferry inspect BUNDLE [--json] [--html FILE]`: what the bundle holds.

use super::output;
use ferry::bundle::inspect::{html, inspect};
use ferry::units::format_size;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    bundle: PathBuf,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let i = inspect(&args.bundle)?;
    if let Some(path) = &args.html {
        std::fs::write(path, html(&i))?;
    }
    if args.json {
        return output::json(&i);
    }
    let m = &i.manifest;
    // Nothing here is verified (inspect reads any manifest): what reaches the terminal loses
    // its control characters, so a title cannot move the cursor or retitle the window.
    let mut out = String::new();
    macro_rules! say {
        ($($arg:tt)*) => {{
            use std::fmt::Write as _;
            let _ = writeln!(out, $($arg)*);
        }};
    }
    say!("bundle      {}", i.bundle.display());
    say!(
        "channel     {} sequence {} ({})",
        m.channel,
        m.sequence,
        m.base_sequence.map(|b| format!("delta on {b}")).unwrap_or_else(|| "full".into())
    );
    say!("bundle id   {}", m.bundle_id);
    say!(
        "signer      {} (signature file: {}; run `ferry verify` to check it)",
        m.signer_key_id,
        i.signature_key_id.as_deref().unwrap_or("MISSING, unsigned")
    );
    say!("created     {}   expires {}", m.created, m.expires.as_deref().unwrap_or("never"));
    say!("upstream    {}", m.upstream.url.as_deref().unwrap_or("-"));
    say!(
        "selection   languages {}; express files {}; superseded {}; payloads {}",
        m.selection.languages.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", "),
        if m.selection.express { "carried" } else { "left behind" },
        if m.selection.include_superseded { "included" } else { "left behind" },
        m.selection.payloads
    );
    say!(
        "contents    {} revisions: {} software updates, {} categories, {} detectoids, {} bundle members; {} payload files ({})",
        m.summary.revisions,
        m.summary.software_updates,
        m.summary.categories,
        m.summary.detectoids,
        m.summary.bundle_members,
        m.summary.payload_files,
        format_size(m.summary.payload_bytes)
    );
    for (class, products) in &i.by_classification {
        for (product, n) in products {
            say!("  {n:>5}  {class} / {product}");
        }
    }
    for u in m.updates.iter().take(20) {
        say!(
            "  {:<10} {}{}",
            u.kb.as_ref().map(|k| format!("KB{k}")).unwrap_or_default(),
            u.title,
            if u.change == "revised" { " (revised)" } else { "" }
        );
    }
    if m.updates.len() > 20 {
        say!("  ... and {} more (--json or --html for all)", m.updates.len() - 20);
    }
    for r in &m.removed {
        say!("  removed  {} {} ({})", r.update_id, r.title, r.reason);
    }
    if !m.published.is_empty() {
        say!("published   {} update(s) published on the connected side:", m.published.len());
    }
    for p in &m.published {
        say!(
            "  {} {} / {} {} ({} {}) published {}",
            p.update_id,
            p.vendor.as_str(),
            p.product.as_str(),
            p.version.as_ref().map_or("-", |v| v.as_str()),
            p.installer.as_str(),
            p.installer_name.as_str(),
            p.published_at.as_str()
        );
    }
    if let Some(p) = &m.approval_policy {
        say!(
            "approvals   a policy travels with this bundle (applied on import only with --apply-approvals):"
        );
        for [kind, what, group, action, deadline] in ferry::bundle::inspect::policy_lines(p) {
            say!("  {kind:<8} {what} {group} {action} {deadline}");
        }
    }
    for v in &m.volumes {
        say!("volume      {} {} sha256 {}", v.name, format_size(v.size), v.sha256);
    }
    print!("{}", output::printable(&out));
    Ok(())
}
