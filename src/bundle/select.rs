//! Which revisions and payloads a profile selects from a catalog (pure: no I/O).
//!
//! As a WSUS downstream server syncs: every category and detectoid (the configuration pass),
//! then the software and driver updates that belong to one of the products AND one of the
//! classifications and are for one of the profile's languages (or for none in particular), with
//! the exact revisions their bundles name and the updates their prerequisites name. Then which
//! of their files travel: the payload policy, and express files only when the profile asks.
//!
//! Every setting that leaves something behind says how much (`LeftBehind`), so a dry run can
//! tell an administrator what each choice costs or saves.

use super::profile::{PayloadPolicy, Profile};
use crate::catalog::Guid;
use crate::catalog::language::wanted_by;
use crate::store::{CatalogRevision, FileSummary};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct SelectionError(pub String);

/// What counts as approved for `payloads = "approved"`: updates approved for install in the
/// cache or by the profile's approval policy, and the policy's rules (classification and product
/// names or GUIDs; an empty list matches any).
#[derive(Debug, Clone, Default)]
pub struct Approved {
    pub update_ids: HashSet<String>,
    pub rules: Vec<(Vec<String>, Vec<String>)>,
}

/// What one setting of the profile left behind: updates not carried, and payload files (with
/// their bytes) that do not travel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Left {
    pub updates: u64,
    pub files: u64,
    pub bytes: u64,
}

/// What each setting left behind (JSON keys as the profile's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LeftBehind {
    pub languages: Left,
    pub express: Left,
    pub superseded: Left,
    pub payloads: Left,
}

#[derive(Debug, Default)]
pub struct Selected {
    /// The UpdateIDs of the published updates the profile carries.
    pub published: HashSet<String>,
    /// Indices into the catalog of every revision the channel carries now.
    pub revisions: Vec<usize>,
    /// The software and driver updates the filter chose (not bundle members or prerequisites).
    pub top_level: HashSet<usize>,
    /// UpdateIDs superseded by a selected update.
    pub superseded: HashSet<String>,
    /// UpdateIDs the filter matched that are for none of the profile's languages.
    pub other_languages: HashSet<String>,
    /// Payload files per the profile's policy, with the index of one revision that needs each.
    pub payloads: Vec<(FileSummary, usize)>,
    /// Resolved (GUID, title) of the products and classifications.
    pub products: Vec<(String, String)>,
    pub classifications: Vec<(String, String)>,
    pub left_behind: LeftBehind,
}

/// (GUID, title) of the newest revision of each category of `kind`.
fn categories(catalog: &[CatalogRevision], kind: &str) -> BTreeMap<String, String> {
    catalog
        .iter()
        .filter(|r| {
            r.is_latest && r.update_type == "Category" && r.category_kind.as_deref() == Some(kind)
        })
        .map(|r| (r.update_id.clone(), r.title.clone().unwrap_or_default()))
        .collect()
}

fn resolve(
    wanted: &[String],
    known: &BTreeMap<String, String>,
    what: &str,
) -> Result<Vec<(String, String)>, SelectionError> {
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
pub fn resolve_filter(
    catalog: &[CatalogRevision],
    profile: &Profile,
) -> Result<(Named, Named), SelectionError> {
    let products = resolve(&profile.products, &categories(catalog, "Product"), "product")?;
    let classifications = resolve(
        &profile.classifications,
        &categories(catalog, "UpdateClassification"),
        "classification",
    )?;
    Ok((products, classifications))
}

/// Whether revision `r` has a category of `ids` among its prerequisites.
fn in_any(r: &CatalogRevision, ids: &HashSet<&str>) -> bool {
    r.prerequisites.iter().any(|p| ids.contains(p.as_str()))
}

/// The approval policy's rules as sets of category GUIDs (None: the rule names no such list).
type RuleSets = Vec<(Option<HashSet<String>>, Option<HashSet<String>>)>;

fn rule_sets(catalog: &[CatalogRevision], approved: &Approved) -> Result<RuleSets, SelectionError> {
    let products = categories(catalog, "Product");
    let classes = categories(catalog, "UpdateClassification");
    let set = |names: &[String],
               known: &BTreeMap<String, String>,
               what: &str|
     -> Result<Option<HashSet<String>>, SelectionError> {
        if names.is_empty() {
            return Ok(None);
        }
        let resolved = resolve(names, known, what)
            .map_err(|e| SelectionError(format!("the approval policy's rules: {e}")))?;
        Ok(Some(resolved.into_iter().map(|(id, _)| id).collect()))
    };
    approved
        .rules
        .iter()
        .map(|(c, p)| Ok((set(c, &classes, "classification")?, set(p, &products, "product")?)))
        .collect()
}

/// An update published in the store the catalog is from (`ferry publish`), by the names a
/// profile's `published` selects it by.
#[derive(Debug, Clone, Copy)]
pub struct PublishedName<'a> {
    pub update_id: &'a str,
    pub vendor: &'a str,
    pub product: &'a str,
}

