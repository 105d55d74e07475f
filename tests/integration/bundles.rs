//! Bundles end to end: keygen, export, verify, inspect, import; every bad-input case of the
//! bundle issue, each leaving the store byte-identical; interop with the stock minisign tool;
//! a crash test.

use crate::util::{ferry, json_of, snapshot, stdout_of};
use ferry::bundle::manifest::Manifest;
use ferry::bundle::minisign::SecretKey;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A broad test profile, so bundles carry many updates and payloads.
const PROFILE: &str = r#"
channel = "test-channel"
products = ["Windows 11", "Microsoft Defender Antivirus"]
classifications = ["Security Updates", "Critical Updates", "Definition Updates", "Updates", "Upgrades"]
include_superseded = true
languages = ["all"]
express = true
payloads = "all"
expires = "30d"
"#;

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub cache: PathBuf,
    pub key: PathBuf,
    pub public: PathBuf,
    pub profile: PathBuf,
    pub out: PathBuf,
}

impl Fixture {
    /// A cache with a generated catalog and a key pair; no bundle yet.
    pub fn new(updates: u64, payload: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let f = Fixture {
            cache: root.join("cache"),
            key: root.join("k.key"),
            public: root.join("k.pub"),
            profile: root.join("profile.toml"),
            out: root.join("out"),
            root,
            _dir: dir,
        };
        std::fs::write(&f.profile, PROFILE).unwrap();
        stdout_of(ferry(&f.cache).args([
            "dev",
            "synth",
            "--updates",
            &updates.to_string(),
            "--payload-bytes",
            payload,
        ]));
        stdout_of(ferry(&f.cache).args(["keygen", "--out"]).arg(f.root.join("k")));
        f
    }

    /// `ferry export --no-sync` of the cache with `profile`, not yet run.
    pub fn export_command(&self, profile: &Path) -> assert_cmd::Command {
        let mut c = ferry(&self.cache);
        c.args(["export", "--no-sync", "--profile"])
            .arg(profile)
            .arg("--key")
            .arg(&self.key)
            .arg("--out")
            .arg(&self.out)
            .arg("--cache")
            .arg(&self.cache);
        c
    }

    pub fn export(&self, extra: &[&str]) -> PathBuf {
        let mut c = self.export_command(&self.profile);
        c.args(extra);
        PathBuf::from(stdout_of(&mut c).trim())
    }

    pub fn import(&self, data: &Path, bundle: &Path) -> Output {
        ferry(data).arg("import").arg(bundle).arg("--trust").arg(&self.public).output().unwrap()
    }

    /// A copy of `bundle` to damage.
    pub fn copy(&self, bundle: &Path, name: &str) -> PathBuf {
        let to = self.root.join("damaged").join(name).join(bundle.file_name().unwrap());
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(bundle).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
        to
    }

    /// Rewrites the manifest as JSON and signs it again: for values the manifest's types would
    /// not even hold (a bundle id with `../`, a sequence beyond 2^63).
    pub fn resign_json(&self, bundle: &Path, change: impl FnOnce(&mut serde_json::Value)) {
        let path = bundle.join("manifest.json");
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        change(&mut m);
        let json = serde_json::to_vec_pretty(&m).unwrap();
        let comment = format!(
            "ferry bundle channel:{} sequence:{} bundle_id:{}",
            m["channel"].as_str().unwrap(),
            m["sequence"],
            m["bundle_id"].as_str().unwrap()
        );
        let key = SecretKey::parse(&std::fs::read_to_string(&self.key).unwrap(), None).unwrap();
        std::fs::write(&path, &json).unwrap();
        std::fs::write(bundle.join("manifest.json.minisig"), key.sign(&json, &comment, "test"))
            .unwrap();
    }

    /// Rewrites the manifest and signs it again with the exporter's key (a trusted signer that
    /// made a mistake, or an attacker with the key: the checks behind the signature must hold).
    pub fn resign(&self, bundle: &Path, change: impl FnOnce(&mut Manifest)) {
        let path = bundle.join("manifest.json");
        let mut m: Manifest = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        change(&mut m);
        let json = serde_json::to_vec_pretty(&m).unwrap();
        let key = SecretKey::parse(&std::fs::read_to_string(&self.key).unwrap(), None).unwrap();
        std::fs::write(&path, &json).unwrap();
        std::fs::write(
            bundle.join("manifest.json.minisig"),
            key.sign(&json, &m.trusted_comment(), "test"),
        )
        .unwrap();
    }
}

