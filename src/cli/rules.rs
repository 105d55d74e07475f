//! `ferry rules add|list|remove|enable|disable|apply`: automatic approval rules, applied after
//! every import (WSUS's Options > Automatic Approvals).

use super::output;
use ferry::admin::{Action, AdminService, NewRuleRequest};
use ferry::store::Store;
use ferry::store::StoreLocation;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Add a rule: updates of these classifications and products get approved for a group.
    Add {
        /// Classification titles or GUIDs ("Security Updates"; repeatable; none: any).
        #[arg(long)]
        classification: Vec<String>,
        /// Product titles or GUIDs ("Windows 11"; repeatable; none: any).
        #[arg(long)]
        product: Vec<String>,
        #[arg(long)]
        group: String,
        #[arg(long, value_enum, default_value = "install")]
        action: ActionArg,
        /// Installation deadline, this many days after the approval.
        #[arg(long)]
        deadline_days: Option<u32>,
        /// A name for the rule (default: made from what it selects).
        #[arg(long)]
        name: Option<String>,
        /// Do not apply it to the updates the store holds now (only to later imports).
        #[arg(long)]
        no_apply: bool,
    },
    /// The rules.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a rule (by name or id); the approvals it made stay.
    Remove { rule: String },
    /// Turn a rule on.
    Enable { rule: String },
    /// Turn a rule off (kept, not applied).
    Disable { rule: String },
    /// Apply the enabled rules to what the store holds now (WSUS's "Run Rule").
    Apply {
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum ActionArg {
    Install,
    Uninstall,
}

pub fn run(at: &StoreLocation, cmd: Command) -> anyhow::Result<()> {
    let mut store = Store::open_or_create_at(at)?;
    match cmd {
        Command::Add { classification, product, group, action, deadline_days, name, no_apply } => {
            let action = match action {
                ActionArg::Install => Action::Install,
                ActionArg::Uninstall => Action::Uninstall,
            };
            let rule = AdminService::new(&mut store).add_rule(&NewRuleRequest {
                name: name.as_deref(),
                classifications: &classification,
                products: &product,
                group: &group,
                action,
                deadline_days,
            })?;
            println!("added rule {} ({:?})", rule.rule_id, rule.name);
            if !no_apply {
                apply(&mut store, false)?;
            }
            Ok(())
        }
        Command::List { json } => {
            let rules = store.approval_rules()?;
            if json {
                return output::json(&rules);
            }
            let any = |v: &[String]| if v.is_empty() { "any".to_string() } else { v.join(", ") };
            let rows: Vec<Vec<String>> = rules
                .iter()
                .map(|r| {
                    vec![
                        r.rule_id.to_string(),
                        if r.enabled { "on" } else { "off" }.into(),
                        any(&r.classifications),
                        any(&r.products),
                        r.group_name.clone(),
                        r.action.to_string(),
                        r.deadline_days
                            .map(|d| format!("{d} days"))
                            .unwrap_or_else(|| "none".into()),
                        r.name.clone(),
                    ]
                })
                .collect();
            output::table(
                &[
                    "ID",
                    "ENABLED",
                    "CLASSIFICATIONS",
                    "PRODUCTS",
                    "GROUP",
                    "ACTION",
                    "DEADLINE",
                    "NAME",
                ],
                &rows,
            );
            Ok(())
        }
        Command::Remove { rule } => {
            let r = AdminService::new(&mut store).remove_rule(&rule)?;
            println!("removed rule {:?} (the approvals it made stay)", r.name);
            Ok(())
        }
        Command::Enable { rule } => {
            let r = AdminService::new(&mut store).set_rule_enabled(&rule, true)?;
            println!("rule {:?} is on", r.name);
            Ok(())
        }
        Command::Disable { rule } => {
            let r = AdminService::new(&mut store).set_rule_enabled(&rule, false)?;
            println!("rule {:?} is off", r.name);
            Ok(())
        }
        Command::Apply { json } => apply(&mut store, json),
    }
}

fn apply(store: &mut Store, json: bool) -> anyhow::Result<()> {
    let outcomes = AdminService::new(store).apply_approval_rules()?;
    if json {
        return output::json(&outcomes);
    }
    for o in &outcomes {
        println!("rule {:?} approved {} update(s) for {}", o.rule, o.approved.len(), o.group);
    }
    Ok(())
}
