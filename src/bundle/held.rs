//! What a store holds from bundles, by the selections of the newest bundle of each channel:
//! which languages came across and whether express files did. The server advertises it to
//! downstream servers; import compares a bundle's selection with it and says what changed.

use super::manifest::{Manifest, Selection};
use crate::catalog::Language;
use crate::store::{Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// Languages of language-specific updates; None when a channel carries all of them.
    pub languages: Option<BTreeSet<String>>,
    /// Every channel carried express files (bundles from before that choice did).
    pub express: bool,
    /// Channels imported (0: the store holds no bundle, e.g. a connected side's cache).
    pub channels: usize,
}

/// The selection of the newest imported bundle of each channel.
pub fn channel_selections(store: &Store) -> Result<BTreeMap<String, Selection>, StoreError> {
    let mut newest: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for i in store.imports()? {
        let entry = newest.entry(i.channel.clone()).or_insert((i.sequence, i.bundle_id.clone()));
        if i.sequence >= entry.0 {
            *entry = (i.sequence, i.bundle_id);
        }
    }
    let mut out = BTreeMap::new();
    for (channel, (_, bundle_id)) in newest {
        // Manifests were checked when imported; one that no longer reads says nothing.
        if let Some(json) = store.import_manifest(&bundle_id)?
            && let Ok(m) = Manifest::from_stored(&json)
        {
            out.insert(channel, m.selection);
        }
    }
    Ok(out)
}

pub fn held(store: &Store) -> Result<Held, StoreError> {
    let selections = channel_selections(store)?;
    let mut languages = Some(BTreeSet::new());
    for s in selections.values() {
        if s.languages.iter().any(Language::is_all) {
            languages = None;
        }
        if let Some(set) = languages.as_mut() {
            set.extend(s.languages.iter().map(Language::to_string));
        }
    }
    Ok(Held {
        languages,
        express: selections.values().all(|s| s.express),
        channels: selections.len(),
    })
}

/// What a bundle's selection changes against the channel's previous bundle, in words for the
/// import report (nothing when nothing changed or the channel is new).
pub fn selection_changes(previous: Option<&Selection>, next: &Selection) -> Vec<String> {
    let Some(previous) = previous else { return Vec::new() };
    let mut out = Vec::new();
    let (before, after): (BTreeSet<&Language>, BTreeSet<&Language>) =
        (previous.languages.iter().collect(), next.languages.iter().collect());
    let added: Vec<&str> = after.difference(&before).map(|s| s.as_str()).collect();
    let dropped: Vec<&str> = before.difference(&after).map(|s| s.as_str()).collect();
    if !added.is_empty() {
        out.push(format!(
            "the channel now carries languages {}: their updates arrive from this bundle on",
            added.join(", ")
        ));
    }
    if !dropped.is_empty() {
        out.push(format!(
            "the channel no longer carries languages {}: updates for them that earlier bundles brought are withdrawn by this one (see `ferry inspect`, removed)",
            dropped.join(", ")
        ));
    }
    if previous.express != next.express {
        out.push(if next.express {
            "express installation files travel from this bundle on".to_string()
        } else {
            "express installation files no longer travel: clients download the full files (those already here stay)".to_string()
        });
    }
    if previous.payloads != next.payloads {
        out.push(format!("payloads changed from {:?} to {:?}", previous.payloads, next.payloads));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(languages: &[&str], express: bool) -> Selection {
        Selection {
            products: vec![],
            classifications: vec![],
            languages: languages.iter().map(|s| Language::new(s).unwrap()).collect(),
            include_superseded: false,
            payloads: "all".into(),
            express,
        }
    }

    #[test]
    fn changes_of_languages_and_express_are_named() {
        assert!(selection_changes(None, &selection(&["en"], false)).is_empty());
        assert!(
            selection_changes(Some(&selection(&["en"], false)), &selection(&["en"], false))
                .is_empty()
        );
        let c = selection_changes(
            Some(&selection(&["en", "fr"], true)),
            &selection(&["en", "de"], false),
        );
        assert_eq!(c.len(), 3, "{c:?}");
        assert!(c[0].contains("de") && c[1].contains("fr") && c[2].contains("full files"), "{c:?}");
    }
}
