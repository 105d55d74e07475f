//! `ferry computers list|move|remove`: the computers that talk to this server
//! (Get-WsusComputer, Add-WsusComputer, Remove-WsusComputer).

use super::output;
use anyhow::Context;
use ferry::admin::AdminService;
use ferry::store::StoreLocation;
use ferry::store::{Store, TargetingMode};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// The computers, with their groups and last contact (Get-WsusComputer).
    List(ListArgs),
    /// Put computers in a group (server-side targeting; Add-WsusComputer). Replaces their groups
    /// unless --keep.
    Move {
        /// Computer names (pc01 or pc01.plant.example) or SusClientIds; `-` reads them from stdin.
        #[arg(required = true, value_name = "COMPUTER")]
        computers: Vec<String>,
        #[arg(long)]
        group: String,
        /// Add the group to the computers' groups instead of replacing them.
        #[arg(long)]
        keep: bool,
    },
    /// Forget computers and their reports (Remove-WsusComputer); they come back as new when
    /// they next contact the server.
    Remove {
        #[arg(required = true, value_name = "COMPUTER")]
        computers: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Name substring (case-insensitive).
    #[arg(long)]
    name: Option<String>,
    /// Only computers in this group (or its subgroups).
    #[arg(long)]
    group: Option<String>,
    /// Only computers with at least one update in this state (Get-WsusComputer
    /// -UpdateInstallationStatus): needed, failed, installed-pending-reboot, ...
    #[arg(long)]
    status: Option<String>,
    /// Print only SusClientIds, one per line (for pipelines).
    #[arg(long, conflicts_with = "json")]
    ids: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(at: &StoreLocation, cmd: Command) -> anyhow::Result<()> {
    let mut store = Store::open_or_create_at(at)?;
    match cmd {
        Command::List(a) => list(&store, a),
        Command::Move { computers, group, keep } => {
            let names = names(&computers)?;
            let (g, moved) = AdminService::new(&mut store).move_computers(&names, &group, keep)?;
            println!("{moved} computer(s) now in {}", g.name);
            if store.targeting()?.mode == TargetingMode::Client {
                eprintln!(
                    "note: targeting is client-side: a computer that sends group names moves back at its next contact \
                     (`ferry groups targeting --mode server` to place computers here)"
                );
            }
            Ok(())
        }
        Command::Remove { computers } => {
            let n = AdminService::new(&mut store).remove_computers(&names(&computers)?)?;
            println!("removed {n} computer(s)");
            Ok(())
        }
    }
}

/// Computer names or ids as typed: the arguments, or standard input when the only one is `-`.
fn names(args: &[String]) -> anyhow::Result<Vec<String>> {
    super::input::args_or_stdin(args).context("reading computer names")
}

fn list(store: &Store, a: ListArgs) -> anyhow::Result<()> {
    let mut computers = ferry::admin::computers_in_group(
        store,
        a.group.as_deref().unwrap_or(ferry::store::ALL_COMPUTERS),
    )?;
    if let Some(name) = &a.name {
        let name = name.to_lowercase();
        computers.retain(|c| c.dns_name.to_lowercase().contains(&name));
    }
    if let Some(status) = &a.status {
        let state = super::input::update_state(status)?;
        let report = ferry::admin::compliance_report(store, computers.clone(), None)?;
        let matching: std::collections::HashSet<ferry::ids::ComputerId> = report
            .computers
            .into_iter()
            .filter(|c| c.counts.get(state) > 0)
            .map(|c| c.computer_id)
            .collect();
        computers.retain(|c| matching.contains(&c.computer_id));
    }
    if a.json {
        return output::json(&computers);
    }
    if a.ids {
        for c in &computers {
            println!("{}", c.computer_id);
        }
        return Ok(());
    }
    let names: std::collections::HashMap<ferry::ids::GroupId, String> =
        store.groups()?.into_iter().map(|g| (g.group_id, g.name)).collect();
    let rows: Vec<Vec<String>> = computers
        .iter()
        .map(|c| {
            vec![
                c.dns_name.clone(),
                c.groups
                    .iter()
                    .map(|g| names.get(g).cloned().unwrap_or_else(|| g.to_string()))
                    .collect::<Vec<_>>()
                    .join(", "),
                c.last_contact_at.clone(),
                c.last_report_at.clone().unwrap_or_else(|| "never".into()),
                c.os_description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["COMPUTER", "GROUPS", "LAST CONTACT", "LAST REPORT", "OS"], &rows);
    eprintln!("{} computer(s)", computers.len());
    Ok(())
}
