//! Published updates across the gap: a channel whose profile says `published = true` carries
//! the updates published in its cache store (their documents, categories and signed CABs),
//! whatever its products and classifications select; the signed manifest lists them, inspect
//! shows them, and the import records them, so the isolated side lists, checks and serves them
//! as its own. A channel without it carries none, a delta carries one again only when revised,
//! and a manifest naming a published update its bundle does not carry is refused.

use crate::bundles::{Fixture, manifest};
use crate::publish_documents::{MsiCase, build_msi};
use crate::served::{Agent, Served, require};
use crate::util::{ferry, json_of, snapshot, stdout_of};
use std::path::{Path, PathBuf};

const GADGET: MsiCase = MsiCase {
    file: "gadget-3.1.msi",
    product_code: "0B7C2E1A-3D4F-4A5B-8C6D-7E8F9A0B1C31",
    name: "Fabrikam Gadget",
    version: "3.1.0",
    language: 1033,
    manufacturer: "Fabrikam",
    upgrade_code: Some("0B7C2E1A-3D4F-4A5B-8C6D-7E8F9A0B1CFF"),
};

/// A profile of `channel` that selects Windows 11 security updates (nothing of Fabrikam's).
fn profile(f: &Fixture, channel: &str, published: Option<bool>) -> PathBuf {
    profile_with(f, channel, &published.map(|p| format!("published = {p}")).unwrap_or_default())
}

