//! `ferry groups list|add|move|remove|targeting`: the computer group tree (WSUS's "Computers"
//! node, Get-WsusComputerTargetGroup / Add-WsusComputerTargetGroup) and how computers get their
//! groups.

use super::output;
use ferry::admin::{AdminService, TargetingChange};
use ferry::store::StoreLocation;
use ferry::store::{GroupInTree, Store, TargetingMode};
use std::collections::HashMap;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// The group tree, with the computers directly in each group.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a group (under All Computers unless --parent says otherwise).
    Add {
        name: String,
        #[arg(long)]
        parent: Option<String>,
    },
    /// Move a group, with its subgroups, under another group.
    Move {
        name: String,
        #[arg(long)]
        parent: String,
    },
    /// Remove a group without subgroups: its approvals and rules go, computers only in it wait
    /// in Unassigned Computers.
    Remove { name: String },
    /// Show or set targeting: `client` (the group names clients send through Group Policy
    /// decide) or `server` (administrators place computers with `ferry computers move`).
    Targeting {
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
        /// Client-side targeting: create groups clients name that do not exist (true), or leave
        /// such computers in Unassigned Computers (false, as WSUS does).
        #[arg(long)]
        create_missing_groups: Option<bool>,
        /// Client-side targeting: how many groups clients may create in all (clients name
        /// groups without authenticating); beyond it such computers wait in Unassigned Computers.
        #[arg(long, value_name = "N")]
        max_client_groups: Option<u32>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum ModeArg {
    Client,
    Server,
}

#[derive(serde::Serialize)]
struct GroupRow {
    #[serde(flatten)]
    group: GroupInTree,
    computers: usize,
}

pub fn run(at: &StoreLocation, cmd: Command) -> anyhow::Result<()> {
    let mut store = Store::open_or_create_at(at)?;
    match cmd {
        Command::List { json } => list(&store, json),
        Command::Add { name, parent } => {
            let g = AdminService::new(&mut store).create_group(&name, parent.as_deref())?;
            println!("created group {} ({})", g.name, g.group_id);
            Ok(())
        }
        Command::Move { name, parent } => {
            let g = AdminService::new(&mut store).move_group(&name, &parent)?;
            println!("moved {} under {parent}", g.name);
            Ok(())
        }
        Command::Remove { name } => {
            let r = AdminService::new(&mut store).remove_group(&name)?;
            println!(
                "removed group {}: {} approval(s) and {} rule(s) removed, {} computer(s) now in Unassigned Computers",
                r.group, r.approvals_removed, r.rules_removed, r.computers_unassigned
            );
            Ok(())
        }
        Command::Targeting { mode, create_missing_groups, max_client_groups, json } => {
            let mode = mode.map(|m| match m {
                ModeArg::Client => "client",
                ModeArg::Server => "server",
            });
            let change = TargetingChange { mode, create_missing_groups, max_client_groups };
            let asked =
                mode.is_some() || create_missing_groups.is_some() || max_client_groups.is_some();
            let t = if asked {
                AdminService::new(&mut store).set_targeting(&change)?
            } else {
                store.targeting()?
            };
            if json {
                return output::json(&t);
            }
            match t.mode {
                TargetingMode::Client if t.create_missing_groups => println!(
                    "client-side targeting: clients' group names decide; unknown names create groups (at most {} in all)",
                    t.max_client_groups
                ),
                TargetingMode::Client => {
                    println!(
                        "client-side targeting: clients' group names decide; unknown names leave them in Unassigned Computers"
                    )
                }
                TargetingMode::Server => {
                    println!("server-side targeting: `ferry computers move` places computers")
                }
            }
            Ok(())
        }
    }
}

fn list(store: &Store, json: bool) -> anyhow::Result<()> {
    let mut members: HashMap<ferry::ids::GroupId, usize> = HashMap::new();
    for c in store.computers()? {
        for g in c.groups {
            *members.entry(g).or_default() += 1;
        }
    }
    let rows: Vec<GroupRow> = ferry::admin::group_tree(store)?
        .into_iter()
        .map(|group| {
            let computers = members.get(&group.group.group_id).copied().unwrap_or_default();
            GroupRow { group, computers }
        })
        .collect();
    if json {
        return output::json(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("{}{}", "  ".repeat(r.group.depth), r.group.group.name),
                r.computers.to_string(),
                r.group.group.group_id.to_string(),
            ]
        })
        .collect();
    output::table(&["GROUP", "COMPUTERS", "ID"], &table);
    Ok(())
}