pub fn manifest(bundle: &Path) -> Manifest {
    serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap()
}

pub fn sha256_hex(path: &Path) -> (u64, String) {
    let bytes = std::fs::read(path).unwrap();
    use sha2::Digest;
    (bytes.len() as u64, hex::encode(sha2::Sha256::digest(&bytes)))
}

/// Updates the manifest's record of a volume after the test changed its bytes.
pub fn refresh_volume(f: &Fixture, bundle: &Path, volume: &str) {
    let (size, sha256) = sha256_hex(&bundle.join(volume));
    f.resign(bundle, |m| {
        let v = m.volumes.iter_mut().find(|v| v.name == volume).unwrap();
        v.size = size;
        v.sha256 = sha256;
    });
}

/// Appends one raw tar entry to a volume (before its end-of-archive blocks).
pub fn append_tar_entry(
    volume: &Path,
    name: &[u8],
    kind: tar::EntryType,
    data: &[u8],
    link: Option<&[u8]>,
) {
    let mut bytes = std::fs::read(volume).unwrap();
    bytes.truncate(bytes.len() - 1024);
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_entry_type(kind);
    header.set_mode(0o644);
    {
        let raw = header.as_old_mut();
        raw.name = [0; 100];
        raw.name[..name.len()].copy_from_slice(name);
        if let Some(l) = link {
            raw.linkname[..l.len()].copy_from_slice(l);
        }
    }
    header.set_cksum();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    bytes.extend_from_slice(&[0u8; 1024]);
    std::fs::write(volume, bytes).unwrap();
}

/// Runs `ferry import` on a damaged bundle and checks the exit code, the message and that the
/// store did not change by a byte.
pub fn assert_refused(f: &Fixture, store: &Path, bundle: &Path, code: i32, needle: &str) {
    let before = snapshot(store);
    let out = f.import(store, bundle);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}: expected exit {code}; stderr: {err}",
        bundle.display()
    );
    assert!(err.contains(needle), "{}: expected {needle:?} in: {err}", bundle.display());
    assert_eq!(before, snapshot(store), "{}: the store changed", bundle.display());
    // verify agrees, except on sequence rules (they need the store's history).
    if code != 12 {
        let v =
            ferry(store).arg("verify").arg(bundle).arg("--trust").arg(&f.public).output().unwrap();
        assert_eq!(
            v.status.code(),
            Some(code),
            "verify of {}: {}",
            bundle.display(),
            String::from_utf8_lossy(&v.stdout)
        );
    }
}

#[test]
fn export_verify_import_round_trip_with_volumes_and_chunks() {
    let f = Fixture::new(700, "300KiB");
    // 1 MiB volumes: many volumes, and the larger UUP files split into chunks.
    let bundle = f.export(&["--volume-size", "1MiB"]);
    let m = manifest(&bundle);
    assert!(m.volumes.len() > 3, "{} volumes", m.volumes.len());
    assert!(m.members.iter().any(|x| !x.chunks.is_empty()), "some member is chunked");
    assert!(m.volumes.iter().all(|v| v.size <= 1 << 20), "every volume under --volume-size");
    for v in &m.volumes {
        assert_eq!(
            sha256_hex(&bundle.join(&v.name)),
            (v.size, v.sha256.clone()),
            "{} matches the manifest (sha256sum)",
            v.name
        );
    }
    let verified = json_of(
        ferry(&f.root.join("unused")).arg("verify").arg(&bundle).arg("--trust").arg(&f.public),
    );
    assert_eq!(verified["problems"].as_array().unwrap().len(), 0);

    let iso = f.root.join("iso");
    let out = f.import(&iso, &bundle);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = json_of(ferry(&iso).arg("status"));
    assert_eq!(status["catalog"]["revisions"].as_u64().unwrap(), m.summary.revisions);
    assert_eq!(status["catalog"]["files_present"].as_u64().unwrap(), m.summary.payload_files);
    assert!(stdout_of(ferry(&iso).args(["check", "--deep"])).starts_with("clean"));
    // The same bundle again is a no-op success.
    let again = f.import(&iso, &bundle);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already imported"));
    // Inspect tells what is inside, also as a self-contained HTML page.
    let html = f.root.join("report.html");
    let inspected = json_of(ferry(&iso).arg("inspect").arg(&bundle).arg("--html").arg(&html));
    assert_eq!(inspected["manifest"]["sequence"], 1);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("test-channel")
            && page.contains(&m.bundle_id.to_string())
            && !page.contains("<script"),
        "a self-contained report"
    );
}

