//! The whole chain, as a site runs it: an upstream (`ferry serve` over a generated catalog),
//! `export` syncing from it, `verify`, `import` on the isolated side, approvals, `serve`, and a
//! client that scans and downloads; then the upstream grows and a delta carries the difference.

use crate::served::{Agent, Served};
use crate::util::{ferry, json_of, stdout_of};
use sha1::Digest as _;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const PROFILE: &str = r#"
channel = "win11-security"
products = ["Windows 11"]
classifications = ["Security Updates", "Critical Updates"]
payloads = "all"
"#;

/// The connected side: an upstream (`ferry serve` over a generated catalog), a cache, a key pair
/// and the profile, all in one temporary directory.
struct Connected {
    dir: tempfile::TempDir,
    upstream_store: std::path::PathBuf,
    cache: std::path::PathBuf,
    key: std::path::PathBuf,
    profile: std::path::PathBuf,
    upstream: Served,
}

impl Connected {
    fn new(updates: u32) -> Connected {
        let dir = tempfile::tempdir().unwrap();
        let (upstream_store, cache) = (dir.path().join("upstream"), dir.path().join("cache"));
        stdout_of(ferry(&upstream_store).args([
            "dev",
            "synth",
            "--updates",
            &updates.to_string(),
            "--payload-bytes",
            "4000",
        ]));
        let upstream = Served::start(&upstream_store, &[]);
        let profile = dir.path().join("profile.toml");
        std::fs::write(&profile, PROFILE).unwrap();
        let key = dir.path().join("k");
        stdout_of(ferry(&cache).args(["keygen", "--out"]).arg(&key));
        Connected { dir, upstream_store, cache, key, profile, upstream }
    }

    /// `ferry export` syncing from the upstream into `out/`, not yet run.
    fn export(&self, extra: &[&str]) -> assert_cmd::Command {
        let mut c = ferry(&self.cache);
        c.args(["export", "--upstream", &self.upstream.url(), "--cache"])
            .arg(&self.cache)
            .arg("--profile")
            .arg(&self.profile)
            .arg("--key")
            .arg(self.key.with_extension("key"))
            .arg("--out")
            .arg(self.dir.path().join("out"))
            .args(extra);
        c
    }
}

#[test]
fn export_syncs_from_a_ferry_upstream_and_clients_see_exactly_the_approved_updates() {
    let c = Connected::new(1200);
    let (isolated, key) = (c.dir.path().join("isolated"), &c.key);
    let export = |extra: &[&str]| -> String { stdout_of(&mut c.export(extra)).trim().to_string() };
    let first = export(&[]);
    stdout_of(ferry(&isolated).args(["verify", &first, "--trust"]).arg(key.with_extension("pub")));
    stdout_of(ferry(&isolated).args(["import", &first, "--trust"]).arg(key.with_extension("pub")));

    // Approve the security updates, as an administrator would.
    let ids = stdout_of(ferry(&isolated).args([
        "updates",
        "list",
        "--approval",
        "unapproved",
        "--classification",
        "security",
        "--ids",
    ]));
    let approved: HashSet<String> = ids.lines().map(str::to_string).collect();
    assert!(!approved.is_empty(), "the bundle carries security updates");
    stdout_of(ferry(&isolated).args(["updates", "approve", "-"]).write_stdin(ids));

    let server = Served::start(&isolated, &[]);
    let mut agent = Agent::new(&server);
    agent.handshake();
    agent.scan();
    let offered: HashSet<String> = agent
        .seen
        .values()
        .filter(|u| u.action == "Install")
        .map(|u| u.update_id.unwrap().to_string())
        .collect();
    assert_eq!(offered, approved, "exactly the approved updates are offered for install");

    // Their files download from the isolated server and match their digests.
    let install: Vec<i32> = agent
        .seen
        .values()
        .filter(|u| u.action == "Install" || u.action == "Bundle")
        .map(|u| u.revision_id)
        .collect();
    let files = agent.file_locations(&install);
    assert!(!files.is_empty());
    for (digest, url) in &files {
        let path =
            url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..])).unwrap();
        let r = server.http().request("GET", path, &[], b"");
        assert_eq!(r.status, 200, "{url}");
        assert_eq!(sha1::Sha1::digest(&r.body).to_vec(), *digest, "{url}");
    }

    // The upstream grows (while serving); the next export is a delta that imports on top.
    let before = json_of(ferry(&isolated).arg("status"));
    stdout_of(ferry(&c.upstream_store).args([
        "dev",
        "synth",
        "--updates",
        "1500",
        "--payload-bytes",
        "4000",
    ]));
    let deadline = Instant::now() + Duration::from_secs(10);
    let second = loop {
        let path = export(&[]);
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(std::path::Path::new(&path).join("manifest.json")).unwrap(),
        )
        .unwrap();
        if manifest["summary"]["revisions"].as_u64().unwrap_or(0) > 0 || Instant::now() > deadline {
            assert_eq!(
                manifest["base_sequence"].as_u64(),
                manifest["sequence"].as_u64().map(|s| s - 1),
                "a delta on the previous bundle"
            );
            break path;
        }
        // The upstream had not reloaded its catalog yet: that empty delta imports too.
        stdout_of(
            ferry(&isolated).args(["import", &path, "--trust"]).arg(key.with_extension("pub")),
        );
    };
    stdout_of(ferry(&isolated).args(["import", &second, "--trust"]).arg(key.with_extension("pub")));
    let after = json_of(ferry(&isolated).arg("status"));
    assert!(
        after["catalog"]["revisions"].as_u64() > before["catalog"]["revisions"].as_u64(),
        "{before} -> {after}"
    );
}

