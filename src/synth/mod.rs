//! `ferry dev synth`: a generated catalog shaped like Microsoft's, with real payload files.
//!
//! The shape follows a real Windows 11 sync (`shared/conformance/cbs/catalog-stats.json`): the
//! real category tree and GUIDs, detectoids in product → detectoid → update chains, bundles whose
//! hidden children carry the files, supersedence chains, CBS / OS installer / command line / MSI
//! handlers with their file types, and the heavy tail of Core fragment sizes. Generated documents
//! go through the same parser and fragment code as real ones.

pub mod categories;
mod plan;
mod render;
mod rng;

pub use categories::{REAL_CATEGORIES, RealCategory};
pub use plan::{GIANT_CORE_BYTES, GIANT_FROM_INDEX, Handler, Planned, Planner};
pub use render::{RenderedFile, render};

use crate::store::{IngestItem, IngestOptions, Store, StoreError};
use rng::Rng;
use std::io::Read;

const PURPOSE_PAYLOAD: u64 = 4;
/// Documents per ingest transaction.
const BATCH_DOCUMENTS: usize = 1000;

#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Revisions in the catalog after the run (including the real categories).
    pub updates: u64,
    pub seed: u64,
    pub languages: Vec<String>,
    /// Typical payload size; files vary from half to one and a half times it (UUP files more).
    pub payload_bytes: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SynthReport {
    pub revisions_in_plan: u64,
    pub revisions_added: u64,
    pub revisions_already_present: u64,
    pub files_written: u64,
    pub payload_bytes_written: u64,
    pub document_bytes: u64,
}

/// Deterministic payload bytes of a planned file.
struct PayloadReader {
    rng: Rng,
    left: u64,
}

impl Read for PayloadReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        self.rng.fill(&mut buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

fn progress_key(options: &SynthOptions) -> String {
    format!(
        "synth.progress.seed={}.languages={}.payload={}",
        options.seed,
        options.languages.join(","),
        options.payload_bytes
    )
}

/// Grows the store's synthetic catalog to `options.updates` revisions. Runs with the same seed,
/// languages and payload size extend what earlier runs wrote; `progress(done, total)`.
pub fn synthesize(
    store: &mut Store,
    options: &SynthOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SynthReport, StoreError> {
    let key = progress_key(options);
    let done: u64 =
        store.setting(&key)?.and_then(|v| v.parse().ok()).unwrap_or(0).min(options.updates);
    let mut report = SynthReport {
        revisions_in_plan: options.updates,
        revisions_already_present: done,
        ..Default::default()
    };
    let content = store.content().clone();
    let mut planner = Planner::new(options.seed, options.payload_bytes);
    for _ in 0..done {
        planner.next_item();
    }
    let (mut files_written, mut payload_bytes, mut document_bytes) = (0u64, 0u64, 0u64);
    let items = (done..options.updates).map(|_| {
        let planned = planner.next_item();
        let mut files = Vec::with_capacity(planned.files.len());
        for f in &planned.files {
            let ext = f.file_name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
            let reader = PayloadReader {
                rng: Rng::new(options.seed, PURPOSE_PAYLOAD, f.content_key),
                left: f.size,
            };
            let verified = content.store_by_content(ext, reader)?;
            files_written += 1;
            payload_bytes += verified.size;
            files.push(RenderedFile {
                file_name: f.file_name.clone(),
                size: f.size,
                sha1: verified.sha1,
                sha256: verified.sha256,
                patching_type: f.patching_type,
                preferred: f.preferred,
            });
        }
        let document = render(&planned, &files, &options.languages).into_bytes();
        document_bytes += document.len() as u64;
        let mut item = IngestItem::new(
            format!("synthetic item {} ({})", planned.index, planned.identity),
            document,
        );
        item.present_files = files.iter().map(|f| f.sha1).collect();
        Ok(item)
    });
    let mut before_commit = |batch: &mut dyn crate::store::IngestRows, in_run: u64| {
        batch.set_setting(&key, &(done + in_run).to_string())
    };
    let mut on_progress = |n: u64, _bytes: u64| progress(done + n, options.updates);
    let ingested = store.ingest_stream(
        Box::new(items),
        IngestOptions {
            commit_every: Some(BATCH_DOCUMENTS),
            progress: Some(&mut on_progress),
            before_commit: Some(&mut before_commit),
            on_document: None,
        },
    )?;
    report.revisions_added = ingested.added;
    report.revisions_already_present += ingested.unchanged;
    report.files_written = files_written;
    report.payload_bytes_written = payload_bytes;
    report.document_bytes = document_bytes;
    Ok(report)
}