#[test]
fn zip_volumes_round_trip() {
    let f = Fixture::new(400, "64KiB");
    let bundle = f.export(&["--format", "zip", "--volume-size", "2MiB"]);
    assert!(manifest(&bundle).volumes.iter().all(|v| v.name.ends_with(".zip")));
    let out = f.import(&f.root.join("iso"), &bundle);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn deltas_carry_only_what_changed_and_import_only_on_their_base() {
    let f = Fixture::new(500, "8KiB");
    let full = f.export(&[]);
    stdout_of(ferry(&f.cache).args([
        "dev",
        "synth",
        "--updates",
        "900",
        "--payload-bytes",
        "8KiB",
    ]));
    let delta = f.export(&[]);
    let (mf, md) = (manifest(&full), manifest(&delta));
    assert_eq!((md.sequence.get(), md.base_sequence.map(|s| s.get())), (2, Some(1)));
    assert!(
        md.summary.revisions > 0 && md.summary.revisions < 900 - mf.summary.revisions + 50,
        "{} revisions in the delta",
        md.summary.revisions
    );
    let iso = f.root.join("iso");
    // A delta before its base is refused.
    assert_refused(&f, &iso, &delta, 12, "imported nothing");
    assert!(f.import(&iso, &full).status.success());
    let out = f.import(&iso, &delta);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The same bundle again: a no-op success.
    assert!(String::from_utf8_lossy(&f.import(&iso, &full).stdout).contains("already imported"));
    // A newer full bundle restarts the chain; an older bundle after it is a replay.
    let newer = f.export(&["--full"]);
    assert_eq!((manifest(&newer).sequence.get(), manifest(&newer).base_sequence), (3, None));
    let iso2 = f.root.join("iso2");
    assert!(f.import(&iso2, &newer).status.success());
    assert_refused(&f, &iso2, &delta, 12, "not newer than the last import");
    assert_refused(&f, &iso2, &full, 12, "not newer than the last import");
}

/// Byte offset of the data of tar entry `name` in `volume`.
pub fn entry_data_offset(volume: &Path, name: &str) -> Option<u64> {
    let mut archive = tar::Archive::new(std::fs::File::open(volume).unwrap());
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        if e.path_bytes().as_ref() == name.as_bytes() {
            return Some(e.raw_file_position());
        }
    }
    None
}

pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

