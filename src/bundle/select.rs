//! Which revisions and payloads a profile selects from a catalog (pure: no I/O).
//!
//! As a WSUS downstream server syncs: every category and detectoid (the configuration pass),
//! then the software and driver updates that belong to one of the products AND one of the
//! classifications, with the exact revisions their bundles name and the updates their
//! prerequisites name.

use super::profile::{PayloadPolicy, Profile};
use crate::catalog::Guid;
use crate::store::{CatalogRevision, FileSummary};
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct SelectionError(pub String);

#[derive(Debug, Default)]
pub struct Selected {
    /// Indices into the catalog of every revision the channel carries now.
    pub revisions: Vec<usize>,
    /// The software and driver updates the filter chose (not bundle members or prerequisites).
    pub top_level: HashSet<usize>,
    /// UpdateIDs superseded by a selected update.
    pub superseded: HashSet<String>,
    /// Payload files per the profile's policy, with the index of one revision that needs each.
    pub payloads: Vec<(FileSummary, usize)>,
    /// Resolved (GUID, title) of the products and classifications.
    pub products: Vec<(String, String)>,
    pub classifications: Vec<(String, String)>,
}

/// (GUID, title) of the newest revision of each category of `kind`.
fn categories(catalog: &[CatalogRevision], kind: &str) -> BTreeMap<String, String> {
    catalog
        .iter()
        .filter(|r| r.is_latest && r.update_type == "Category" && r.category_kind.as_deref() == Some(kind))
        .map(|r| (r.update_id.clone(), r.title.clone().unwrap_or_default()))
        .collect()
}

fn resolve(wanted: &[String], known: &BTreeMap<String, String>, what: &str) -> Result<Vec<(String, String)>, SelectionError> {
    let mut out = Vec::new();
    for w in wanted {
        let guid = Guid::parse(w).ok();
        let found = match guid {
            Some(g) => known.get_key_value(&g.to_string()),
            None => known.iter().find(|(_, t)| t.eq_ignore_ascii_case(w.trim())),
        };
        match (found, guid) {
            (Some((id, title)), _) => out.push((id.clone(), title.clone())),
            // A GUID names a category before the catalog holds it (a first sync asks for it).
            (None, Some(g)) => out.push((g.to_string(), g.to_string())),
            (None, None) => {
                let mut names: Vec<&str> = known.values().map(String::as_str).collect();
                names.sort();
                names.truncate(40);
                return Err(SelectionError(format!(
                    "no {what} {w:?} in the cache's catalog (sync first, or check the spelling); known {what}s: {}",
                    names.join(", ")
                )));
            }
        }
    }
    Ok(out)
}

/// (GUID, title) of categories.
pub type Named = Vec<(String, String)>;

/// The profile's products and classifications as (GUID, title), from the catalog's categories.
pub fn resolve_filter(catalog: &[CatalogRevision], profile: &Profile) -> Result<(Named, Named), SelectionError> {
    let products = resolve(&profile.products, &categories(catalog, "Product"), "product")?;
    let classifications = resolve(&profile.classifications, &categories(catalog, "UpdateClassification"), "classification")?;
    Ok((products, classifications))
}

pub fn select(catalog: &[CatalogRevision], profile: &Profile) -> Result<Selected, SelectionError> {
    let (products, classifications) = resolve_filter(catalog, profile)?;
    let product_ids: HashSet<&str> = products.iter().map(|(id, _)| id.as_str()).collect();
    let class_ids: HashSet<&str> = classifications.iter().map(|(id, _)| id.as_str()).collect();

    let by_revision: HashMap<(&str, i32), usize> =
        catalog.iter().enumerate().map(|(i, r)| ((r.update_id.as_str(), r.revision_number), i)).collect();
    let latest: HashMap<&str, usize> =
        catalog.iter().enumerate().filter(|(_, r)| r.is_latest).map(|(i, r)| (r.update_id.as_str(), i)).collect();

    let mut chosen: Vec<usize> = Vec::new();
    for (i, r) in catalog.iter().enumerate() {
        if !r.is_latest || r.expired {
            continue;
        }
        match r.update_type.as_str() {
            "Category" | "Detectoid" => chosen.push(i),
            "Software" | "Driver" => {
                let in_product = r.prerequisites.iter().any(|p| product_ids.contains(p.as_str()));
                let in_class = r.prerequisites.iter().any(|p| class_ids.contains(p.as_str()));
                if in_product && in_class {
                    chosen.push(i);
                }
            }
            _ => {}
        }
    }
    let superseded: HashSet<String> = chosen.iter().flat_map(|&i| catalog[i].superseded.iter().cloned()).collect();
    let top_level: HashSet<usize> = chosen
        .iter()
        .copied()
        .filter(|&i| matches!(catalog[i].update_type.as_str(), "Software" | "Driver"))
        .filter(|&i| profile.include_superseded || !superseded.contains(&catalog[i].update_id))
        .collect();
    chosen.retain(|i| !matches!(catalog[*i].update_type.as_str(), "Software" | "Driver") || top_level.contains(i));

    // Closure: exact bundle members, and the newest revision of software a prerequisite names.
    let mut included: HashSet<usize> = chosen.iter().copied().collect();
    let mut queue: Vec<usize> = chosen.clone();
    let mut payload_owner: HashMap<usize, bool> = chosen.iter().map(|&i| (i, !superseded.contains(&catalog[i].update_id))).collect();
    while let Some(i) = queue.pop() {
        let current = payload_owner.get(&i).copied().unwrap_or(true);
        for (member, rev) in &catalog[i].bundle_members {
            if let Some(&m) = by_revision.get(&(member.as_str(), *rev)) {
                // A member's files are "not superseded" when any bundle carrying it is not.
                let entry = payload_owner.entry(m).or_insert(false);
                let changed = current && !*entry;
                *entry |= current;
                if included.insert(m) || changed {
                    queue.push(m);
                }
            }
        }
        for p in &catalog[i].prerequisites {
            if let Some(&m) = latest.get(p.as_str())
                && !included.contains(&m)
                && !catalog[m].expired
            {
                included.insert(m);
                payload_owner.entry(m).or_insert(current);
                queue.push(m);
            }
        }
    }
    let mut revisions: Vec<usize> = included.into_iter().collect();
    revisions.sort_by_key(|&i| catalog[i].revision_id);

    let mut payloads = Vec::new();
    let mut seen_files = HashSet::new();
    if profile.payloads != PayloadPolicy::None {
        for &i in &revisions {
            if profile.payloads == PayloadPolicy::NotSuperseded && !payload_owner.get(&i).copied().unwrap_or(true) {
                continue;
            }
            for f in &catalog[i].files {
                if seen_files.insert(f.sha1) {
                    payloads.push((f.clone(), i));
                }
            }
        }
    }
    Ok(Selected { revisions, top_level, superseded, payloads, products, classifications })
}