/// The UpdateIDs of the published updates the profile carries (`Profile::published`): the one
/// place that decides it.
fn published_by_profile(profile: &Profile, published: &[PublishedName<'_>]) -> HashSet<String> {
    published
        .iter()
        .filter(|p| profile.published.carries(p.vendor, p.product))
        .map(|p| p.update_id.to_string())
        .collect()
}

/// Selects what the profile carries from `catalog`. `published`: the updates published in the
/// store the catalog is from (`ferry publish`); those the profile's `published` selects have their
/// newest revisions travel whatever the products, classifications, languages and supersedence
/// say, with their files whatever the payload policy says (they exist nowhere else).
pub fn select(
    catalog: &[CatalogRevision],
    profile: &Profile,
    approved: &Approved,
    published: &[PublishedName<'_>],
) -> Result<Selected, SelectionError> {
    let published = published_by_profile(profile, published);
    let (products, classifications) = resolve_filter(catalog, profile)?;
    let product_ids: HashSet<&str> = products.iter().map(|(id, _)| id.as_str()).collect();
    let class_ids: HashSet<&str> = classifications.iter().map(|(id, _)| id.as_str()).collect();
    let rules = rule_sets(catalog, approved)?;

    let by_revision: HashMap<(&str, i32), usize> = catalog
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.update_id.as_str(), r.revision_number), i))
        .collect();
    let latest: HashMap<&str, usize> = catalog
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_latest)
        .map(|(i, r)| (r.update_id.as_str(), i))
        .collect();
    let for_us = |i: usize| wanted_by(&catalog[i].languages, &profile.languages);

    let mut chosen: Vec<usize> = Vec::new();
    let mut other_language: Vec<usize> = Vec::new();
    for (i, r) in catalog.iter().enumerate() {
        if !r.is_latest || r.expired {
            continue;
        }
        match r.update_type.as_str() {
            "Category" | "Detectoid" => chosen.push(i),
            "Software" | "Driver" if published.contains(&r.update_id) => chosen.push(i),
            "Software" | "Driver" if in_any(r, &product_ids) && in_any(r, &class_ids) => {
                if for_us(i) { chosen.push(i) } else { other_language.push(i) }
            }
            _ => {}
        }
    }
    let superseded: HashSet<String> =
        chosen.iter().flat_map(|&i| catalog[i].superseded.iter().cloned()).collect();
    let is_update = |i: usize| matches!(catalog[i].update_type.as_str(), "Software" | "Driver");
    let (top_level, superseded_out): (Vec<usize>, Vec<usize>) =
        chosen.iter().copied().filter(|&i| is_update(i)).partition(|&i| {
            let id = &catalog[i].update_id;
            profile.include_superseded || published.contains(id) || !superseded.contains(id)
        });
    let top_level: HashSet<usize> = top_level.into_iter().collect();
    chosen.retain(|&i| !is_update(i) || top_level.contains(&i));

    let approved_top = |i: usize| {
        let r = &catalog[i];
        approved.update_ids.contains(r.update_id.as_str())
            || (!superseded.contains(r.update_id.as_str())
                && rules.iter().any(|(c, p)| {
                    let has = |set: &Option<HashSet<String>>| {
                        set.as_ref().is_none_or(|s| r.prerequisites.iter().any(|x| s.contains(x)))
                    };
                    has(c) && has(p)
                }))
    };
    let wants_files = |i: usize| match profile.payloads {
        _ if published.contains(&catalog[i].update_id) => true,
        PayloadPolicy::All => true,
        PayloadPolicy::None => false,
        PayloadPolicy::NotSuperseded => !superseded.contains(&catalog[i].update_id),
        PayloadPolicy::Approved => approved_top(i),
    };
    let closure = Closure { catalog, by_revision: &by_revision, latest: &latest };
    let (included, files_wanted, members_out) = closure.run(&chosen, wants_files, for_us);

    let mut revisions: Vec<usize> = included.iter().copied().collect();
    revisions.sort_by_key(|&i| catalog[i].revision_id);
    let (payloads, left_files) = payload_files(catalog, &revisions, &files_wanted, profile.express);

    // What each setting left behind, in files no carried revision brings along.
    let carried: HashSet<_> = payloads.iter().map(|(f, _)| f.sha1).collect();
    let mut language_updates: Vec<usize> = other_language;
    language_updates.extend(members_out);
    let left_behind = LeftBehind {
        languages: left_of(catalog, &language_updates, &carried, &included),
        superseded: left_of(catalog, &superseded_out, &carried, &included),
        express: left_files.express,
        payloads: left_files.policy,
    };
    Ok(Selected {
        published,
        revisions,
        top_level,
        superseded,
        other_languages: language_updates.iter().map(|&i| catalog[i].update_id.clone()).collect(),
        payloads,
        products,
        classifications,
        left_behind,
    })
}

