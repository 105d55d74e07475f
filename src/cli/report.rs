//! `ferry report`: compliance per computer or per update (WSUS's "Computer Status" and "Update
//! Status" reports), from what clients reported.

use super::output;
use ferry::compliance::UpdateState;
use ferry::html::escape;
use ferry::store::StoreLocation;
use ferry::store::{ComplianceReport, Store};
use std::fmt::Write as _;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only computers in this group (or its subgroups).
    #[arg(long)]
    group: Option<String>,
    /// One row per computer (default) or per update.
    #[arg(long, value_enum, default_value = "computer")]
    by: By,
    /// Only computers (or updates) with at least one update (computer) in this state: needed,
    /// failed, installed, installed-pending-reboot, not-applicable, unknown.
    #[arg(long)]
    status: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// The same as --format json.
    #[arg(long)]
    json: bool,
    /// Where the HTML (or other format) goes instead of stdout.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Computer,
    Update,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Table,
    Json,
    Csv,
    Html,
}

const COUNT_HEADERS: [&str; 6] =
    ["INSTALLED", "PENDING REBOOT", "NEEDED", "FAILED", "NOT APPLICABLE", "UNKNOWN"];

pub fn run(at: &StoreLocation, a: Args) -> anyhow::Result<()> {
    let store = Store::open_at(at)?;
    let status = a.status.as_deref().map(super::input::update_state).transpose()?;
    let computers = ferry::admin::computers_in_group(
        &store,
        a.group.as_deref().unwrap_or(ferry::store::ALL_COMPUTERS),
    )?;
    let mut report = ferry::admin::compliance_report(&store, computers, a.group.clone())?;
    if let Some(s) = status {
        report.computers.retain(|c| c.counts.get(s) > 0);
        report.updates.retain(|u| u.counts.get(s) > 0);
    }
    let format = if a.json { Format::Json } else { a.format };
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Csv => csv(&report, a.by),
        Format::Html => html(&report, a.by),
        Format::Table => {
            if a.out.is_none() {
                table(&report, a.by);
                return Ok(());
            }
            csv(&report, a.by)
        }
    };
    match &a.out {
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// Header and rows; the last six columns are the state counts.
fn rows(report: &ComplianceReport, by: By) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let counts = |c: &ferry::compliance::StateCounts| {
        UpdateState::ALL.iter().map(|s| c.get(*s).to_string()).collect::<Vec<_>>()
    };
    match by {
        By::Computer => {
            let mut header = vec!["COMPUTER", "GROUPS", "LAST CONTACT", "LAST REPORT"];
            header.extend(COUNT_HEADERS);
            let rows = report
                .computers
                .iter()
                .map(|c| {
                    let mut row = vec![
                        c.name.clone(),
                        c.groups.join("; "),
                        c.last_contact_at.clone(),
                        c.last_report_at.clone().unwrap_or_else(|| "never".into()),
                    ];
                    row.extend(counts(&c.counts));
                    row
                })
                .collect();
            (header, rows)
        }
        By::Update => {
            // The title is the widest column: last, so the counts stay aligned.
            let mut header = vec!["UPDATE ID", "KB", "APPROVAL"];
            header.extend(COUNT_HEADERS);
            header.push("TITLE");
            let rows = report
                .updates
                .iter()
                .map(|u| {
                    let mut row = vec![
                        u.update_id.to_string(),
                        u.kb_article.as_ref().map(|k| format!("KB{k}")).unwrap_or_default(),
                        u.approval.to_string(),
                    ];
                    row.extend(counts(&u.counts));
                    row.push(u.shown_title());
                    row
                })
                .collect();
            (header, rows)
        }
    }
}

fn table(report: &ComplianceReport, by: By) {
    let (header, rows) = rows(report, by);
    output::table(&header, &rows);
    eprintln!(
        "{} computer(s), {} update(s) in the report",
        report.computers.len(),
        report.updates.len()
    );
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv(report: &ComplianceReport, by: By) -> String {
    let (header, rows) = rows(report, by);
    let mut out = header
        .iter()
        .map(|h| csv_field(&h.to_lowercase().replace(' ', "_")))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for r in rows {
        out += &(r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",") + "\n");
    }
    out
}

/// A self-contained page (no scripts, no external resources) for people without the CLI.
fn html(report: &ComplianceReport, by: By) -> String {
    let (header, rows) = rows(report, by);
    let mut page = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Ferry compliance report</title><style>\
         body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}\
         th{background:#f3f3f3}td.n{text-align:right}.bad{color:#a00;font-weight:bold}</style></head><body>",
    );
    let _ = write!(
        page,
        "<h1>Compliance{}</h1><p>Generated {} from the events clients reported.</p><table><tr>",
        report.group.as_deref().map(|g| format!(": {}", escape(g))).unwrap_or_default(),
        escape(&report.generated_at)
    );
    for h in &header {
        let _ = write!(page, "<th>{}</th>", escape(h));
    }
    page += "</tr>";
    for r in rows {
        page += "<tr>";
        for (i, c) in r.iter().enumerate() {
            let numeric = COUNT_HEADERS.contains(&header[i]);
            let bad = numeric && (header[i] == "FAILED" || header[i] == "NEEDED") && c != "0";
            let _ = write!(
                page,
                "<td{}>{}</td>",
                match (numeric, bad) {
                    (true, true) => " class=\"n bad\"",
                    (true, false) => " class=\"n\"",
                    _ => "",
                },
                escape(c)
            );
        }
        page += "</tr>";
    }
    page += "</table></body></html>\n";
    page
}
