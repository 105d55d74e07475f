//! `ferry dev ...`: catalog generation and raw document loading for tests and benchmarks.

use super::output;
use anyhow::Context;
use ferry::store::StoreLocation;
use ferry::store::{IngestItem, IngestOptions, Store};
use ferry::synth::{SynthOptions, synthesize};
use ferry::units::{format_size, parse_size};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Write a generated, realistically shaped catalog with real payload files into --data.
    Synth(SynthArgs),
    /// Load full update documents (<upd:Update> XML) into the store, all in one transaction.
    Ingest(IngestArgs),
    /// Simulated Windows Update Agents doing full scans and downloads against a server.
    Loadgen(super::loadgen::Args),
}

#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Revisions the catalog holds afterwards (the real categories included). Running again
    /// with a larger number adds the difference.
    #[arg(long)]
    updates: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Languages of the localized properties, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "en")]
    languages: Vec<String>,
    /// Typical payload file size (files vary around it): bytes or 64KiB, 2MiB...
    #[arg(long, value_parser = parse_size, default_value = "16KiB")]
    payload_bytes: u64,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// Update documents.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(at: &StoreLocation, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Synth(a) => synth(at, a),
        Command::Ingest(a) => ingest(at, a),
        Command::Loadgen(a) => super::loadgen::run(a),
    }
}

fn synth(at: &StoreLocation, a: SynthArgs) -> anyhow::Result<()> {
    if a.languages.is_empty() || a.languages.iter().any(|l| l.is_empty()) {
        anyhow::bail!("--languages needs at least one language code, e.g. en,de");
    }
    let mut store = Store::open_or_create_at(at)?;
    let options = SynthOptions {
        updates: a.updates,
        seed: a.seed,
        languages: a.languages,
        payload_bytes: a.payload_bytes,
    };
    let bar = output::progress(a.updates, "generating", false);
    let started = std::time::Instant::now();
    let report = synthesize(&mut store, &options, &mut |done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    if a.json {
        return output::json(&report);
    }
    println!(
        "{} revisions in {}: {} added, {} already there; {} payload files written ({}), {} of metadata, in {:.1}s",
        report.revisions_in_plan,
        at,
        report.revisions_added,
        report.revisions_already_present,
        report.files_written,
        format_size(report.payload_bytes_written),
        format_size(report.document_bytes),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn ingest(at: &StoreLocation, a: IngestArgs) -> anyhow::Result<()> {
    // Refuse oversized files before reading anything (a 2 GB document would not fit in memory
    // comfortably and cannot be a real update document).
    for path in &a.files {
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if meta.len() > ferry::catalog::MAX_DOCUMENT_BYTES as u64 {
            anyhow::bail!(
                "{}: {} is larger than the {} an update document may have; nothing was stored",
                path.display(),
                format_size(meta.len()),
                format_size(ferry::catalog::MAX_DOCUMENT_BYTES as u64)
            );
        }
    }
    let mut store = Store::open_or_create_at(at)?;
    let items = a.files.iter().map(|path| {
        let document = std::fs::read(path).map_err(|e| ferry::store::StoreError::io(path, e))?;
        Ok(IngestItem::new(path.display().to_string(), document))
    });
    let bar = output::progress(a.files.len() as u64, "ingesting", false);
    let mut on_progress = |n: u64, _| bar.set_position(n);
    // One transaction: a bad document leaves the store exactly as it was.
    let report = store
        .ingest_stream(
            Box::new(items),
            IngestOptions { progress: Some(&mut on_progress), ..Default::default() },
        )
        .context("nothing was stored (the batch was rolled back)")?;
    bar.finish_and_clear();
    if a.json {
        return output::json(&report);
    }
    println!(
        "{} added, {} already stored ({} of update XML)",
        report.added,
        report.unchanged,
        format_size(report.document_bytes)
    );
    Ok(())
}
