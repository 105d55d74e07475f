//! Catalog ingest benchmark: parse-only floor (quick-xml events), model + fragments, and full
//! ingest into a fresh store, over the same synthetic documents. Each phase runs in its own
//! process so its peak RSS is its own.
//!
//! cargo run --release --example bench_ingest -- --updates 30000 [--dir /tmp/ferry-bench]

use ferry::catalog::parse_update;
use ferry::store::Store;
use ferry::synth::{Planner, RenderedFile, render};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Documents as `u32 length, bytes`, so phases can stream them one at a time.
fn documents(path: &Path) -> impl Iterator<Item = Vec<u8>> {
    let mut r =
        BufReader::with_capacity(1 << 20, std::fs::File::open(path).expect("documents file"));
    std::iter::from_fn(move || {
        let mut len = [0u8; 4];
        r.read_exact(&mut len).ok()?;
        let mut doc = vec![0u8; u32::from_le_bytes(len) as usize];
        r.read_exact(&mut doc).expect("complete document");
        Some(doc)
    })
}

fn generate(path: &Path, updates: u64) {
    let mut w = BufWriter::new(std::fs::File::create(path).unwrap());
    let mut planner = Planner::new(1, 16 << 10);
    for _ in 0..updates {
        let p = planner.next_item();
        let files: Vec<RenderedFile> = p.files.iter().map(RenderedFile::stand_in).collect();
        let doc = render(&p, &files, &["en".to_string(), "de".to_string()]);
        w.write_all(&(doc.len() as u32).to_le_bytes()).unwrap();
        w.write_all(doc.as_bytes()).unwrap();
    }
    w.flush().unwrap();
}

fn phase(name: &str, docs: &Path, dir: &Path) {
    // The previous run's store goes first, outside the timing: deleting it is not ingest work.
    let store_dir = dir.join("store");
    let _ = std::fs::remove_dir_all(&store_dir);
    let started = Instant::now();
    let (mut bytes, mut count, mut fragments) = (0u64, 0u64, 0u64);
    match name {
        "parse-floor" => {
            for doc in documents(docs) {
                let mut reader = quick_xml::NsReader::from_reader(&doc[..]);
                loop {
                    match reader.read_resolved_event() {
                        Ok((_, quick_xml::events::Event::Eof)) => break,
                        Ok((
                            _,
                            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e),
                        )) => {
                            for a in e.attributes() {
                                std::hint::black_box(a.unwrap().value);
                            }
                        }
                        Ok(e) => {
                            std::hint::black_box(e);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                bytes += doc.len() as u64;
                count += 1;
            }
        }
        "parse" => {
            for doc in documents(docs) {
                let p = parse_update(&doc).unwrap();
                fragments += 2 + p.fragments.localized.len() as u64;
                bytes += doc.len() as u64;
                count += 1;
                std::hint::black_box(p);
            }
        }
        "ingest" => {
            let mut store = Store::open_or_create(&store_dir).unwrap();
            let options =
                ferry::store::IngestOptions { commit_every: Some(1000), ..Default::default() };
            let report = store
                .ingest_stream(
                    Box::new(
                        documents(docs).map(|d| Ok(ferry::store::IngestItem::new("bench", d))),
                    ),
                    options,
                )
                .unwrap();
            count = report.added;
            bytes = report.document_bytes;
        }
        "insert-only" => {
            // The writer's share alone: everything prepared in memory first.
            let prepared: Vec<_> = documents(docs)
                .map(|d| ferry::store::prepare_revision("bench", &d).unwrap())
                .collect();
            let mut store = Store::open_or_create(&store_dir).unwrap();
            let t = Instant::now();
            let mut batch = store.begin_ingest().unwrap();
            for (i, p) in prepared.iter().enumerate() {
                batch.add_prepared(p).unwrap();
                if i % 1000 == 999 {
                    batch.commit().unwrap();
                    batch = store.begin_ingest().unwrap();
                }
            }
            batch.commit().unwrap();
            println!(
                "insert-only: {} revisions in {:.2} s ({:.0} µs each)",
                prepared.len(),
                t.elapsed().as_secs_f64(),
                t.elapsed().as_secs_f64() * 1e6 / prepared.len() as f64
            );
            return;
        }
        other => panic!("unknown phase {other}"),
    }
    let secs = started.elapsed().as_secs_f64();
    let mb = bytes as f64 / 1e6;
    let extra = if fragments > 0 {
        format!(", {:.0} fragments/s", fragments as f64 / secs)
    } else {
        String::new()
    };
    println!(
        "{name:<12} {count:>7} documents  {mb:>8.1} MB  {secs:>6.2} s  {:>7.1} MB/s  {:>8.0} revisions/s{extra}  peak RSS {:.0} MiB",
        mb / secs,
        count as f64 / secs,
        peak_rss_mib()
    );
}

fn main() {
    let updates: u64 = arg("--updates").map(|s| s.parse().unwrap()).unwrap_or(30_000);
    let dir = PathBuf::from(arg("--dir").unwrap_or_else(|| "/tmp/ferry-bench-ingest".into()));
    std::fs::create_dir_all(&dir).unwrap();
    let docs = dir.join(format!("documents-{updates}.bin"));
    if let Some(p) = arg("--phase") {
        phase(&p, &docs, &dir);
        return;
    }
    if !docs.exists() {
        let t = Instant::now();
        generate(&docs, updates);
        println!(
            "generated {updates} documents ({:.1} MB) in {:.1} s",
            std::fs::metadata(&docs).unwrap().len() as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
    }
    for p in ["parse-floor", "parse", "ingest"] {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--updates", &updates.to_string(), "--dir", dir.to_str().unwrap(), "--phase", p])
            .status()
            .unwrap();
        assert!(status.success());
    }
}