/// Every bad bundle of the issue's list: the exit code of DESIGN.md §1, a message that names
/// the problem, and a store left byte-identical.
#[test]
fn bad_bundles_are_refused_with_their_exit_code_and_change_nothing() {
    let f = Fixture::new(600, "200KiB");
    let good = f.export(&["--volume-size", "1MiB"]);
    let m = manifest(&good);
    let store = f.root.join("iso");
    stdout_of(ferry(&store).args(["trust", "add"]).arg(&f.public));
    let last_volume = m.volumes.last().unwrap().name.clone();
    let payload = m
        .members
        .iter()
        .find(|x| x.path.as_str().starts_with("content/") && x.chunks.is_empty())
        .unwrap()
        .clone();

    // 10: signatures and trust.
    let b = f.copy(&good, "unsigned");
    std::fs::remove_file(b.join("manifest.json.minisig")).unwrap();
    assert_refused(&f, &store, &b, 10, "not signed");

    let b = f.copy(&good, "untrusted");
    stdout_of(ferry(&store).args(["keygen", "--out"]).arg(f.root.join("other")));
    let other = SecretKey::parse(&std::fs::read_to_string(f.root.join("other.key")).unwrap(), None)
        .unwrap();
    let json = std::fs::read(b.join("manifest.json")).unwrap();
    std::fs::write(b.join("manifest.json.minisig"), other.sign(&json, &m.trusted_comment(), "x"))
        .unwrap();
    assert_refused(&f, &store, &b, 10, "not trusted");

    let b = f.copy(&good, "edited-manifest");
    let text = std::fs::read_to_string(b.join("manifest.json")).unwrap().replacen(
        &m.created,
        "2020-01-01T00:00:00Z",
        1,
    );
    std::fs::write(b.join("manifest.json"), text).unwrap();
    assert_refused(&f, &store, &b, 10, "changed after it was signed");

    // 11: integrity of volumes and members.
    let b = f.copy(&good, "metadata-byte");
    let meta = m.members.iter().find(|x| x.path.as_str().starts_with("metadata/")).unwrap();
    let vol = b.join(format!("vol-{:04}.tar", meta.volume.unwrap()));
    flip_byte(&vol, entry_data_offset(&vol, meta.path.as_str()).unwrap() + 100);
    assert_refused(&f, &store, &b, 11, "does not match its hash");

    let b = f.copy(&good, "payload-byte");
    let vol = b.join(format!("vol-{:04}.tar", payload.volume.unwrap()));
    flip_byte(&vol, entry_data_offset(&vol, payload.path.as_str()).unwrap() + 7);
    assert_refused(&f, &store, &b, 11, &format!("volume {} of", payload.volume.unwrap()));

    let b = f.copy(&good, "header-byte");
    let vol = b.join(format!("vol-{:04}.tar", payload.volume.unwrap()));
    flip_byte(&vol, entry_data_offset(&vol, payload.path.as_str()).unwrap() - 512 + 20);
    assert_refused(&f, &store, &b, 11, "copy it again");

    let b = f.copy(&good, "truncated");
    let vol = b.join(&last_volume);
    let len = std::fs::metadata(&vol).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&vol).unwrap().set_len(len / 2).unwrap();
    assert_refused(&f, &store, &b, 11, "truncated");

    let b = f.copy(&good, "missing");
    std::fs::remove_file(b.join(&last_volume)).unwrap();
    assert_refused(&f, &store, &b, 11, "is missing");

    let b = f.copy(&good, "extra-volume");
    std::fs::copy(b.join("vol-0001.tar"), b.join("vol-0099.tar")).unwrap();
    assert_refused(
        &f,
        &store,
        &b,
        11,
        "vol-0099.tar is in the bundle directory but not in the manifest",
    );

    // 13: unsafe entries, behind a valid signature (a compromised or buggy exporter).
    let b = f.copy(&good, "unlisted");
    append_tar_entry(
        &b.join(&last_volume),
        b"content/00/EXTRA.cab",
        tar::EntryType::Regular,
        b"x",
        None,
    );
    refresh_volume(&f, &b, &last_volume);
    assert_refused(&f, &store, &b, 13, "not listed in the manifest");

    let b = f.copy(&good, "listed-twice");
    f.resign(&b, |m| {
        let dup = m.members[1].clone();
        m.members.push(dup);
    });
    assert_refused(&f, &store, &b, 13, "twice");

    type Hostile<'a> = (&'a str, &'a [u8], tar::EntryType, Option<&'a [u8]>);
    let hostile: [Hostile; 7] = [
        ("dotdot", b"content/../../escape.cab", tar::EntryType::Regular, None),
        ("absolute", b"/etc/ferry-escape", tar::EntryType::Regular, None),
        ("drive", b"C:\\Windows\\escape.cab", tar::EntryType::Regular, None),
        ("unc", b"\\\\server\\share\\escape.cab", tar::EntryType::Regular, None),
        ("symlink", b"content/00/LINK.cab", tar::EntryType::Symlink, Some(b"/etc/passwd")),
        ("hardlink", b"content/00/HARD.cab", tar::EntryType::Link, Some(b"manifest.json")),
        ("device", b"content/00/DEV.cab", tar::EntryType::Char, None),
    ];
    for (name, path, kind, link) in hostile {
        let b = f.copy(&good, name);
        append_tar_entry(
            &b.join(&last_volume),
            path,
            kind,
            if kind == tar::EntryType::Regular { b"x" } else { b"" },
            link,
        );
        refresh_volume(&f, &b, &last_volume);
        assert_refused(&f, &store, &b, 13, "");
        assert!(!f.root.join("escape.cab").exists() && !Path::new("/etc/ferry-escape").exists());
    }

    let b = f.copy(&good, "larger-than-declared");
    let target = payload.path.clone();
    f.resign(&b, |m| m.members.iter_mut().find(|x| x.path == target).unwrap().size -= 1);
    assert_refused(&f, &store, &b, 13, "more than the");

    // A decompression bomb: one record of 64 MiB of zeros that declares 100 bytes.
    let b = f.copy(&good, "bomb");
    let frame = zstd::bulk::compress(&vec![0u8; 64 << 20], 19).unwrap();
    let mut record = Vec::new();
    ferry::bundle::metadata::write_record(&mut record, &frame, 100).unwrap();
    append_tar_entry(
        &b.join(&last_volume),
        b"metadata/revisions-0099.bin",
        tar::EntryType::Regular,
        &record,
        None,
    );
    let (size, sha256) = (record.len() as u64, {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&record))
    });
    let volume_number = m.volumes.len() as u32;
    refresh_volume(&f, &b, &last_volume);
    f.resign(&b, |m| {
        m.members.push(ferry::bundle::manifest::MemberEntry {
            path: ferry::bundle::safe_path::SafePath::new("metadata/revisions-0099.bin").unwrap(),
            kind: ferry::bundle::manifest::MemberKind::Metadata,
            size,
            sha256,
            volume: Some(volume_number),
            sha1: None,
            uncompressed_size: Some(100),
            documents: Some(1),
            chunks: Vec::new(),
        })
    });
    assert_refused(&f, &store, &b, 13, "declared");

    // 12: expiry (overridable, with a warning).
    let b = f.copy(&good, "expired");
    f.resign(&b, |m| m.expires = Some("2020-01-01T00:00:00Z".into()));
    assert_refused(&f, &store, &b, 12, "expired");
    let out = ferry(&store).arg("import").arg(&b).arg("--allow-expired").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));
    assert!(stdout_of(ferry(&store).args(["check", "--deep"])).starts_with("clean"));
}

