//! Fragments derived from real update documents must equal, byte for byte, what a real WSUS 2025
//! served for them.

use crate::conformance::read;
use crate::conformance_or_skip;
use ferry::catalog::parse_update;
use std::path::Path;

/// (document, fragment kind, reference file) for every reference fragment that exists.
fn sample_cases(dir: &Path) -> Vec<(std::path::PathBuf, String, std::path::PathBuf)> {
    let samples = dir.join("samples");
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&samples).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".full.xml") else { continue };
        for kind in ["core", "extended", "localized-en"] {
            let reference = samples.join(format!("{stem}.wusp-{kind}.fragment.xml"));
            if reference.exists() {
                cases.push((samples.join(&name), kind.to_string(), reference));
            }
        }
    }
    let wsusss = dir.join("wsusss");
    for entry in std::fs::read_dir(wsusss.join("wusp-reference")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let (stem, kind) = name.strip_suffix(".xml").unwrap().rsplit_once('.').unwrap();
        cases.push((
            wsusss.join("docs").join(format!("{stem}.xml")),
            kind.to_string(),
            wsusss.join("wusp-reference").join(&name),
        ));
    }
    cases.sort();
    cases
}

/// The wsusss references had `LinkId=` values redacted (wsusss/README.md): mask both sides.
fn mask_link_ids(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.to_ascii_lowercase().find("linkid=") {
        out.push_str(&rest[..i + 7]);
        rest = &rest[i + 7..];
        let end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
        out.push_str("MASKED");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn fragments_match_real_wsus_byte_for_byte() {
    let dir = conformance_or_skip!();
    let cases = sample_cases(&dir);
    assert!(
        cases.len() >= 20 + 8,
        "expected the samples and the 20 wsusss references, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for (doc, kind, reference) in &cases {
        let parsed = parse_update(&read(doc)).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
        let derived = match kind.as_str() {
            "core" => parsed.fragments.core.clone(),
            "extended" => parsed.fragments.extended.clone(),
            k => {
                let lang = k.strip_prefix("localized-").unwrap();
                parsed.fragments.localized(lang).unwrap_or_default().to_string()
            }
        };
        let expected = String::from_utf8(read(reference)).unwrap();
        let redacted = reference.to_string_lossy().contains("wusp-reference");
        let (a, b) = if redacted {
            (mask_link_ids(&derived), mask_link_ids(&expected))
        } else {
            (derived, expected)
        };
        if a != b {
            let at =
                a.bytes().zip(b.bytes()).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
            failures.push(format!(
                "{} ({kind}) differs from {} at byte {at}:\n  ours: {:?}\n  real: {:?}",
                doc.display(),
                reference.display(),
                &a[at.saturating_sub(40)..(at + 60).min(a.len())],
                &b[at.saturating_sub(40)..(at + 60).min(b.len())]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fragments differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
