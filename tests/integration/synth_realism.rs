//! The generated catalog must stay shaped like the real one: the same element and attribute
//! vocabulary as real WSUS fragments, and the type mix and size distribution of a real
//! Windows 11 sync (`cbs/catalog-stats.json`).

use crate::conformance::read;
use crate::conformance_or_skip;
use crate::util::location;
use crate::util::synthetic_documents as generate;
use ferry::catalog::parse_update;
use ferry::synth::{Planner, render};
use quick_xml::events::Event;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Vocabulary = BTreeMap<String, BTreeSet<String>>;

/// Element names with the attribute names seen on them, in a fragment (several roots).
fn vocabulary_of_fragment(fragment: &str, into: &mut Vocabulary) {
    let wrapped = format!("<r>{fragment}</r>");
    let mut reader = quick_xml::Reader::from_str(&wrapped);
    loop {
        match reader.read_event().expect("fragments parse once wrapped") {
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).to_string();
                let attrs = into.entry(name).or_default();
                for a in e.attributes().with_checks(false).flatten() {
                    attrs.insert(String::from_utf8_lossy(a.key.as_ref()).to_string());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
}

/// Elements and attributes declared by the applicability-rule XSDs, under their fragment names.
/// Attributes come from the element's own definition or from the named complexType it uses.
fn vocabulary_of_xsd(path: &Path, prefix: &str, into: &mut Vocabulary) {
    let text = String::from_utf8(read(path)).unwrap();
    let mut reader = quick_xml::Reader::from_str(&text);
    let attr = |e: &quick_xml::events::BytesStart<'_>, name: &[u8]| {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == name)
            .map(|a| String::from_utf8_lossy(&a.value).to_string())
    };
    // Owner of the attributes being read: an element or a named complexType.
    let mut owners: Vec<Option<String>> = Vec::new();
    let mut types: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut typed_elements: Vec<(String, String)> = Vec::new();
    loop {
        let (e, empty) = match reader.read_event().unwrap() {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) if matches!(e.local_name().as_ref(), b"element" | b"complexType") => {
                owners.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        match e.local_name().as_ref() {
            b"element" => {
                let name = attr(&e, b"name").map(|n| format!("{prefix}{n}"));
                if let Some(n) = &name {
                    into.entry(n.clone()).or_default();
                    if let Some(t) = attr(&e, b"type") {
                        typed_elements.push((n.clone(), t.rsplit(':').next().unwrap().to_string()));
                    }
                }
                if !empty {
                    owners.push(name);
                }
            }
            b"complexType" if !empty => owners.push(attr(&e, b"name").map(|n| format!("type:{n}"))),
            b"attribute" => {
                if let (Some(n), Some(Some(owner))) =
                    (attr(&e, b"name"), owners.iter().rev().find(|o| o.is_some()))
                {
                    match owner.strip_prefix("type:") {
                        Some(t) => types.entry(t.to_string()).or_default().insert(n),
                        None => into.entry(owner.clone()).or_default().insert(n),
                    };
                }
            }
            _ => {}
        }
    }
    for (element, ty) in typed_elements {
        if let Some(attrs) = types.get(&ty) {
            into.entry(element).or_default().extend(attrs.iter().cloned());
        }
    }
}

fn real_vocabulary(conf: &Path) -> Vocabulary {
    let mut v = Vocabulary::new();
    let mut fragments = Vec::new();
    for dir in ["samples", "wsusss/wusp-reference", "cbs"] {
        for e in std::fs::read_dir(conf.join(dir)).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with("fragment.xml")
                || dir == "wsusss/wusp-reference"
                || (dir == "cbs" && (name.contains("-core") || name.contains("-extended")))
            {
                fragments.push(p);
            }
        }
    }
    for p in fragments {
        vocabulary_of_fragment(&String::from_utf8(read(&p)).unwrap(), &mut v);
    }
    // Real full documents, through the same derivation (their categories carry more attributes
    // than the reference fragments show).
    for dir in ["wsusss/docs"] {
        for e in std::fs::read_dir(conf.join(dir)).unwrap() {
            let parsed = parse_update(&read(&e.unwrap().path())).unwrap();
            vocabulary_of_fragment(&parsed.fragments.core, &mut v);
            vocabulary_of_fragment(&parsed.fragments.extended, &mut v);
        }
    }
    vocabulary_of_xsd(&conf.join("schemas/BaseApplicabilityRules.xsd"), "b.", &mut v);
    vocabulary_of_xsd(&conf.join("schemas/MsiApplicabilityRules.xsd"), "m.", &mut v);
    vocabulary_of_xsd(&conf.join("schemas/WindowsDriver.xsd"), "d.", &mut v);
    // Named by WSUS-PROTOCOL.md §5.1 (security updates carry it) though absent from these samples.
    v.entry("ExtendedProperties".into()).or_default().insert("MsrcSeverity".into());
    v
}

#[test]
fn generated_fragments_use_only_the_real_vocabulary() {
    let conf = conformance_or_skip!();
    let real = real_vocabulary(&conf);
    let mut generated = Vocabulary::new();
    for (p, doc) in generate(1500) {
        let parsed =
            parse_update(doc.as_bytes()).unwrap_or_else(|e| panic!("item {}: {e}", p.index));
        vocabulary_of_fragment(&parsed.fragments.core, &mut generated);
        vocabulary_of_fragment(&parsed.fragments.extended, &mut generated);
        for (_, l) in &parsed.fragments.localized {
            vocabulary_of_fragment(l, &mut generated);
        }
    }
    let mut unknown = Vec::new();
    for (element, attrs) in &generated {
        match real.get(element) {
            None => unknown.push(format!("element {element}")),
            Some(real_attrs) => {
                unknown.extend(attrs.difference(real_attrs).map(|a| format!("{element}@{a}")))
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "generated fragments use names no real fragment or schema has: {unknown:?}"
    );
    // And they cover most of what real fragments of these handlers use.
    let real_fragment_elements = [
        "CbsPackageInstalled",
        "DeviceAttribute",
        "ProductReleaseInstalled",
        "OSInstallData",
        "CategoryInformation",
        "b.FileVersionPrependRegSz",
        "AdditionalDigest",
        "BundledUpdates",
        "SupersededUpdates",
        "assemblyIdentity",
    ];
    for e in real_fragment_elements {
        assert!(generated.contains_key(e), "generated catalog never uses {e}");
    }
}

#[test]
fn generated_catalog_follows_the_real_windows_11_shape() {
    let items = generate(3000);
    let mut core_sizes = Vec::new();
    let mut types: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut top_level, mut superseding, mut bundles, mut with_files) = (0, 0, 0, 0);
    for (p, doc) in &items {
        let parsed = parse_update(doc.as_bytes()).unwrap();
        core_sizes.push(parsed.fragments.core.len());
        *types.entry(p.update_type).or_default() += 1;
        if p.explicitly_deployable && p.update_type == "Software" {
            top_level += 1;
            superseding += usize::from(!p.superseded.is_empty());
        }
        bundles += usize::from(!p.bundled.is_empty());
        with_files += usize::from(!p.files.is_empty());
    }
    core_sizes.sort();
    let pct =
        |q: f64| core_sizes[((core_sizes.len() as f64 * q) as usize).min(core_sizes.len() - 1)];
    // Real: median 563 bytes, p99 413 KB.
    assert!((300..=1200).contains(&pct(0.5)), "median Core size {}", pct(0.5));
    assert!((150_000..=1_500_000).contains(&pct(0.99)), "p99 Core size {}", pct(0.99));
    // Real: 71% detectoids; here at least half, and software, categories and drivers all present.
    let detectoids = types["Detectoid"] as f64 / items.len() as f64;
    assert!((0.45..=0.8).contains(&detectoids), "detectoid share {detectoids}");
    assert!(
        types["Category"] >= 32 && types["Software"] > 500 && types.contains_key("Driver"),
        "{types:?}"
    );
    // Real: 525 bundles for 561 children; 633 of 1,094 software updates supersede others.
    assert!(bundles > 100 && with_files > bundles, "bundles {bundles}, with files {with_files}");
    assert!(
        superseding * 2 > top_level,
        "{superseding} of {top_level} top-level updates supersede others"
    );
}

#[test]
fn the_largest_core_fragment_is_as_large_as_the_real_one() {
    let mut planner = Planner::new(3, 1024);
    let giant = (0..ferry::synth::GIANT_FROM_INDEX + 50)
        .map(|_| planner.next_item())
        .find(|p| p.core_target == ferry::synth::GIANT_CORE_BYTES)
        .expect("the giant is planned");
    let doc = render(&giant, &[], &["en".to_string()]);
    let parsed = parse_update(doc.as_bytes()).unwrap();
    assert!(parsed.fragments.core.len() > 40_000_000, "{}", parsed.fragments.core.len());
}

/// `<upd:Language>` children of `<upd:Properties>` in a document (not the LocalizedProperties ones).
fn property_languages(doc: &str) -> Vec<String> {
    let properties =
        &doc[doc.find("<upd:Properties").unwrap()..doc.find("</upd:Properties>").unwrap()];
    properties
        .split("<upd:Language>")
        .skip(1)
        .map(|rest| rest[..rest.find("</upd:Language>").unwrap()].to_string())
        .collect()
}

#[test]
fn generated_catalog_has_language_specific_and_language_neutral_updates() {
    let items = generate(3000);
    let by_id: BTreeMap<String, &ferry::synth::Planned> =
        items.iter().map(|(p, _)| (p.identity.to_string(), p)).collect();
    let mut specific: BTreeMap<String, usize> = BTreeMap::new();
    let (mut neutral, mut uup, mut office_children, mut packs, mut several_localized) =
        (0, 0, 0, 0, 0);
    for (p, doc) in &items {
        let parsed =
            parse_update(doc.as_bytes()).unwrap_or_else(|e| panic!("item {}: {e}", p.index));
        if parsed.fragments.localized.len() > 1 {
            several_localized += 1;
        }
        let languages = property_languages(doc);
        assert!(languages.len() <= 1, "item {}: {languages:?}", p.index);
        match languages.first().map(String::as_str) {
            None => neutral += usize::from(p.update_type == "Software"),
            Some("all") => {
                uup += 1;
                assert_eq!(p.handler, ferry::synth::Handler::OsInstaller);
                let localized: Vec<&str> =
                    parsed.fragments.localized.iter().map(|(l, _)| l.as_str()).collect();
                assert_eq!(
                    localized,
                    ["all"],
                    "UUP LocalizedProperties are in the neutral language"
                );
            }
            Some(language) => {
                *specific.entry(language.to_string()).or_default() += 1;
                assert!(
                    parsed
                        .fragments
                        .extended
                        .contains(&format!("<Language>{language}</Language></ExtendedProperties>"))
                );
                assert!(!p.files.is_empty(), "a language-specific update carries its own files");
                if p.handler == ferry::synth::Handler::WindowsInstaller {
                    office_children += 1;
                } else {
                    packs += 1;
                    assert!(p.title.contains("Language Pack"), "{}", p.title);
                }
            }
        }
        // An Office bundle of language children has a language-neutral member too.
        let members: Vec<&ferry::synth::Planned> =
            p.bundled.iter().flatten().map(|m| by_id[&m.to_string()]).collect();
        if members.iter().any(|m| m.language.is_some_and(|l| l != "all")) {
            assert!(
                members
                    .iter()
                    .any(|m| m.language.is_none() && m.files[0].file_name.ends_with("-glb.cab")),
                "{}",
                p.title
            );
        }
    }
    assert!(specific.len() >= 5, "languages of language-specific updates: {specific:?}");
    assert!(
        office_children >= 20 && packs >= 10,
        "{office_children} Office language children, {packs} language packs"
    );
    assert!(
        uup >= 20 && neutral > 3 * specific.values().sum::<usize>(),
        "{neutral} neutral, {uup} UUP, {specific:?}"
    );
    // The documents are rendered with en and de; detectoids and drivers have English only.
    assert!(
        several_localized > 500 && several_localized < items.len() / 2,
        "{several_localized} with several languages"
    );
}

#[test]
fn cumulative_updates_carry_express_files_whose_payloads_match_their_digests() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ferry::store::Store::open_or_create_at(&location(dir.path())).unwrap();
    let options = ferry::synth::SynthOptions {
        updates: 700,
        seed: 5,
        languages: vec!["en".into(), "de".into(), "ja".into()],
        payload_bytes: 4096,
    };
    let report = ferry::synth::synthesize(&mut store, &options, &mut |_, _| {}).unwrap();
    assert_eq!(report.revisions_added, 700);
    let files = store.all_files().unwrap();
    let express: Vec<_> =
        files.iter().filter(|f| f.patching_type.as_deref() == Some("Express")).collect();
    let psf: Vec<_> = express.iter().filter(|f| f.extension == "psf").collect();
    assert!(psf.len() >= 3, "{} express .psf files", psf.len());
    assert_eq!(
        express.len(),
        2 * psf.len(),
        "each .psf comes with one express .cab of delta manifests"
    );
    for p in &psf {
        let stem = p.file_name.strip_suffix(".psf").unwrap();
        let full = files
            .iter()
            .find(|f| f.file_name == format!("{stem}.cab"))
            .expect("the full file beside it");
        let manifests = files
            .iter()
            .find(|f| f.file_name == format!("{stem}-express.cab"))
            .expect("its delta manifests");
        assert_eq!(full.patching_type.as_deref(), Some("SelfContained"));
        assert!(
            p.size > full.size && manifests.size * 20 < full.size,
            "{} {} {}",
            p.size,
            full.size,
            manifests.size
        );
        assert!(p.present && manifests.present);
    }
    // Every payload, express files included, re-hashes to the digests its document declares.
    let check = store.check(true, &mut |_, _| {}).unwrap();
    assert!(
        check.is_clean(),
        "{:?}",
        check.problems.iter().map(|p| format!("{}: {}", p.subject, p.problem)).collect::<Vec<_>>()
    );
}