/// Killed at any point, a re-run finishes the import and the store is consistent.
#[test]
fn import_killed_at_any_point_finishes_on_rerun() {
    let f = Fixture::new(500, "100KiB");
    let bundle = f.export(&["--volume-size", "1MiB"]);
    let m = manifest(&bundle);
    for point in ["import.first-payload-staged", "import.before-commit", "import.after-commit"] {
        let store = f.root.join(format!("iso-{point}"));
        let crashed = ferry(&store)
            .env("FERRY_CRASH_AT", point)
            .arg("import")
            .arg(&bundle)
            .arg("--trust")
            .arg(&f.public)
            .output()
            .unwrap();
        assert!(!crashed.status.success(), "{point}: the process should have died");
        let rerun = f.import(&store, &bundle);
        assert!(rerun.status.success(), "{point}: {}", String::from_utf8_lossy(&rerun.stderr));
        let status = json_of(ferry(&store).arg("status"));
        assert_eq!(
            status["catalog"]["revisions"].as_u64().unwrap(),
            m.summary.revisions,
            "{point}"
        );
        assert_eq!(
            status["catalog"]["files_present"].as_u64().unwrap(),
            m.summary.payload_files,
            "{point}"
        );
        assert!(stdout_of(ferry(&store).args(["check", "--deep"])).starts_with("clean"), "{point}");
        assert!(
            !store.join("tmp").join(format!("import-{}", m.bundle_id)).exists(),
            "{point}: staging cleaned up"
        );
    }
}

/// The stock minisign tool (Debian package) accepts the manifest signature with the exported key.
#[test]
fn stock_minisign_verifies_the_manifest() {
    let Ok(found) = std::process::Command::new("minisign").arg("-v").output() else {
        assert!(
            std::env::var_os("FERRY_REQUIRE_TOOLS").is_none(),
            "minisign is required (FERRY_REQUIRE_TOOLS is set)"
        );
        eprintln!("skipped: minisign is not installed");
        return;
    };
    let _ = found;
    let f = Fixture::new(200, "4KiB");
    let bundle = f.export(&[]);
    let out = std::process::Command::new("minisign")
        .arg("-Vm")
        .arg(bundle.join("manifest.json"))
        .arg("-p")
        .arg(&f.public)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("bundle_id:{}", manifest(&bundle).bundle_id)), "{text}");
    // And sha256sum of each volume matches the manifest.
    let sums = std::process::Command::new("sha256sum")
        .args(manifest(&bundle).volumes.iter().map(|v| v.name.clone()))
        .current_dir(&bundle)
        .output()
        .unwrap();
    for v in manifest(&bundle).volumes {
        assert!(
            String::from_utf8_lossy(&sums.stdout).contains(&format!("{}  {}", v.sha256, v.name))
        );
    }
    // An edited manifest fails minisign too.
    let copy = f.copy(&bundle, "edited");
    let text = std::fs::read_to_string(copy.join("manifest.json")).unwrap().replacen(
        "\"sequence\": 1",
        "\"sequence\": 7",
        1,
    );
    std::fs::write(copy.join("manifest.json"), text).unwrap();
    let out = std::process::Command::new("minisign")
        .arg("-Vm")
        .arg(copy.join("manifest.json"))
        .arg("-p")
        .arg(&f.public)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// A cached payload that does not match its metadata stops the export, naming the file; no
