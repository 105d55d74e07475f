//! `ferry inspect`: what a bundle holds, from its manifest alone, as text, JSON or a
//! self-contained HTML report a change board can read offline.

use super::error::BundleError;
use super::integrity::read_manifest;
use super::manifest::{MANIFEST_FILE, Manifest, SIGNATURE_FILE};
use super::minisign::Signature;
use crate::html::escape as esc;
use crate::units::format_size;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub bundle: PathBuf,
    /// The key id in the signature file (`None`: unsigned). Inspect does not check trust:
    /// `ferry verify` does.
    pub signature_key_id: Option<String>,
    pub manifest: Manifest,
    /// Software updates added, by classification then product.
    pub by_classification: BTreeMap<String, BTreeMap<String, usize>>,
}

pub fn inspect(path: &Path) -> Result<Inspection, BundleError> {
    let (dir, manifest, _) = read_manifest(path)?;
    let signature_key_id = std::fs::read_to_string(dir.join(SIGNATURE_FILE))
        .ok()
        .and_then(|t| Signature::parse(&t).ok())
        .map(|s| s.key_id.to_string());
    Ok(inspection_of(dir, signature_key_id, manifest))
}

/// The inspection of a manifest, wherever it comes from (a bundle, or the copy an import kept).
pub fn inspection_of(
    bundle: PathBuf,
    signature_key_id: Option<String>,
    manifest: Manifest,
) -> Inspection {
    let mut by_classification: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for u in &manifest.updates {
        let class = u.classification.clone().unwrap_or_else(|| "(unclassified)".into());
        let products = if u.products.is_empty() {
            vec!["(no product)".to_string()]
        } else {
            u.products.clone()
        };
        for p in products {
            *by_classification.entry(class.clone()).or_default().entry(p).or_default() += 1;
        }
    }
    Inspection { bundle, signature_key_id, manifest, by_classification }
}

/// A single HTML page with inline styles: no scripts, no external resources.
pub fn html(i: &Inspection) -> String {
    let m = &i.manifest;
    let mut h = String::new();
    h.push_str("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!("<title>Ferry bundle {} #{}</title>", esc(m.channel.as_str()), m.sequence));
    h.push_str(
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:1rem 0}\
         td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}th{background:#f2f2f2}\
         .mono{font-family:ui-monospace,monospace;font-size:.9em}.warn{color:#a40}</style></head><body>",
    );
    h.push_str(&format!("<h1>Bundle {} · sequence {}</h1>", esc(m.channel.as_str()), m.sequence));
    h.push_str("<table>");
    for (k, v) in summary_rows(i) {
        h.push_str(&format!("<tr><th>{}</th><td class=\"mono\">{}</td></tr>", esc(k), esc(&v)));
    }
    h.push_str("</table>");
    h.push_str("<p class=\"warn\">This page shows what the manifest says. Check the signature and every byte with <code>ferry verify BUNDLE --trust KEY.pub</code> before import.</p>");
    h.push_str("<h2>Updates by classification and product</h2><table><tr><th>Classification</th><th>Product</th><th>Updates</th></tr>");
    for (class, products) in &i.by_classification {
        for (product, n) in products {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{n}</td></tr>",
                esc(class),
                esc(product)
            ));
        }
    }
    h.push_str("</table>");
    h.push_str(&format!("<h2>Updates added or revised ({})</h2>", m.updates.len()));
    h.push_str("<table><tr><th>KB</th><th>Title</th><th>Classification</th><th>Severity</th><th>Change</th><th>Payload</th></tr>");
    for u in &m.updates {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&u.kb.as_ref().map(|k| format!("KB{k}")).unwrap_or_default()),
            esc(&u.title),
            esc(u.classification.as_deref().unwrap_or("")),
            esc(u.msrc_severity.as_deref().unwrap_or("")),
            esc(&u.change),
            esc(&format_size(u.payload_bytes))
        ));
    }
    h.push_str("</table>");
    push_published(&mut h, m);
    push_withdrawn_and_policy(&mut h, m);
    h.push_str("<h2>Volumes</h2><table><tr><th>Volume</th><th>Size</th><th>SHA-256</th></tr>");
    for v in &m.volumes {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            esc(&v.name),
            esc(&format_size(v.size)),
            esc(&v.sha256)
        ));
    }
    h.push_str(&format!(
        "</table><p>Files of this bundle: <code>{MANIFEST_FILE}</code>, <code>{SIGNATURE_FILE}</code> and the volumes above; \
         <code>sha256sum</code> of each volume must match.</p></body></html>\n"
    ));
    h
}

