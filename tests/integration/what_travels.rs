//! What travels: the profile's languages, express files and payload policy decide what a bundle
//! carries; `ferry export --dry-run` says it to the byte before anything is written.

use crate::bundles::{Fixture, manifest};
use crate::util::{ferry, json_of, location, stdout_of};
use ferry::bundle::manifest::Manifest;
use ferry::store::Store;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn profile(f: &Fixture, channel: &str, extra: &str) -> PathBuf {
    let path = f.root.join(format!("{channel}.toml"));
    let text = format!(
        "channel = \"{channel}\"\nproducts = [\"Windows 11\", \"Office 2016\"]\n\
         classifications = [\"Security Updates\", \"Critical Updates\", \"Update Rollups\", \"Updates\", \"Feature Packs\"]\n{extra}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The dry run's figures, then the real export's manifest, at a volume size that makes several volumes.
fn dry_run_then_export(f: &Fixture, profile: &Path) -> (serde_json::Value, Manifest) {
    let mut dry = f.export_command(profile);
    dry.args(["--dry-run", "--volume-size", "1MiB"]);
    let dry = json_of(&mut dry);
    let mut real = f.export_command(profile);
    real.args(["--volume-size", "1MiB"]);
    let dir = PathBuf::from(stdout_of(&mut real).trim());
    (dry, manifest(&dir))
}

fn assert_dry_run_equals(dry: &serde_json::Value, m: &Manifest, what: &str) {
    let s = &m.summary;
    let sizes: Vec<u64> = m.volumes.iter().map(|v| v.size).collect();
    assert_eq!(dry["updates"], s.software_updates, "{what}: updates");
    assert_eq!(dry["revisions"], s.revisions, "{what}: revisions");
    assert_eq!(dry["payload_files"], s.payload_files, "{what}: payload files");
    assert_eq!(dry["payload_bytes"], s.payload_bytes, "{what}: payload bytes");
    assert_eq!(dry["metadata_bytes"], s.metadata_bytes, "{what}: metadata bytes");
    assert_eq!(dry["total_bytes"], s.total_bytes, "{what}: total bytes");
    assert_eq!(dry["volumes"], m.volumes.len(), "{what}: volumes");
    assert_eq!(dry["volume_bytes"], serde_json::json!(sizes), "{what}: volume sizes");
    assert_eq!(dry["sequence"], m.sequence.get(), "{what}: sequence");
    assert_eq!(dry["kind"], if m.is_delta() { "delta" } else { "full" }, "{what}: kind");
}

/// Languages and express flags of the cache's updates and files.
struct CacheFacts {
    languages: HashMap<String, Vec<String>>,
    express: HashMap<String, bool>,
    /// SHA-1 (lower hex) of a payload → the languages of the updates that have it.
    file_languages: HashMap<String, Vec<String>>,
}

fn facts(cache: &Path) -> CacheFacts {
    let store = Store::open_at(&location(cache)).unwrap();
    let catalog = store.catalog_revisions().unwrap();
    CacheFacts {
        languages: catalog.iter().map(|r| (r.update_id.clone(), r.languages.clone())).collect(),
        express: catalog
            .iter()
            .flat_map(|r| r.files.iter())
            .map(|f| (f.sha1.to_hex_lower(), f.is_express()))
            .collect(),
        file_languages: catalog
            .iter()
            .flat_map(|r| r.files.iter().map(|f| (f.sha1.to_hex_lower(), r.languages.clone())))
            .collect(),
    }
}

/// Payload members of updates for languages other than English.
fn foreign_members(m: &Manifest, facts: &CacheFacts) -> usize {
    let foreign = |l: &Vec<String>| !l.is_empty() && l.iter().all(|l| l != "en" && l != "all");
    m.members
        .iter()
        .filter(|e| e.sha1.as_ref().is_some_and(|s| foreign(&facts.file_languages[s])))
        .count()
}

fn express_members(m: &Manifest, facts: &CacheFacts) -> usize {
    m.members.iter().filter(|e| e.sha1.as_ref().is_some_and(|s| facts.express[s])).count()
}

#[test]
fn each_setting_changes_what_travels_and_the_dry_run_equals_the_export() {
    let f = Fixture::new(1500, "4KiB");
    let facts = facts(&f.cache);
    let mut sizes = Vec::new();
    for (channel, extra) in [
        ("en", "languages = [\"en\"]"),
        ("all-languages", "languages = [\"all\"]"),
        ("express", "languages = [\"en\"]\nexpress = true"),
        (
            "superseded",
            "languages = [\"en\"]\ninclude_superseded = true\npayloads = \"not-superseded\"",
        ),
        ("approved", "languages = [\"en\"]\npayloads = \"approved\""),
    ] {
        let (dry, m) = dry_run_then_export(&f, &profile(&f, channel, extra));
        assert_dry_run_equals(&dry, &m, channel);
        sizes.push((
            channel,
            m.summary.total_bytes,
            foreign_members(&m, &facts),
            express_members(&m, &facts),
            dry["left_behind"].clone(),
        ));
    }
    let by = |c: &str| sizes.iter().find(|s| s.0 == c).unwrap().clone();
    let (en, all, express, approved) =
        (by("en"), by("all-languages"), by("express"), by("approved"));
    // Languages: only "all" carries updates for other languages, and it is larger.
    assert_eq!(en.2, 0, "languages = [en] carried updates for other languages");
    assert!(all.2 > 0 && all.1 > en.1, "all languages: {all:?} against {en:?}");
    assert!(en.4["languages"]["updates"].as_u64().unwrap() > 0, "{:?}", en.4);
    // Express files travel only when asked for; what they weigh is what the dry run said.
    assert_eq!(en.3, 0, "express = false carried express files");
    assert!(express.3 > 0 && express.1 > en.1, "{express:?}");
    assert!(en.4["express"]["bytes"].as_u64().unwrap() > 0);
    // Nothing is approved in the cache: approved-only carries metadata alone.
    assert!(
        approved.1 < en.1 && approved.4["payloads"]["files"].as_u64().unwrap() > 0,
        "{approved:?}"
    );
}

#[test]
fn approving_on_the_connected_side_makes_the_next_delta_carry_the_files() {
    let f = Fixture::new(800, "4KiB");
    let profile = profile(&f, "approved", "payloads = \"approved\"");
    let (_, first) = dry_run_then_export(&f, &profile);
    assert_eq!(first.summary.payload_files, 0);
    let approvable =
        first.updates.iter().find(|u| u.payload_bytes > 0).expect("an update with files");
    stdout_of(ferry(&f.cache).args(["updates", "approve", &approvable.update_id.to_string()]));
    let (dry, second) = dry_run_then_export(&f, &profile);
    assert_dry_run_equals(&dry, &second, "after approving");
    assert!(second.is_delta() && second.summary.payload_files > 0, "{:?}", second.summary);
    assert_eq!(second.summary.revisions, 0, "only files were new: {:?}", second.summary);
}

#[test]
fn a_delta_after_the_languages_changed_carries_what_the_new_setting_adds_and_import_says_so() {
    let f = Fixture::new(1500, "4KiB");
    let data = f.root.join("isolated");
    let path = profile(&f, "office", "languages = [\"en\"]");
    let first =
        PathBuf::from(stdout_of(f.export_command(&path).arg("--volume-size").arg("64MiB")).trim());
    assert!(f.import(&data, &first).status.success());
    let held = ferry::bundle::held::held(&Store::open_at(&location(&data)).unwrap()).unwrap();
    assert_eq!(
        held.languages.map(|l| l.into_iter().collect::<Vec<_>>()),
        Some(vec!["en".to_string()])
    );
    assert!(!held.express);

    std::fs::write(
        &path,
        std::fs::read_to_string(&path).unwrap().replace("[\"en\"]", "[\"en\", \"de\"]"),
    )
    .unwrap();
    let mut dry = f.export_command(&path);
    let dry = json_of(dry.arg("--dry-run"));
    assert_eq!(
        (dry["kind"].as_str(), dry["revisions"].as_u64().map(|n| n > 0)),
        (Some("delta"), Some(true)),
        "{dry}"
    );
    let second = PathBuf::from(stdout_of(&mut f.export_command(&path)).trim());
    let m = manifest(&second);
    let facts = facts(&f.cache);
    assert!(
        m.updates
            .iter()
            .all(|u| facts.languages[&u.update_id.to_string()].iter().all(|l| l == "de")),
        "only German updates are new"
    );
    let german = |s: &String| facts.file_languages[s] == ["de"];
    assert!(
        m.members.iter().filter_map(|e| e.sha1.as_ref()).all(german),
        "only German files are new"
    );
    let out = f.import(&data, &second);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("now carries languages de"), "{stderr}");

    // Dropping a language withdraws its updates, in so many words.
    std::fs::write(
        &path,
        std::fs::read_to_string(&path).unwrap().replace("[\"en\", \"de\"]", "[\"en\"]"),
    )
    .unwrap();
    let third = PathBuf::from(stdout_of(&mut f.export_command(&path)).trim());
    let m = manifest(&third);
    assert!(
        !m.removed.is_empty() && m.removed.iter().all(|r| r.reason.contains("other languages")),
        "{:?}",
        m.removed
    );
    let out = f.import(&data, &third);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no longer carries languages de"));
}

#[test]
fn bad_profile_values_name_the_key_and_the_choices() {
    let f = Fixture::new(200, "1KiB");
    for (extra, words) in [
        ("languages = [\"xx\"]", &["xx", "offers", "de", "en", "pt-br"][..]),
        ("languages = [\"English\"]", &["languages", "English"][..]),
        ("express = \"maybe\"", &["express"][..]),
        ("payloads = \"some\"", &["payloads", "approved", "not-superseded"][..]),
    ] {
        let out = f.export_command(&profile(&f, "bad", extra)).arg("--dry-run").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra}: {stderr}");
        for w in words {
            assert!(stderr.contains(w), "{extra}: {w:?} not in {stderr}");
        }
    }
    assert!(!f.out.exists(), "a dry run wrote something");
}

