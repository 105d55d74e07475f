//! `ferry updates list|show|approve|decline|...`: the catalog as WSUS's Get-WsusUpdate shows it,
//! and approvals as Approve-WsusUpdate and Deny-WsusUpdate make them.

use super::output;
use anyhow::Context;
use ferry::admin::{Action, AdminService, Approve};
use ferry::store::StoreLocation;
use ferry::store::{ApprovalState, FragmentKind, Store, UpdateFilter};
use ferry::units::format_size;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// List the newest revision of each update (Get-WsusUpdate).
    List(ListArgs),
    /// One update in detail, or one of its fragments exactly as clients get it.
    Show(ShowArgs),
    /// Approve updates for a computer group (Approve-WsusUpdate). The running server sees it at once.
    Approve(ApproveArgs),
    /// Remove approvals of updates for a group (Approve-WsusUpdate -Action NotApproved).
    Unapprove(UnapproveArgs),
    /// Decline updates: offered to no computer, approvals removed (Deny-WsusUpdate).
    Decline(IdsArgs),
    /// Make declined updates approvable again.
    Undecline(IdsArgs),
}

#[derive(clap::Args, Debug)]
pub struct IdsArgs {
    /// UpdateIDs or KB numbers; `-` reads them from stdin, one per line
    /// (e.g. from `ferry updates list --ids`).
    #[arg(required = true, value_name = "ID")]
    ids: Vec<String>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum ApproveAction {
    Install,
    Uninstall,
}

#[derive(clap::Args, Debug)]
pub struct ApproveArgs {
    #[command(flatten)]
    ids: IdsArgs,
    /// Target group, by name or id.
    #[arg(long, default_value = "All Computers")]
    group: String,
    #[arg(long, value_enum, default_value = "install")]
    action: ApproveAction,
    /// Installation deadline: 2026-12-01, 2026-12-01T18:00 (UTC) or RFC 3339.
    #[arg(long)]
    deadline: Option<String>,
    /// Do not also approve the updates these need installed first.
    #[arg(long)]
    without_prerequisites: bool,
}

#[derive(clap::Args, Debug)]
pub struct UnapproveArgs {
    #[command(flatten)]
    ids: IdsArgs,
    /// Target group, by name or id.
    #[arg(long, default_value = "All Computers")]
    group: String,
}

/// Get-WsusUpdate's `-Approval` values.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum ApprovalArg {
    Approved,
    Unapproved,
    Declined,
    AnyExceptDeclined,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Classification title (prefix, case-insensitive: "security") or GUID.
    #[arg(long)]
    classification: Option<String>,
    /// Product title (substring, case-insensitive: "windows 11") or GUID.
    #[arg(long)]
    product: Option<String>,
    /// Title substring or KB number.
    #[arg(long)]
    search: Option<String>,
    /// Include categories, detectoids and bundle members.
    #[arg(long)]
    all: bool,
    /// Only updates in this approval state.
    #[arg(long, value_enum)]
    approval: Option<ApprovalArg>,
    /// Only updates that at least one computer is in this state for (Get-WsusUpdate -Status):
    /// needed, failed, installed, installed-pending-reboot, not-applicable, unknown.
    #[arg(long)]
    status: Option<String>,
    /// With --status: only the computers of this group (and its subgroups).
    #[arg(long, requires = "status")]
    group: Option<String>,
    /// Print only UpdateIDs, one per line (for pipelines).
    #[arg(long, conflicts_with = "json")]
    ids: bool,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// UpdateID, UpdateID/revision, a KB number (KB5026368) or #revision-id.
    id: String,
    /// Print a fragment as clients get it: core, extended or localized:LANG.
    #[arg(long, value_name = "KIND")]
    fragment: Option<String>,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(at: &StoreLocation, cmd: Command) -> anyhow::Result<()> {
    let mut store = Store::open_at(at)?;
    match cmd {
        Command::List(a) => list(&store, a),
        Command::Show(a) => show(&store, a),
        Command::Approve(a) => approve(&mut store, a),
        Command::Unapprove(a) => {
            let Some(ids) = typed_ids(&a.ids)? else { return Ok(()) };
            let (group, n) = AdminService::new(&mut store).unapprove(&ids, &a.group)?;
            eprintln!("removed {n} approval(s) for {}", group.name);
            Ok(())
        }
        Command::Decline(a) => {
            let Some(typed) = typed_ids(&a)? else { return Ok(()) };
            let mut admin = AdminService::new(&mut store);
            let ids = admin.updates(&typed)?;
            let n = admin.decline_ids(&ids, None)?;
            eprintln!(
                "declined {n} update(s){}",
                if n < ids.len() {
                    format!(" ({} already were)", ids.len() - n)
                } else {
                    String::new()
                }
            );
            Ok(())
        }
        Command::Undecline(a) => {
            let Some(ids) = typed_ids(&a)? else { return Ok(()) };
            let n = AdminService::new(&mut store).undecline(&ids)?;
            eprintln!("{n} update(s) are approvable again");
            Ok(())
        }
    }
}

/// The update ids as typed: the arguments, or standard input when the only one is `-`. None
/// (said on stderr) when standard input named none: an empty list piped in changes nothing and
/// is no failure, so `ferry updates list --ids ... | ferry updates approve -` works in scripts.
fn typed_ids(args: &IdsArgs) -> anyhow::Result<Option<Vec<String>>> {
    let ids = super::input::args_or_stdin(&args.ids).context("reading update ids")?;
    if ids.is_empty() {
        eprintln!("no update ids were given: nothing changed");
        return Ok(None);
    }
    Ok(Some(ids))
}

fn approve(store: &mut Store, a: ApproveArgs) -> anyhow::Result<()> {
    let action = match a.action {
        ApproveAction::Install => Action::Install,
        ApproveAction::Uninstall => Action::Uninstall,
    };
    let Some(updates) = typed_ids(&a.ids)? else { return Ok(()) };
    let approved = AdminService::new(store).approve(&Approve {
        updates: &updates,
        group: &a.group,
        action,
        deadline: a.deadline.as_deref(),
        admin: None,
        with_prerequisites: !a.without_prerequisites,
    })?;
    if !approved.prerequisites.is_empty() {
        eprintln!(
            "also approving {} prerequisite update(s): {}",
            approved.prerequisites.len(),
            approved.prerequisites.join(", ")
        );
    }
    eprintln!(
        "approved {} update(s) for {} ({action}{})",
        approved.approvals.len(),
        approved.group.name,
        approved.deadline.map(|d| format!(", deadline {d}")).unwrap_or_default()
    );
    Ok(())
}

fn list(store: &Store, a: ListArgs) -> anyhow::Result<()> {
    let approval = a.approval.map(|x| match x {
        ApprovalArg::Approved => ApprovalState::Approved,
        ApprovalArg::Unapproved => ApprovalState::Unapproved,
        ApprovalArg::Declined => ApprovalState::Declined,
        ApprovalArg::AnyExceptDeclined => ApprovalState::AnyExceptDeclined,
    });
    let filter = UpdateFilter {
        all: a.all,
        text: a.search,
        classification: a.classification,
        product: a.product,
        approval,
    };
    let mut updates = store.list_updates(&filter)?;
    if let Some(status) = &a.status {
        let state = super::input::update_state(status)?;
        let computers = ferry::admin::computers_in_group(
            store,
            a.group.as_deref().unwrap_or(ferry::store::ALL_COMPUTERS),
        )?;
        let statuses = store.computer_statuses()?;
        let arrived = store.arrival_times()?;
        let empty = ferry::compliance::ComputerStatus::default();
        updates.retain(|u| {
            let arrived = arrived.get(u.update_id.as_str()).map_or("", String::as_str);
            computers.iter().any(|c| {
                statuses
                    .get(c.computer_id.as_str())
                    .unwrap_or(&empty)
                    .state_of(&u.update_id, arrived)
                    == state
            })
        });
    }
    if a.json {
        return output::json(&updates);
    }
    if a.ids {
        for u in &updates {
            println!("{}", u.update_id);
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = updates
        .iter()
        .map(|u| {
            vec![
                u.update_id.to_string(),
                u.revision_number.to_string(),
                u.kb_article.as_ref().map(|k| format!("KB{k}")).unwrap_or_default(),
                u.classification.clone().unwrap_or_else(|| {
                    u.category_kind.clone().unwrap_or_else(|| u.update_type.clone())
                }),
                if u.superseded {
                    format!("{} (superseded)", u.approval)
                } else {
                    u.approval.to_string()
                },
                u.title.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["UPDATE ID", "REV", "KB", "CLASSIFICATION", "APPROVAL", "TITLE"], &rows);
    eprintln!("{} update(s)", updates.len());
    Ok(())
}

fn show(store: &Store, a: ShowArgs) -> anyhow::Result<()> {
    let ids = store.resolve_update(&a.id)?;
    if ids.len() > 1 {
        let names: Vec<String> = ids
            .iter()
            .map(|r| {
                store
                    .update_summary(*r)
                    .map(|s| format!("{} {}", s.update_id, s.title.unwrap_or_default()))
            })
            .collect::<Result<_, _>>()?;
        anyhow::bail!(
            "{} matches {} updates; name one by UpdateID:\n  {}",
            a.id,
            ids.len(),
            names.join("\n  ")
        );
    }
    let revision_id = ids[0];
    if let Some(kind) = &a.fragment {
        return show_fragment(store, revision_id, &a.id, kind, a.json);
    }
    let d = store.update_detail(revision_id)?;
    if a.json {
        return output::json(&d);
    }
    print_detail(&d);
    Ok(())
}

/// `--fragment`: one of the revision's fragments as clients receive it.
fn show_fragment(
    store: &Store,
    revision_id: i32,
    id: &str,
    kind: &str,
    json: bool,
) -> anyhow::Result<()> {
    let kind = match kind {
        "core" => FragmentKind::Core,
        "extended" => FragmentKind::Extended,
        k => match k.strip_prefix("localized:") {
            Some(lang) if !lang.is_empty() => FragmentKind::Localized(lang.to_string()),
            _ => anyhow::bail!(
                "--fragment {k}: use core, extended or localized:LANG (e.g. localized:en)"
            ),
        },
    };
    let fragment = store.fragment(revision_id, &kind)?.with_context(|| match &kind {
        FragmentKind::Localized(l) => format!("{id} has no localized properties in {l:?}"),
        _ => format!("{id} has no such fragment"),
    })?;
    if json {
        return output::json(
            &serde_json::json!({ "revision_id": revision_id, "fragment": fragment }),
        );
    }
    print!("{fragment}");
    Ok(())
}

fn print_detail(d: &ferry::store::UpdateDetail) {
    let s = &d.summary;
    println!("{}", s.title.as_deref().unwrap_or("(no title)"));
    println!(
        "  update id       {}/{} (revision id {})",
        s.update_id, s.revision_number, s.revision_id
    );
    println!(
        "  type            {}{}",
        s.update_type,
        s.category_kind.as_ref().map(|k| format!(" ({k})")).unwrap_or_default()
    );
    if let Some(kb) = &s.kb_article {
        println!("  KB              KB{kb}");
    }
    if let Some(c) = &s.classification {
        println!("  classification  {c}");
    }
    if !s.products.is_empty() {
        println!("  products        {}", s.products.join(", "));
    }
    if let Some(sev) = &s.msrc_severity {
        println!("  MSRC severity   {sev}");
    }
    println!("  state           {}", s.publication_state.as_deref().unwrap_or("Published"));
    if let Some(date) = &s.creation_date {
        println!("  created         {date}");
    }
    if let Some(h) = &d.handler {
        println!("  handler         {h}");
    }
    println!("  languages       {}", d.languages.join(", "));
    println!(
        "  metadata        document {}, core fragment {}",
        format_size(d.document_size),
        format_size(d.core_size)
    );
    for (i, g) in d.prerequisites.iter().enumerate() {
        println!(
            "  prerequisite {}  {}{}",
            i + 1,
            g.update_ids.join(" or "),
            if g.is_category { " (category)" } else { "" }
        );
    }
    for b in &d.bundled_updates {
        println!("  bundles         {b}");
    }
    for b in &d.bundled_in {
        println!("  bundled in      {b}");
    }
    if !d.supersedes.is_empty() {
        println!("  supersedes      {} update(s)", d.supersedes.len());
    }
    for s in &d.superseded_by {
        println!("  superseded by   {s}");
    }
    for f in &d.files {
        println!(
            "  file            {} {} {} content/{}",
            f.file_name,
            format_size(f.size),
            if f.present { "present" } else { "not downloaded" },
            f.content_path
        );
    }
    if let Some(desc) = &d.description {
        println!("\n{desc}");
    }
}