/// The manifest's facts, as the page's first table shows them.
fn summary_rows(i: &Inspection) -> Vec<(&'static str, String)> {
    let m = &i.manifest;
    let kind = match m.base_sequence {
        Some(b) => format!("delta on sequence {b}"),
        None => "full".to_string(),
    };
    vec![
        ("Bundle id", m.bundle_id.to_string()),
        ("Kind", kind),
        ("Created", m.created.clone()),
        ("Expires", m.expires.clone().unwrap_or_else(|| "never".into())),
        ("Signer key id (manifest)", m.signer_key_id.clone()),
        ("Signature key id", i.signature_key_id.clone().unwrap_or_else(|| "UNSIGNED".into())),
        ("Exporter", m.exporter.clone()),
        ("Upstream", m.upstream.url.clone().unwrap_or_default()),
        ("Products", m.selection.products.join(", ")),
        ("Classifications", m.selection.classifications.join(", ")),
        (
            "Languages",
            m.selection.languages.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", "),
        ),
        ("Express files", if m.selection.express { "carried" } else { "left behind" }.to_string()),
        ("Payloads", m.selection.payloads.clone()),
        ("Revisions", m.summary.revisions.to_string()),
        ("Software updates", m.summary.software_updates.to_string()),
        (
            "Payload files",
            format!("{} ({})", m.summary.payload_files, format_size(m.summary.payload_bytes)),
        ),
        ("Total size", format_size(m.summary.total_bytes)),
    ]
}

/// The updates published on the connected side, when the bundle carries any.
fn push_published(h: &mut String, m: &Manifest) {
    if m.published.is_empty() {
        return;
    }
    h.push_str(&format!(
        "<h2>Published updates ({})</h2><table><tr><th>Update</th><th>Vendor</th><th>Product</th><th>Version</th><th>Installer</th><th>Published</th></tr>",
        m.published.len()
    ));
    for p in &m.published {
        h.push_str(&format!(
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td></tr>",
            esc(p.update_id.as_str()),
            esc(p.vendor.as_str()),
            esc(p.product.as_str()),
            esc(p.version.as_ref().map_or("", |v| v.as_str())),
            esc(p.installer_name.as_str()),
            esc(p.installer.as_str()),
            esc(p.published_at.as_str())
        ));
    }
    h.push_str("</table>");
}

/// The updates a bundle withdraws and its approval policy, when it has them.
fn push_withdrawn_and_policy(h: &mut String, m: &Manifest) {
    if !m.removed.is_empty() {
        h.push_str(&format!(
            "<h2>Updates withdrawn ({})</h2><table><tr><th>Update</th><th>Title</th><th>Reason</th></tr>",
            m.removed.len()
        ));
        for r in &m.removed {
            h.push_str(&format!(
                "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.update_id.to_string()),
                esc(&r.title),
                esc(&r.reason)
            ));
        }
        h.push_str("</table>");
    }
    if let Some(p) = &m.approval_policy {
        h.push_str(
            "<h2>Approval policy</h2><p>Decided on the connected side and signed with the bundle; applied on import only with \
             <code>--apply-approvals</code>.</p><table><tr><th>Kind</th><th>What</th><th>Group</th><th>Action</th><th>Deadline</th></tr>",
        );
        for line in policy_lines(p) {
            h.push_str("<tr>");
            for cell in line {
                h.push_str(&format!("<td>{}</td>", esc(&cell)));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
    }
}

/// The approval policy as rows: kind, what, group, action, deadline.
pub fn policy_lines(p: &super::approvals::ApprovalPolicy) -> Vec<[String; 5]> {
    let any = |v: &[String]| if v.is_empty() { "any".to_string() } else { v.join(", ") };
    let mut rows = Vec::new();
    for r in &p.rules {
        rows.push([
            "rule".to_string(),
            format!("{} / {}", any(&r.classifications), any(&r.products)),
            r.group.clone(),
            r.action.clone().unwrap_or_else(|| "install".into()),
            r.deadline_days.map(|d| format!("{d} days after approval")).unwrap_or_default(),
        ]);
    }
    for a in &p.approve {
        rows.push([
            "approve".to_string(),
            a.update.clone(),
            a.group.clone(),
            a.action.clone().unwrap_or_else(|| "install".into()),
            a.deadline.clone().unwrap_or_default(),
        ]);
    }
    for d in &p.decline {
        rows.push(["decline".to_string(), d.clone(), String::new(), String::new(), String::new()]);
    }
    rows
}