/// bundle is left behind, the channel does not advance, and the damaged file leaves the cache
/// (marked missing, so a sync fetches it again: `pipeline.rs`).
#[test]
fn damaged_cache_payload_stops_the_export() {
    let f = Fixture::new(300, "8KiB");
    let all =
        json_of(ferry(&f.cache).args(["updates", "list", "--all", "--product", "windows 11"]));
    let file = all
        .as_array()
        .unwrap()
        .iter()
        .find_map(|u| {
            json_of(ferry(&f.cache).args(["updates", "show", u["update_id"].as_str().unwrap()]))
                    ["files"]
                    .as_array()
                    .and_then(|x| x.first().cloned())
        })
        .expect("a Windows 11 update with a file");
    let path = f.cache.join("content").join(file["content_path"].as_str().unwrap());
    flip_byte(&path, 3);
    let out = f.export_command(&f.profile).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(file["file_name"].as_str().unwrap())
            && err.contains("does not match its metadata"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&f.out).map(|d| d.count()).unwrap_or(0),
        0,
        "no bundle or partial directory is left"
    );
    assert!(!path.exists(), "the damaged file left the cache");
    // Marked missing: the next export without a sync says what is missing instead of packaging.
    let again = f.export_command(&f.profile).output().unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not in the cache") && err.contains(file["file_name"].as_str().unwrap()),
        "{err}"
    );
}

#[test]
fn profile_with_an_unknown_key_is_refused_naming_it() {
    let f = Fixture::new(60, "1KiB");
    std::fs::write(&f.profile, format!("{PROFILE}\nclasifications = [\"Security Updates\"]\n"))
        .unwrap();
    let out = f.export_command(&f.profile).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("clasifications") && err.contains("profile.toml"), "{err}");
}

/// The shipped example profiles parse, and select from a generated catalog.
#[test]
fn shipped_profiles_are_valid() {
    let f = Fixture::new(1200, "1KiB");
    for name in ["windows11-security", "defender-definitions", "office-security"] {
        let profile =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests").join(format!("{name}.toml"));
        let mut c = f.export_command(&profile);
        let bundle = PathBuf::from(stdout_of(&mut c).trim());
        assert_eq!(manifest(&bundle).channel.as_str(), name);
    }
}

/// Import checks every member against its signed SHA-256 and accounts for every entry, but not the
/// volume's own hash (a third of the CPU, no extra protection): a byte changed outside any member
/// (the archive's end padding) is a `verify` problem, while import loads the intact content.
#[test]
fn import_checks_members_and_verify_also_whole_volumes() {
    let f = Fixture::new(60, "2KiB");
    let good = f.export(&[]);
    let b = f.copy(&good, "padding-byte");
    let vol = b.join("vol-0001.tar");
    let len = std::fs::metadata(&vol).unwrap().len();
    flip_byte(&vol, len - 10);
    let out = ferry(&f.root.join("verify"))
        .args(["verify"])
        .arg(&b)
        .arg("--trust")
        .arg(&f.public)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(11), "{}", String::from_utf8_lossy(&out.stderr));
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("does not match its hash"), "{said}");
    let store = f.root.join("isolated");
    stdout_of(ferry(&store).args(["import"]).arg(&b).arg("--trust").arg(&f.public));
    stdout_of(ferry(&store).args(["check", "--deep"]));
    // A byte inside a member is refused by import too.
    let m = manifest(&good);
    let payload = m.members.iter().find(|x| x.path.as_str().starts_with("content/")).unwrap();
    let b = f.copy(&good, "member-byte");
    let vol = b.join(format!("vol-{:04}.tar", payload.volume.unwrap()));
    flip_byte(&vol, entry_data_offset(&vol, payload.path.as_str()).unwrap() + 3);
    let fresh = f.root.join("isolated2");
    stdout_of(ferry(&fresh).args(["trust", "add"]).arg(&f.public));
    assert_refused(&f, &fresh, &b, 11, "does not match its hash");
}
