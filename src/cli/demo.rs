//! `ferry demo`: the pipeline on a generated catalog, step by step, explaining each one.
//!
//! Connected side: a catalog shaped like Microsoft's in a cache store, a signing key, a signed
//! bundle. Isolated side: verify it, import it, check the store. The stages still to come
//! (syncing from a live upstream, serving clients) join here as they land.

use super::output;
use ferry::bundle::export::{ExportOptions, export};
use ferry::bundle::import::{ImportOptions, import};
use ferry::bundle::minisign;
use ferry::bundle::profile::Profile;
use ferry::bundle::verify::verify;
use ferry::store::Store;
use ferry::synth::{SynthOptions, synthesize};
use ferry::units::format_size;
use std::path::PathBuf;

/// The profile the demo exports with (also shipped as manifests/windows11-security.toml).
const PROFILE: &str = include_str!("../../manifests/windows11-security.toml");

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
    let cache_dir = dir.join("connected/cache");
    let media = dir.join("media");
    let isolated = dir.join("isolated/store");
    println!("ferry demo in {}\n", dir.display());

    println!(
        "1. Connected side: a catalog shaped like Microsoft's ({} revisions, real category GUIDs, payload files) in the cache store {}",
        args.updates,
        cache_dir.display()
    );
    let mut cache = Store::open_or_create(&cache_dir)?;
    let options = SynthOptions { updates: args.updates, seed: 1, languages: vec!["en".into(), "de".into()], payload_bytes: 64 << 10 };
    let bar = output::progress(args.updates, "generating", false);
    let report = synthesize(&mut cache, &options, &mut |done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    println!(
        "   {} revisions, {} payload files ({}), {} of update metadata",
        report.revisions_added + report.revisions_already_present,
        report.files_written,
        format_size(report.payload_bytes_written),
        format_size(report.document_bytes)
    );

    println!("2. A signing key (Ed25519, minisign format) for the export host");
    let keys = dir.join("connected/keys");
    std::fs::create_dir_all(&keys)?;
    let pair = minisign::generate();
    std::fs::write(keys.join("ferry.key"), pair.secret.to_file_text(None)?)?;
    std::fs::write(keys.join("ferry.pub"), pair.public.to_file_text())?;
    println!(
        "   key id {}: {} stays on the export host, {} goes to the isolated side",
        pair.public.key_id,
        keys.join("ferry.key").display(),
        keys.join("ferry.pub").display()
    );

    println!("3. Export: the channel windows11-security (security and critical updates for Windows 11) as a signed bundle on the media");
    let profile = Profile::parse(PROFILE, "manifests/windows11-security.toml")?;
    let exported = export(
        &mut cache,
        &profile,
        &pair.secret,
        &media,
        &ExportOptions { volume_size: 4 << 20, ..Default::default() },
        &mut |_, _, _| {},
    )?;
    let m = &exported.manifest;
    println!(
        "   {}: {} revisions ({} security and critical updates), {} payload files, {} in {} volume(s) of at most 4 MiB",
        exported.dir.display(),
        m.summary.revisions,
        m.summary.software_updates,
        m.summary.payload_files,
        format_size(m.summary.total_bytes),
        m.volumes.len()
    );

    println!("4. Isolated side, before anything is loaded: verify the signature, the trust, the expiry and every byte");
    let checked = verify(&exported.dir, std::slice::from_ref(&pair.public), &mut |_, _| {})?;
    if checked.exit_code() != 0 {
        for p in &checked.problems {
            println!("   PROBLEM {}", p.message);
        }
        anyhow::bail!("the bundle did not verify");
    }
    println!(
        "   OK: signed by key {}, {} volume(s) and {} member(s) match their hashes",
        pair.public.key_id, checked.volumes, checked.members
    );

    println!("5. Import into the isolated store {} (one transaction: nothing is visible until everything checked out)", isolated.display());
    let mut store = Store::open_or_create(&isolated)?;
    store.add_trusted_key(&pair.public.key_id.to_string(), &pair.public.to_base64(), Some("demo export host"))?;
    let imported = import(&mut store, &exported.dir, &[], &ImportOptions::default(), &mut |_, _, _| {})?;
    println!("   {} revisions added, {} payload files in the content tree", imported.revisions_added, imported.files_added);
    let again = import(&mut store, &exported.dir, &[], &ImportOptions::default(), &mut |_, _, _| {})?;
    println!("   importing the same bundle again: {}", again.outcome);

    println!("6. Check the isolated store deeply: every document re-parsed, every payload re-hashed");
    let check = store.check(true, &mut |_, _| {})?;
    anyhow::ensure!(check.is_clean(), "the imported store is not consistent: {:?}", check.problems);
    println!("   clean: {} revisions, {} files ({})", check.revisions_checked, check.files_checked, format_size(check.bytes_hashed));

    println!("\nWhat the isolated side holds now:");
    println!("  ferry --data {} status", isolated.display());
    println!("  ferry --data {} updates list", isolated.display());
    println!("  ferry inspect {} --html report.html", exported.dir.display());
    Ok(())
}