/// The revisions a choice brings along: exact bundle members (when for one of the profile's
/// languages) and the newest revision of software a prerequisite names; and which of them need
/// their files (any revision that brings one along and needs files passes that on).
struct Closure<'a> {
    catalog: &'a [CatalogRevision],
    by_revision: &'a HashMap<(&'a str, i32), usize>,
    latest: &'a HashMap<&'a str, usize>,
}

impl Closure<'_> {
    fn run(
        &self,
        chosen: &[usize],
        wants_files: impl Fn(usize) -> bool,
        for_us: impl Fn(usize) -> bool,
    ) -> (HashSet<usize>, HashSet<usize>, Vec<usize>) {
        let mut included: HashSet<usize> = chosen.iter().copied().collect();
        let mut files: HashSet<usize> =
            chosen.iter().copied().filter(|&i| wants_files(i)).collect();
        let mut left_out: HashSet<usize> = HashSet::new();
        let mut queue: Vec<usize> = chosen.to_vec();
        while let Some(i) = queue.pop() {
            let needs = files.contains(&i);
            let r = &self.catalog[i];
            let members = r
                .bundle_members
                .iter()
                .filter_map(|(m, n)| self.by_revision.get(&(m.as_str(), *n)).copied());
            let prerequisites = r
                .prerequisites
                .iter()
                .filter_map(|p| self.latest.get(p.as_str()).copied())
                .filter(|&m| !self.catalog[m].expired);
            let members: Vec<usize> = members
                .filter(|&m| {
                    let ours = for_us(m);
                    if !ours {
                        left_out.insert(m);
                    }
                    ours
                })
                .collect();
            for m in members.into_iter().chain(prerequisites) {
                let newly = included.insert(m);
                let more_files = needs && files.insert(m);
                if newly || more_files {
                    queue.push(m);
                }
            }
        }
        let left_out = left_out.into_iter().filter(|m| !included.contains(m)).collect();
        (included, files, left_out)
    }
}

/// Files that stayed behind by the payload policy and by `express = false`.
#[derive(Default)]
struct LeftFiles {
    policy: Left,
    express: Left,
}

/// The payload files of `revisions` that travel (each once, with one revision that needs it).
fn payload_files(
    catalog: &[CatalogRevision],
    revisions: &[usize],
    files_wanted: &HashSet<usize>,
    express: bool,
) -> (Vec<(FileSummary, usize)>, LeftFiles) {
    let mut payloads = Vec::new();
    let mut seen = HashSet::new();
    for &i in revisions.iter().filter(|i| files_wanted.contains(i)) {
        for f in &catalog[i].files {
            if (express || !f.is_express()) && seen.insert(f.sha1) {
                payloads.push((f.clone(), i));
            }
        }
    }
    let mut left = LeftFiles::default();
    let mut counted = HashSet::new();
    for &i in revisions {
        for f in &catalog[i].files {
            if seen.contains(&f.sha1) || !counted.insert(f.sha1) {
                continue;
            }
            let bucket =
                if files_wanted.contains(&i) { &mut left.express } else { &mut left.policy };
            bucket.files += 1;
            bucket.bytes += f.size;
        }
    }
    (payloads, left)
}

