//! Helpers shared by the integration tests.

use assert_cmd::Command;
use std::path::Path;

/// `ferry` with a clean environment for the store location.
pub fn ferry(data: &Path) -> Command {
    let mut c = Command::cargo_bin("ferry").expect("the ferry binary is built");
    c.env_remove("FERRY_DATA").arg("--data").arg(data);
    c
}

pub fn stdout_of(c: &mut Command) -> String {
    let out = c.output().expect("ferry runs");
    assert!(
        out.status.success(),
        "ferry failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn json_of(c: &mut Command) -> serde_json::Value {
    serde_json::from_str(&stdout_of(c.arg("--json"))).expect("one JSON document on stdout")
}

/// Every file under `dir` with the SHA-256 of its bytes, for "nothing changed" assertions.
pub fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    for entry in walk(dir) {
        let rel = entry.strip_prefix(dir).unwrap().to_string_lossy().to_string();
        // SQLite's shared-memory index changes on reads; the database and WAL carry the data.
        if rel.ends_with("-shm") {
            continue;
        }
        use sha2::Digest;
        out.push((rel, hex::encode(sha2::Sha256::digest(std::fs::read(&entry).unwrap()))));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { files.extend(walk(&p)) } else { files.push(p) }
    }
    files
}

/// `n` generated update documents (the synth generator's plan and rendering, without a store);
/// each payload gets its own digests, so the documents ingest together.
pub fn synthetic_documents(n: u64) -> Vec<(ferry::synth::Planned, String)> {
    let mut planner = ferry::synth::Planner::new(3, 1024);
    (0..n)
        .map(|_| {
            let p = planner.next_item();
            let files: Vec<ferry::synth::RenderedFile> =
                p.files.iter().map(ferry::synth::RenderedFile::stand_in).collect();
            let doc = ferry::synth::render(&p, &files, &["en".to_string(), "de".to_string()]);
            (p, doc)
        })
        .collect()
}

/// Polls `f` every 100 ms until it holds; fails the test after 10 s, naming `what`.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
