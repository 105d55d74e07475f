//! `ferry export`: make the next bundle of a profile's channel from the cache store.

use super::keygen::read_password;
use super::output;
use anyhow::Context;
use ferry::bundle::export::{ExportOptions, export};
use ferry::bundle::minisign::SecretKey;
use ferry::bundle::profile::Profile;
use ferry::bundle::volumes::VolumeFormat;
use ferry::store::Store;
use ferry::units::{format_size, parse_duration_secs, parse_size};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Export profile (see manifests/*.toml).
    #[arg(long)]
    profile: PathBuf,
    /// Secret key (minisign format, from `ferry keygen`).
    #[arg(long)]
    key: PathBuf,
    /// Password of an encrypted secret key (first line of the file).
    #[arg(long, value_name = "F")]
    password_file: Option<PathBuf>,
    /// Where the bundle directory is written.
    #[arg(long)]
    out: PathBuf,
    /// The connected side's cache store.
    #[arg(long, default_value = "ferry-cache")]
    cache: PathBuf,
    /// Upstream to sync from (overrides the profile's).
    #[arg(long)]
    upstream: Option<String>,
    /// Package what the cache holds, without syncing first.
    #[arg(long)]
    no_sync: bool,
    /// Sync metadata only (no payload downloads).
    #[arg(long)]
    no_download: bool,
    /// Start a new full bundle instead of a delta.
    #[arg(long)]
    full: bool,
    /// Largest volume: bytes or 700MiB, 4GiB...
    #[arg(long, value_parser = parse_size, default_value = "4000MiB")]
    volume_size: u64,
    #[arg(long, value_enum, default_value = "tar")]
    format: Format,
    /// How long the bundle stays importable (90d, 12h); overrides the profile.
    #[arg(long, value_parser = parse_duration_secs)]
    expires: Option<u64>,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Tar,
    Zip,
}

pub fn load_secret_key(path: &std::path::Path, password_file: Option<&std::path::Path>) -> anyhow::Result<SecretKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the secret key {}", path.display()))?;
    let password = password_file.map(read_password).transpose()?;
    SecretKey::parse(&text, password.as_deref()).with_context(|| path.display().to_string())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let profile = Profile::load(&args.profile)?;
    let key = load_secret_key(&args.key, args.password_file.as_deref())?;
    if !args.no_sync {
        anyhow::bail!(
            "syncing from an upstream is not part of this build yet: sync the cache another way (e.g. `ferry dev synth --data {}`) and pass --no-sync",
            args.cache.display()
        );
    }
    let _ = args.no_download;
    let mut cache = Store::open(&args.cache).with_context(|| format!("the cache store {} (pass --cache)", args.cache.display()))?;
    let options = ExportOptions {
        full: args.full,
        volume_size: args.volume_size,
        format: match args.format {
            Format::Tar => VolumeFormat::Tar,
            Format::Zip => VolumeFormat::Zip,
        },
        expires_secs: args.expires,
        upstream_url: args.upstream.clone(),
        upstream_anchor: None,
    };
    let bar = output::progress(0, "packaging", true);
    let report = export(&mut cache, &profile, &key, &args.out, &options, &mut |stage, done, total| {
        bar.set_message(stage.to_string());
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let m = &report.manifest;
    if args.json {
        return output::json(&serde_json::json!({ "bundle": report.dir, "manifest": m }));
    }
    eprintln!(
        "{} bundle {} of channel {}{}: {} revisions ({} software updates), {} payload files, {} in {} volume(s), signed by key {}",
        if m.is_delta() { "delta" } else { "full" },
        m.sequence,
        m.channel,
        m.base_sequence.map(|b| format!(" on {b}")).unwrap_or_default(),
        m.summary.revisions,
        m.summary.software_updates,
        m.summary.payload_files,
        format_size(m.summary.total_bytes),
        m.volumes.len(),
        m.signer_key_id
    );
    println!("{}", report.dir.display());
    Ok(())
}
