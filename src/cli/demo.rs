//! `ferry demo`: the pipeline on a generated catalog, step by step, explaining each one.
//!
//! What exists today: generate a realistic catalog into a store, verify it deeply, and show what
//! it holds. Each later stage (upstream, export, verify, import, serve) joins here as it lands.

use super::output;
use ferry::store::{Store, UpdateFilter};
use ferry::synth::{SynthOptions, synthesize};
use ferry::units::format_size;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Working directory (default: a new temporary directory, kept at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Revisions in the generated catalog.
    #[arg(long, default_value_t = 3000)]
    updates: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = match args.dir {
        Some(d) => d,
        None => tempfile::Builder::new().prefix("ferry-demo-").tempdir()?.keep(),
    };
    std::fs::create_dir_all(&dir)?;
    let upstream = dir.join("upstream");
    println!("ferry demo in {}\n", dir.display());

    println!("1. Generate a catalog shaped like Microsoft's ({} revisions) into {}", args.updates, upstream.display());
    let mut store = Store::open_or_create(&upstream)?;
    let options = SynthOptions { updates: args.updates, seed: 1, languages: vec!["en".into(), "de".into()], payload_bytes: 16 << 10 };
    let bar = output::progress(args.updates, "generating", false);
    let report = synthesize(&mut store, &options, &mut |done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    println!(
        "   {} revisions added, {} payload files ({}), {} of update metadata",
        report.revisions_added,
        report.files_written,
        format_size(report.payload_bytes_written),
        format_size(report.document_bytes)
    );

    println!("2. Check the store deeply: every document re-parsed, every payload re-hashed (SHA-1 and SHA-256)");
    let check = store.check(true, &mut |_, _| {})?;
    if !check.is_clean() {
        for p in &check.problems {
            println!("   PROBLEM {}: {}", p.subject, p.problem);
        }
        anyhow::bail!("the generated store is not consistent");
    }
    println!("   clean: {} documents, {} files, {}", check.documents_reparsed, check.files_checked, format_size(check.bytes_hashed));

    println!("3. What it holds");
    let status = store.catalog_status()?;
    for (kind, n) in &status.by_type {
        println!("   {kind:<10} {n}");
    }
    let security = store.list_updates(&UpdateFilter {
        classification: Some("security".into()),
        product: Some("windows 11".into()),
        ..Default::default()
    })?;
    println!("   {} security updates for Windows 11, the newest:", security.len());
    for u in security.iter().take(3) {
        println!("     KB{}  {}", u.kb_article.as_deref().unwrap_or("-"), u.title.as_deref().unwrap_or(""));
    }
    println!("\nTry: ferry --data {} updates list --classification security", upstream.display());
    println!(
        "     ferry --data {} updates show KB{} --fragment core",
        upstream.display(),
        security.first().and_then(|u| u.kb_article.clone()).unwrap_or_default()
    );
    Ok(())
}