/// The same profile with `tail` (TOML) at its end.
fn profile_with(f: &Fixture, channel: &str, tail: &str) -> PathBuf {
    let path = f.root.join(format!("{channel}.toml"));
    let text = format!(
        "channel = \"{channel}\"\nproducts = [\"Windows 11\"]\nclassifications = [\"Security Updates\"]\n{tail}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn export(f: &Fixture, profile: &Path) -> PathBuf {
    PathBuf::from(stdout_of(&mut f.export_command(profile)).trim())
}

const GADGET_NEXT: MsiCase = MsiCase {
    file: "gadget-3.2.msi",
    product_code: "0B7C2E1A-3D4F-4A5B-8C6D-7E8F9A0B1C32",
    version: "3.2.0",
    ..GADGET
};

/// Publishes an MSI into the fixture's cache store (making the site's certificate first); its
/// update id.
fn publish(f: &Fixture, case: &MsiCase) -> String {
    if !f.root.join("site.crt").exists() {
        let mut cert = ferry(&f.cache);
        cert.args(["publish", "cert", "new", "--bits", "2048", "--out"]).arg(f.root.join("site"));
        stdout_of(&mut cert);
    }
    let msi = build_msi(&f.root, case);
    let mut c = ferry(&f.cache);
    c.arg("publish").arg("--msi").arg(&msi);
    c.arg("--cert").arg(f.root.join("site.crt")).arg("--key").arg(f.root.join("site.key"));
    json_of(&mut c)["update_id"].as_str().unwrap().to_string()
}

/// Invariant: with `published = true` a published update travels (document, categories, CAB),
/// is listed by the manifest and inspect, and arrives at the isolated side as published there:
/// listed, consistent and offered to clients.
#[test]
fn published_updates_travel_when_the_profile_says_so() {
    if require(&["wixl"]).is_none() {
        return;
    }
    let f = Fixture::new(200, "1KiB");
    let id = publish(&f, &GADGET);
    // The profile's approval policy names its product, as for any update.
    let rule = "[approvals]\nrules = [{ products = [\"Fabrikam Gadget\"], classifications = [\"Updates\"], group = \"Plant\" }]";
    let bundle = export(&f, &profile_with(&f, "gap", &format!("published = true\n{rule}")));
    let m = manifest(&bundle);
    let listed: Vec<(&str, &str, &str)> = m
        .published
        .iter()
        .map(|p| (p.update_id.as_str(), p.vendor.as_str(), p.product.as_str()))
        .collect();
    assert_eq!(listed, [(id.as_str(), "Fabrikam", "Fabrikam Gadget")]);
    assert!(m.updates.iter().any(|u| u.update_id.to_string() == id), "carried as an update");
    assert!(m.summary.payload_files >= 1);
    let mut verify = ferry(&f.cache);
    verify.arg("verify").arg(&bundle).arg("--trust").arg(&f.public);
    stdout_of(&mut verify);

    let inspected = json_of(ferry(&f.cache).arg("inspect").arg(&bundle));
    let entry = &inspected["manifest"]["published"][0];
    assert_eq!(entry["update_id"], id.as_str());
    assert_eq!(
        (entry["installer"].as_str(), entry["version"].as_str()),
        (Some("msi"), Some("3.1.0"))
    );
    assert_eq!(entry["installer_name"], "gadget-3.1.msi");
    let page = f.root.join("inspect.html");
    let text = stdout_of(ferry(&f.cache).arg("inspect").arg(&bundle).arg("--html").arg(&page));
    assert!(text.contains(&id) && text.contains("Fabrikam Gadget 3.1.0"), "{text}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Published updates (1)") && html.contains(&id), "{html}");

    let isolated = f.root.join("isolated");
    let mut import = ferry(&isolated);
    import.arg("import").arg(&bundle).arg("--trust").arg(&f.public).arg("--apply-approvals");
    stdout_of(&mut import);
    let approved = json_of(ferry(&isolated).args(["updates", "list", "--approval", "approved"]));
    let approved = approved.as_array().unwrap();
    assert!(approved.iter().any(|u| u["update_id"] == id.as_str()), "{approved:?}");
    let there = json_of(ferry(&isolated).args(["publish", "list"]));
    let row = there.as_array().unwrap().iter().find(|p| p["update_id"] == id.as_str());
    let row = row.unwrap_or_else(|| panic!("not listed on the isolated side: {there}"));
    assert_eq!(
        (row["vendor"].as_str(), row["product"].as_str(), row["version"].as_str()),
        (Some("Fabrikam"), Some("Fabrikam Gadget"), Some("3.1.0"))
    );
    let check = stdout_of(ferry(&isolated).args(["check", "--deep"]));
    assert!(check.starts_with("clean"), "{check}");

    // The next bundle of the channel carries it again only when it is revised.
    let unchanged = export(&f, &profile(&f, "gap", Some(true)));
    let next = manifest(&unchanged);
    assert!(next.published.is_empty() && next.base_sequence.is_some(), "{:?}", next.published);
    // A new one travels in the next delta, alone.
    let newer = publish(&f, &GADGET_NEXT);
    let gap = profile(&f, "gap", Some(true));
    let planned = json_of(f.export_command(&gap).arg("--dry-run"));
    assert_eq!(planned["published"], 1, "{planned}");
    let delta_bundle = export(&f, &profile(&f, "gap", Some(true)));
    let delta = manifest(&delta_bundle);
    let listed: Vec<&str> = delta.published.iter().map(|p| p.update_id.as_str()).collect();
    assert_eq!(listed, [newer.as_str()]);
    for b in [&unchanged, &delta_bundle] {
        let out = f.import(&isolated, b);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let there = json_of(ferry(&isolated).args(["publish", "list"]));
    let versions: Vec<&str> =
        there.as_array().unwrap().iter().filter_map(|p| p["version"].as_str()).collect();
    assert_eq!(versions, ["3.1.0", "3.2.0"]);

    // A revision travels in the next delta; the isolated side does not revise what another
    // site published (the revisions would clash).
    let mut revise = ferry(&f.cache);
    revise.args(["publish", "revise", &id, "--title", "Fabrikam Gadget 3.1.0 (fixed)"]);
    stdout_of(&mut revise);
    let revision_bundle = export(&f, &profile(&f, "gap", Some(true)));
    let carried = manifest(&revision_bundle);
    let listed: Vec<&str> = carried.published.iter().map(|p| p.update_id.as_str()).collect();
    assert_eq!(listed, [id.as_str()]);
    let out = f.import(&isolated, &revision_bundle);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let there = json_of(ferry(&isolated).args(["publish", "list"]));
    assert_eq!(
        (there[0]["title"].as_str(), there[0]["revision_number"].as_i64()),
        (Some("Fabrikam Gadget 3.1.0 (fixed)"), Some(101))
    );
    let out =
        ferry(&isolated).args(["publish", "revise", &id, "--title", "mine"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(1) && err.contains("another site"), "{err}");

    let server = Served::start(&isolated, &[]);
    let mut agent = Agent::new(&server);
    agent.handshake();
    agent.scan();
    assert!(agent.by_update().contains_key(&id), "the isolated server offers it");
}

/// Invariant: without `published = true` (the default, or said false) published updates stay
/// behind, and a `[published]` selection carries only what it names; a manifest that lists one
/// its bundle does not carry, or lists an update that is not locally published, is refused
/// (11) by verify and import, and the store does not change.
#[test]
fn published_updates_stay_behind_by_default_and_a_forged_listing_is_refused() {
    if require(&["wixl"]).is_none() {
        return;
    }
    let f = Fixture::new(200, "1KiB");
    let id = publish(&f, &GADGET);
    for (channel, setting) in [("plain", None), ("unpublished", Some(false))] {
        let m = manifest(&export(&f, &profile(&f, channel, setting)));
        assert!(m.published.is_empty(), "{channel}");
        assert!(!m.updates.iter().any(|u| u.update_id.to_string() == id), "{channel}");
        let raw = std::fs::read_to_string(export_dir(&f, channel).join("manifest.json")).unwrap();
        assert!(!raw.contains("\"published\""), "{channel}: absent when none travel");
    }
    // A [published] selection carries the vendors and products it names, and no other.
    let others = profile_with(&f, "others", "[published]\nvendors = [\"Contoso\"]");
    assert!(manifest(&export(&f, &others)).published.is_empty());
    let named = profile_with(&f, "named", "[published]\nproducts = [\"fabrikam gadget\"]");
    let carried = manifest(&export(&f, &named));
    let listed: Vec<&str> = carried.published.iter().map(|p| p.update_id.as_str()).collect();
    assert_eq!(listed, [id.as_str()]);
    let carrying = manifest(&export(&f, &profile(&f, "gap", Some(true))));
    let isolated = f.root.join("isolated");
    let out = f.import(&isolated, &export_dir(&f, "gap"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The plain bundle, re-signed by its (trusted) key with a published listing added: of the
    // published update it does not carry, or of a Microsoft update it does carry.
    let plain = manifest(&export_dir(&f, "plain"));
    let microsoft = plain.updates.first().expect("the plain bundle carries updates").update_id;
    let mut claimed = carrying.published[0].clone();
    claimed.update_id = ferry::ids::UpdateId::from_guid(microsoft);
    let twice = [carrying.published.clone(), carrying.published.clone()].concat();
    for (name, listing, named, from, why) in [
        ("forged", carrying.published.clone(), id.clone(), "plain", "does not carry"),
        ("claimed", vec![claimed], microsoft.to_string(), "plain", "does not carry"),
        ("twice", twice, id.clone(), "gap", "twice"),
    ] {
        let forged = f.copy(&export_dir(&f, from), name);
        f.resign(&forged, |m| m.published = listing);
        // verify finds it as import does.
        let mut verify = ferry(&f.cache);
        verify.arg("verify").arg(&forged).arg("--trust").arg(&f.public);
        let out = verify.output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(11), "{name}: {said}");
        assert!(said.contains(&named) && said.contains(why), "{name}: {said}");
        // The gap bundle itself was imported already (again, it would be a no-op): a new store.
        let into = if from == "gap" { f.root.join("isolated-new") } else { isolated.clone() };
        let before = snapshot(&into);
        let out = f.import(&into, &forged);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(11), "{name}: {err}");
        assert!(err.contains(&named) && err.contains(why), "{name}: {err}");
        assert_eq!(before, snapshot(&into), "{name}: the refused import changed the store");
    }
}

/// The first bundle of `channel` in the fixture's output directory.
fn export_dir(f: &Fixture, channel: &str) -> PathBuf {
    f.out.join(format!("{channel}-000001"))
}

/// Invariant: a published listing holding a value no ferry writes (an id that is no GUID, an
/// unknown installer kind, a name beyond its bound, control characters) is refused as unsafe
/// (13) before anything is read, and the import leaves no store behind.
#[test]
fn a_hostile_published_listing_is_refused_as_unsafe() {
    let f = Fixture::new(60, "1KiB");
    let bundle = export(&f, &profile(&f, "plain", None));
    let good = serde_json::json!({
        "update_id": "76d6baa1-4c7a-4262-8b3e-1ee8951c27b0",
        "vendor": "Fabrikam",
        "product": "Fabrikam Gadget",
        "installer": "msi",
        "installer_name": "gadget-3.1.msi",
        "published_at": "2026-12-05T08:39:51Z"
    });
    let cases: [(&str, serde_json::Value); 4] = [
        ("update_id", "../../etc/passwd".into()),
        ("installer", "bat".into()),
        ("vendor", "V".repeat(10_000).into()),
        ("installer_name", "gadget\u{1b}]0;owned\u{7}.msi".into()),
    ];
    for (key, value) in cases {
        let hostile = f.copy(&bundle, key);
        let mut entry = good.clone();
        entry[key] = value;
        f.resign_json(&hostile, |m| m["published"] = serde_json::json!([entry]));
        let isolated = f.root.join(format!("isolated-{key}"));
        let out = f.import(&isolated, &hostile);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(13), "{key}: {err}");
        assert!(!isolated.exists(), "{key}: a refused import left a store");
    }
}