/// Guards README's first command: the demo runs the whole pipeline and serves.
#[test]
fn the_demo_runs_the_whole_pipeline_and_serves() {
    // The demo makes its three stores (upstream, cache, isolated side) as SQLite stores in
    // directories of its own, whatever --database says: on PostgreSQL this would be the same
    // run again.
    if crate::util::on_postgres() {
        eprintln!("skipped on PostgreSQL: the demo's stores are SQLite stores");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(dir.path())
        .args([
            "demo",
            "--updates",
            "1200",
            "--listen",
            "127.0.0.1:0",
            "--exit-after-setup",
            "--dir",
        ])
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for step in [
        "1. An upstream",
        "3. Export",
        "4. Isolated side",
        "5. Import",
        "6. Approve",
        "7. Serve",
        "WUServer       = http://",
        "WUStatusServer = http://",
        "/admin (log in with the admin token ferry_",
    ] {
        assert!(text.contains(step), "{step} missing from:\n{text}");
    }
    let scanned = text.lines().find(|l| l.contains("scanned it")).unwrap();
    assert!(!scanned.contains(" 0 updates offered"), "{scanned}");
    let status = json_of(ferry(&dir.path().join("demo/isolated/store")).arg("status"));
    assert!(status["catalog"]["revisions"].as_u64().unwrap() > 0);
}

/// A cache file damaged after it was downloaded (a crash before the disk had it, a bad sector)
/// stops the export that finds it and leaves the cache; the next export downloads it again.
#[test]
fn a_damaged_cache_payload_is_downloaded_again_by_the_next_export() {
    let c = Connected::new(400);
    let export = || c.export(&["--full"]).output().unwrap();
    assert!(export().status.success());
    let damaged =
        walk_files(&c.cache.join("content")).into_iter().next().expect("payloads were downloaded");
    let mut bytes = std::fs::read(&damaged).unwrap();
    let original = bytes.clone();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&damaged, bytes).unwrap();

    let failed = export();
    let err = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{err}");
    assert!(err.contains("out of the cache") && err.contains("run the export again"), "{err}");
    assert!(!damaged.exists());

    let repaired = export();
    assert!(repaired.status.success(), "{}", String::from_utf8_lossy(&repaired.stderr));
    assert_eq!(std::fs::read(&damaged).unwrap(), original, "downloaded again, whole");
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "tmp") {
                files.extend(walk_files(&path));
            }
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The demo makes SQLite stores of its own: a database given to it is refused, not ignored,
/// and nothing is made.
#[test]
fn the_demo_refuses_a_database_it_would_not_use() {
    let dir = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("ferry")
        .unwrap()
        .env_remove("FERRY_DATABASE_URL")
        .args(["--database", "postgres://ferry:secret@db.example/wsus", "demo", "--dir"])
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not use --database"), "{stderr}");
    assert!(!stderr.contains("secret"), "{stderr}");
    assert!(!dir.path().join("demo").exists(), "nothing made");
}
