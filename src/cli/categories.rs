//! `ferry classifications list` and `ferry products list` (Get-WsusClassification,
//! Get-WsusProduct): what the store holds, how many updates each has, and which ones a profile
//! selects. Set-WsusClassification / Set-WsusProduct are the profile's `classifications` and
//! `products` lists: what an export syncs and carries.

use super::output;
use ferry::store::Store;
use ferry::store::StoreLocation;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// The categories of this kind in the store.
    List {
        /// Mark what this export profile selects.
        #[arg(long)]
        profile: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(serde::Serialize)]
struct Row {
    id: String,
    title: String,
    updates: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    selected: Option<bool>,
}

/// `kind`: `UpdateClassification` or `Product`.
pub fn run(at: &StoreLocation, kind: &str, cmd: Command) -> anyhow::Result<()> {
    let Command::List { profile, json } = cmd;
    let store = Store::open_at(at)?;
    let index = store.category_index()?;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for u in store.list_updates(&Default::default())? {
        let titles = if kind == "Product" {
            u.products.clone()
        } else {
            u.classification.clone().into_iter().collect()
        };
        for t in titles {
            *counts.entry(t).or_default() += 1;
        }
    }
    let selected: Option<Vec<String>> = match &profile {
        Some(path) => {
            let profile = ferry::bundle::profile::Profile::load(path)?;
            let (products, classifications) =
                ferry::bundle::select::resolve_filter(&store.catalog_revisions()?, &profile)
                    .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.0))?;
            Some(
                (if kind == "Product" { products } else { classifications })
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect(),
            )
        }
        None => None,
    };
    let mut rows: Vec<Row> = index
        .by_id
        .iter()
        .filter(|(_, (k, _))| k == kind)
        .map(|(id, (_, title))| {
            let title = title.clone().unwrap_or_default();
            Row {
                updates: counts.get(&title).copied().unwrap_or(0),
                selected: selected.as_ref().map(|s| s.contains(id)),
                id: id.clone(),
                title,
            }
        })
        .collect();
    rows.sort_by_key(|r| r.title.to_lowercase());
    if json {
        return output::json(&rows);
    }
    let mut header = vec!["ID", "TITLE", "UPDATES"];
    if selected.is_some() {
        header.push("SELECTED");
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut row = vec![r.id.clone(), r.title.clone(), r.updates.to_string()];
            if let Some(s) = r.selected {
                row.push(if s { "yes" } else { "" }.into());
            }
            row
        })
        .collect();
    output::table(&header, &table);
    Ok(())
}