#[test]
fn localized_properties_of_other_languages_stay_behind_and_a_later_full_bundle_adds_them() {
    let f = Fixture::new(10, "1KiB");
    stdout_of(ferry(&f.cache).args([
        "dev",
        "synth",
        "--updates",
        "600",
        "--languages",
        "en,de,fr",
        "--payload-bytes",
        "1KiB",
    ]));
    let data = f.root.join("isolated");
    let path = profile(&f, "titles", "languages = [\"en\"]\npayloads = \"none\"");
    let mut all =
        f.export_command(&profile(&f, "titles-all", "languages = [\"all\"]\npayloads = \"none\""));
    let all = json_of(all.arg("--dry-run"));
    let (dry, m) = dry_run_then_export(&f, &path);
    assert_dry_run_equals(&dry, &m, "english titles");
    assert!(
        m.summary.metadata_bytes < all["metadata_bytes"].as_u64().unwrap(),
        "{:?} against {all}",
        m.summary
    );
    let first = f.out.join("titles-000001");
    assert!(f.import(&data, &first).status.success());
    let held = |data: &Path| Store::open_at(&location(data)).unwrap().languages().unwrap();
    assert!(held(&data).iter().all(|l| l == "en" || l == "all"), "{:?}", held(&data));

    // German joins: a full bundle brings German titles for what the store already has.
    std::fs::write(
        &path,
        std::fs::read_to_string(&path).unwrap().replace("[\"en\"]", "[\"en\", \"de\"]"),
    )
    .unwrap();
    let second = PathBuf::from(stdout_of(f.export_command(&path).arg("--full")).trim());
    let out = f.import(&data, &second);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        held(&data).contains(&"de".to_string()) && !held(&data).contains(&"fr".to_string()),
        "{:?}",
        held(&data)
    );
    let check = ferry(&data).args(["check", "--deep"]).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}