/// Updates left behind and their files that nothing carried brings along.
fn left_of(
    catalog: &[CatalogRevision],
    updates: &[usize],
    carried: &HashSet<crate::catalog::Sha1Digest>,
    included: &HashSet<usize>,
) -> Left {
    let mut out = Left::default();
    let mut counted = HashSet::new();
    let mut seen_updates = HashSet::new();
    for &i in updates.iter().filter(|i| !included.contains(i)) {
        if !seen_updates.insert(i) {
            continue;
        }
        out.updates += 1;
        for f in &catalog[i].files {
            if !carried.contains(&f.sha1) && counted.insert(f.sha1) {
                out.files += 1;
                out.bytes += f.size;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Sha1Digest;

    const PRODUCT: &str = "00000000-0000-0000-0000-0000000000a1";
    const CLASS: &str = "00000000-0000-0000-0000-0000000000c1";

    fn file(name: &str, size: u64, express: bool) -> FileSummary {
        let mut sha1 = [0u8; 20];
        sha1[..name.len().min(20)].copy_from_slice(&name.as_bytes()[..name.len().min(20)]);
        FileSummary {
            file_name: name.into(),
            size,
            sha1: Sha1Digest(sha1),
            sha256: None,
            extension: "cab".into(),
            patching_type: Some(if express { "Express" } else { "SelfContained" }.into()),
            present: true,
            content_path: String::new(),
        }
    }

    fn category(n: i32, id: &str, kind: &str, title: &str) -> CatalogRevision {
        let mut r = update(n, id, &[], vec![]);
        r.update_type = "Category".into();
        r.category_kind = Some(kind.into());
        r.title = Some(title.into());
        r.prerequisites = Vec::new();
        r
    }

    /// An update of the product and classification, for `languages`, with `files`.
    fn update(n: i32, id: &str, languages: &[&str], files: Vec<FileSummary>) -> CatalogRevision {
        CatalogRevision {
            revision_id: n,
            update_id: id.into(),
            revision_number: 100,
            update_type: "Software".into(),
            category_kind: None,
            is_latest: true,
            is_bundle: false,
            explicitly_deployable: true,
            expired: false,
            title: Some(id.into()),
            kb_article: None,
            msrc_severity: None,
            document_size: 1000,
            languages: languages.iter().map(|l| l.to_string()).collect(),
            prerequisites: vec![PRODUCT.into(), CLASS.into()],
            prerequisite_clauses: Vec::new(),
            ingested_at: String::new(),
            core_size: 100,
            bundle_members: Vec::new(),
            superseded: Vec::new(),
            files,
        }
    }

    /// A neutral cumulative update with an express file, a German-only update, an Office-style
    /// bundle with an English and a German member, and an older update the cumulative replaces.
    fn catalog() -> Vec<CatalogRevision> {
        let mut cumulative = update(
            3,
            "cu",
            &[],
            vec![file("cu-full", 1000, false), file("cu-express", 5000, true)],
        );
        cumulative.superseded = vec!["old".into()];
        let mut office = update(6, "office", &[], vec![]);
        office.is_bundle = true;
        office.bundle_members = vec![("office-en".into(), 100), ("office-de".into(), 100)];
        let member = |n, id: &str, lang: &str, f| {
            let mut m = update(n, id, &[lang], vec![file(f, 200, false)]);
            m.prerequisites.clear();
            m.explicitly_deployable = false;
            m
        };
        vec![
            category(1, PRODUCT, "Product", "Windows 11"),
            category(2, CLASS, "UpdateClassification", "Security Updates"),
            cumulative,
            update(4, "langpack-de", &["de"], vec![file("lp-de", 300, false)]),
            update(5, "old", &[], vec![file("old-full", 700, false)]),
            office,
            member(7, "office-en", "en", "office-en.cab"),
            member(8, "office-de", "de", "office-de.cab"),
        ]
    }

    fn profile(extra: &str) -> Profile {
        Profile::parse(&format!("channel = \"t\"\nproducts = [\"Windows 11\"]\nclassifications = [\"Security Updates\"]\n{extra}"), "t")
            .unwrap()
    }

    fn ids(catalog: &[CatalogRevision], s: &Selected) -> Vec<String> {
        let mut v: Vec<String> = s
            .revisions
            .iter()
            .map(|&i| catalog[i].update_id.clone())
            .filter(|u| !u.starts_with("00000000"))
            .collect();
        v.sort();
        v
    }

    fn files(s: &Selected) -> Vec<String> {
        let mut v: Vec<String> = s.payloads.iter().map(|(f, _)| f.file_name.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn each_setting_selects_and_counts_what_it_leaves_behind() {
        let c = catalog();
        let left = |updates, files, bytes| Left { updates, files, bytes };
        // (profile lines, updates carried, files carried, left behind: languages, express, superseded, payloads)
        type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], [Left; 4]);
        let cases: &[Case] = &[
            (
                "",
                &["cu", "office", "office-en"],
                &["cu-full", "office-en.cab"],
                [left(2, 2, 500), left(0, 1, 5000), left(1, 1, 700), Left::default()],
            ),
            (
                "languages = [\"en\", \"de\"]\nexpress = true",
                &["cu", "langpack-de", "office", "office-de", "office-en"],
                &["cu-express", "cu-full", "lp-de", "office-de.cab", "office-en.cab"],
                [Left::default(), Left::default(), left(1, 1, 700), Left::default()],
            ),
            (
                "languages = [\"all\"]\ninclude_superseded = true\npayloads = \"not-superseded\"",
                &["cu", "langpack-de", "office", "office-de", "office-en", "old"],
                &["cu-full", "lp-de", "office-de.cab", "office-en.cab"],
                [Left::default(), left(0, 1, 5000), Left::default(), left(0, 1, 700)],
            ),
            (
                "payloads = \"none\"",
                &["cu", "office", "office-en"],
                &[],
                [left(2, 2, 500), Left::default(), left(1, 1, 700), left(0, 3, 6200)],
            ),
        ];
        for (lines, updates, carried, [languages, express, superseded, payloads]) in cases {
            let s = select(&c, &profile(lines), &Approved::default(), &[]).unwrap();
            assert_eq!(ids(&c, &s), *updates, "{lines}");
            assert_eq!(files(&s), *carried, "{lines}");
            assert_eq!(
                s.left_behind,
                LeftBehind {
                    languages: *languages,
                    express: *express,
                    superseded: *superseded,
                    payloads: *payloads
                },
                "{lines}"
            );
        }
    }

    #[test]
    fn approved_payloads_follow_approvals_rules_and_what_they_bring_along() {
        let c = catalog();
        let p = profile("payloads = \"approved\"");
        let none = select(&c, &p, &Approved::default(), &[]).unwrap();
        assert!(none.payloads.is_empty());
        assert_eq!(none.left_behind.payloads, Left { updates: 0, files: 3, bytes: 6200 });

        // Approving the bundle brings its members' files.
        let office = Approved { update_ids: ["office".to_string()].into(), rules: Vec::new() };
        assert_eq!(files(&select(&c, &p, &office, &[]).unwrap()), ["office-en.cab"]);

        // A rule by classification title approves what it matches (not what is superseded).
        let rule = Approved {
            update_ids: HashSet::new(),
            rules: vec![(vec!["security updates".into()], vec![])],
        };
        assert_eq!(files(&select(&c, &p, &rule, &[]).unwrap()), ["cu-full", "office-en.cab"]);
        let unknown =
            Approved { update_ids: HashSet::new(), rules: vec![(vec!["Nonsense".into()], vec![])] };
        assert!(select(&c, &p, &unknown, &[]).unwrap_err().0.contains("approval policy"));
    }

    /// A published update outside the products travels with its files (whatever the payload
    /// policy) only when the profile says `published = true`, even when another supersedes it.
    #[test]
    fn published_updates_travel_only_when_the_profile_says_so() {
        let mut c = catalog();
        let vendor_product = "00000000-0000-0000-0000-0000000000aa";
        c.push(category(9, vendor_product, "Product", "Fabrikam Gadget"));
        let mut gadget = update(10, "gadget", &[], vec![file("gadget.cab", 400, false)]);
        gadget.prerequisites = vec![vendor_product.into(), CLASS.into()];
        c.push(gadget);
        let mut next = update(11, "gadget-next", &[], vec![file("gadget-next.cab", 400, false)]);
        next.prerequisites = vec![vendor_product.into(), CLASS.into()];
        next.superseded = vec!["gadget".into()];
        c.push(next);
        let published = ["gadget", "gadget-next"].map(|update_id| PublishedName {
            update_id,
            vendor: "Fabrikam",
            product: "Fabrikam Gadget",
        });
        let off =
            select(&c, &profile("payloads = \"none\""), &Approved::default(), &published).unwrap();
        assert!(!ids(&c, &off).iter().any(|u| u.starts_with("gadget")));
        let on = profile("payloads = \"none\"\npublished = true");
        let s = select(&c, &on, &Approved::default(), &published).unwrap();
        let carried = ids(&c, &s);
        assert!(
            carried.contains(&"gadget".to_string()) && carried.contains(&"gadget-next".to_string()),
            "{carried:?}"
        );
        assert_eq!(files(&s), ["gadget-next.cab", "gadget.cab"]);
    }
}