/// The isolated server says what came across: no location for an express file it lacks (clients
/// take the full file), `ServerHostsPsfFiles=false` and only the bundle's languages enabled for
/// downstream servers.
#[test]
fn the_isolated_server_offers_full_files_and_the_languages_it_holds() {
    use crate::served::{Agent, Served};
    use ferry::wsus::downstream as ds;
    let f = Fixture::new(1500, "4KiB");
    let data = f.root.join("isolated");
    let path = profile(&f, "serve", "languages = [\"en\", \"de\"]\npayloads = \"none\"");
    let bundle = PathBuf::from(stdout_of(&mut f.export_command(&path)).trim());
    assert!(f.import(&data, &bundle).status.success());

    let isolated = Store::open_at(&location(&data)).unwrap().catalog_revisions().unwrap();
    let with_express: Vec<i32> = isolated
        .iter()
        .filter(|r| r.is_latest && r.files.iter().any(|x| x.is_express()))
        .map(|r| r.revision_id)
        .collect();
    assert!(!with_express.is_empty(), "the bundle carried no update with express files");
    let express: Vec<Vec<u8>> = isolated
        .iter()
        .flat_map(|r| r.files.iter())
        .filter(|x| x.is_express())
        .map(|x| x.sha1.0.to_vec())
        .collect();

    let server = Served::start(&data, &[]);
    let mut agent = Agent::new(&server);
    agent.handshake();
    let locations = agent.file_locations(&with_express);
    assert!(!locations.is_empty(), "the full files of {with_express:?} have locations");
    assert!(
        locations.iter().all(|(digest, _)| !express.contains(digest)),
        "an express file the store lacks has a location"
    );

    let cookie = crate::hostile_server::server_cookie(&server);
    let r = server.soap(
        "/ServerSyncWebService/ServerSyncWebService.asmx",
        &ds::action("GetConfigData"),
        &ds::get_config_data(&cookie, None),
    );
    let config = ds::read_config_data(&r.body).unwrap();
    assert!(!config.hosts_psf_files, "{}", r.text());
    let enabled: Vec<&str> =
        config.languages.iter().filter(|l| l.enabled).map(|l| l.short.as_str()).collect();
    assert_eq!(enabled, ["de", "en"], "{}", r.text());
}
