//! `ferry export`: make the next bundle of a profile's channel from the cache store.

use super::keygen::read_password;
use super::output;
use anyhow::Context;
use ferry::bundle::export::{DryRun, ExportOptions, ExportReport, PendingChoice, export};
use ferry::bundle::minisign::SecretKey;
use ferry::bundle::profile::Profile;
use ferry::bundle::volumes::VolumeFormat;
use ferry::store::postgres::DatabaseUrl;
use ferry::store::{Store, StoreLocation};
use ferry::units::{format_size, parse_duration_secs, parse_size};
use ferry::upstream::{
    DownloadOptions, SyncOptions, SyncProgress, SyncReport, Transport, TransportOptions,
};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Export profile (see manifests/*.toml).
    #[arg(long)]
    profile: PathBuf,
    /// Secret key (minisign format, from `ferry keygen`).
    #[arg(long, required_unless_present = "dry_run")]
    key: Option<PathBuf>,
    /// Password of an encrypted secret key (first line of the file).
    #[arg(long, value_name = "F")]
    password_file: Option<PathBuf>,
    /// Where the bundle directory is written.
    #[arg(long, required_unless_present = "dry_run")]
    out: Option<PathBuf>,
    /// The connected side's cache store (with --database, its database is that one and this
    /// directory holds only its content tree).
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
    /// Extra trusted root certificates (PEM) for the upstream, beside the system's.
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// HTTP proxy for the upstream (http://proxy:3128); by default HTTPS_PROXY / HTTP_PROXY / NO_PROXY.
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,
    /// Metadata batches and payload downloads in flight.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=32))]
    parallel: u64,
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
    /// An earlier export of the channel stopped and its bundle is not where it was written: it
    /// was complete and went to the isolated side, so it counts.
    #[arg(long, conflicts_with = "forget_pending")]
    confirm_pending: bool,
    /// An earlier export of the channel stopped and its bundle is not where it was written: it
    /// never left, so it is written again.
    #[arg(long)]
    forget_pending: bool,
    /// Say what the next bundle would hold (updates, payload files and bytes, volumes, and what
    /// each profile setting leaves behind) without writing anything. Syncs metadata first unless
    /// --no-sync; downloads nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Tar,
    Zip,
}

pub fn load_secret_key(
    path: &std::path::Path,
    password_file: Option<&std::path::Path>,
) -> anyhow::Result<SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the secret key {}", path.display()))?;
    let password = password_file.map(read_password).transpose()?;
    SecretKey::parse(&text, password.as_deref()).with_context(|| path.display().to_string())
}

/// Exports from the cache store in `--cache`, on `database` when one is given.
pub fn run(database: Option<DatabaseUrl>, args: Args) -> anyhow::Result<()> {
    let profile = Profile::load(&args.profile)?;
    // Read before syncing: a wrong key or password stops the export before any network work.
    let key = match (&args.key, args.dry_run) {
        (Some(path), false) => Some(load_secret_key(path, args.password_file.as_deref())?),
        _ => None,
    };
    let upstream = args.upstream.clone().or_else(|| profile.upstream.clone());
    let cache_at = StoreLocation::new(args.cache.clone(), database);
    let (mut cache, upstream_anchor) =
        open_and_sync(&cache_at, &args, &profile, upstream.as_deref())?;
    // Without a sync, the languages are checked against what the last upstream offered (a sync
    // checked them against what the upstream offers now).
    if args.no_sync {
        let offered: Vec<String> = ferry::upstream::stored_offered_languages(&cache)?
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        profile.check_languages(&offered, "the upstream this cache last synced from")?;
    }
    let options = ExportOptions {
        full: args.full,
        volume_size: args.volume_size,
        format: match args.format {
            Format::Tar => VolumeFormat::Tar,
            Format::Zip => VolumeFormat::Zip,
        },
        expires_secs: args.expires,
        upstream_url: if args.no_sync {
            args.upstream.clone()
        } else {
            upstream.map(|u| ferry::upstream::server_sync_url(&u))
        },
        upstream_anchor,
        pending: match (args.confirm_pending, args.forget_pending) {
            (true, _) => PendingChoice::Carried,
            (_, true) => PendingChoice::Lost,
            _ => PendingChoice::Ask,
        },
    };
    if args.dry_run {
        let plan = ferry::bundle::export::dry_run(&cache, &profile, &options)?;
        return print_dry_run(&plan, &profile, args.json);
    }
    let bar = output::progress(0, "packaging", true);
    let (Some(key), Some(out)) = (&key, &args.out) else {
        anyhow::bail!("--key and --out are needed to write a bundle")
    };
    let report = export(&mut cache, &profile, key, out, &options, &mut |stage, done, total| {
        bar.set_message(stage.to_string());
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    print_report(&report, args.json)
}

/// The cache store, synced from the upstream (and its payloads downloaded) unless `--no-sync`;
/// with the anchor the sync reached.
fn open_and_sync(
    cache_at: &StoreLocation,
    args: &Args,
    profile: &Profile,
    upstream: Option<&str>,
) -> anyhow::Result<(Store, Option<String>)> {
    if args.no_sync {
        let cache = Store::open_at(cache_at)
            .with_context(|| format!("the cache store {cache_at} (pass --cache)"))?;
        return Ok((cache, None));
    }
    let upstream = upstream.with_context(|| {
        format!(
            "no upstream: set `upstream` in {} or pass --upstream URL (or --no-sync)",
            args.profile.display()
        )
    })?;
    let mut cache = Store::open_or_create_at(cache_at)?;
    let transport = TransportOptions {
        ca_cert: args.ca_cert.clone(),
        proxy: args.proxy.clone(),
        ..Default::default()
    };
    let report = sync_from(&mut cache, profile, upstream, &transport, args.parallel as usize)?;
    if !args.no_download && !args.dry_run {
        download_payloads(&mut cache, profile, upstream, &transport, args.parallel as usize)?;
    }
    Ok((cache, Some(report.anchor)))
}

fn print_report(report: &ExportReport, json: bool) -> anyhow::Result<()> {
    let m = &report.manifest;
    if json {
        return output::json(
            &serde_json::json!({ "bundle": report.dir, "manifest": m, "notes": report.notes }),
        );
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

fn print_dry_run(plan: &DryRun, profile: &Profile, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(plan);
    }
    let counts = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    };
    let base = plan.base_sequence.map(|b| format!(" on {b}")).unwrap_or_default();
    println!(
        "next bundle of channel {}: {} {}{base} (dry run: nothing written)",
        plan.channel, plan.kind, plan.sequence
    );
    println!("  updates        {} ({})", plan.updates, counts(&plan.by_classification));
    println!("  products       {}", counts(&plan.by_product));
    println!("  revisions      {} (metadata {})", plan.revisions, format_size(plan.metadata_bytes));
    let missing = match plan.payload_files_missing {
        0 => String::new(),
        n => format!("; {n} not in the cache yet, the export downloads them"),
    };
    println!(
        "  payload files  {}, {}{missing}",
        plan.payload_files,
        format_size(plan.payload_bytes)
    );
    let sizes: Vec<String> = plan.volume_bytes.iter().map(|b| format_size(*b)).collect();
    println!(
        "  volumes        {} of at most {}: {} ({})",
        plan.volumes,
        format_size(plan.volume_size),
        format_size(plan.total_bytes),
        sizes.join(", ")
    );
    println!("  removed        {} update(s)", plan.removed);
    if profile.published.any() {
        println!("  published      {} update(s) published here", plan.published);
    }
    let languages: Vec<String> = profile.languages.iter().map(ToString::to_string).collect();
    let left = &plan.left_behind;
    println!("  left behind");
    for (setting, value, l) in [
        ("languages", format!("[{}]", languages.join(", ")), left.languages),
        ("express", profile.express.to_string(), left.express),
        ("include_superseded", profile.include_superseded.to_string(), left.superseded),
        ("payloads", profile.payloads.as_str().to_string(), left.payloads),
    ] {
        println!(
            "    {:<28} {} update(s), {} file(s), {}",
            format!("{setting} = {value}"),
            l.updates,
            l.files,
            format_size(l.bytes)
        );
    }
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    Ok(())
}

fn sync_from(
    cache: &mut Store,
    profile: &Profile,
    upstream: &str,
    transport: &TransportOptions,
    parallel: usize,
) -> anyhow::Result<SyncReport> {
    let bar = output::progress(0, "syncing", false);
    let options =
        SyncOptions { upstream: upstream.to_string(), transport: transport.clone(), parallel };
    let report = ferry::upstream::sync(cache, profile, &options, &mut |p| match p {
        SyncProgress::Listing(what) => bar.set_message(format!("listing {what}")),
        SyncProgress::Fetching(done, total) => {
            bar.set_message("fetching update metadata".to_string());
            bar.set_length(total);
            bar.set_position(done);
        }
    })
    .with_context(|| {
        format!("syncing from {upstream} (what was synced is kept; run again to continue)")
    })?;
    bar.finish_and_clear();
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    eprintln!(
        "synced from {}: {} category/detectoid and {} update revisions listed, {} new ({}) in {:.1} s",
        report.upstream,
        report.config_revisions_listed,
        report.update_revisions_listed,
        report.revisions_fetched,
        format_size(report.document_bytes),
        report.seconds
    );
    Ok(report)
}

fn download_payloads(
    cache: &mut Store,
    profile: &Profile,
    upstream: &str,
    transport: &TransportOptions,
    parallel: usize,
) -> anyhow::Result<()> {
    let wanted = ferry::upstream::payloads_to_download(cache, profile, upstream)?;
    if wanted.is_empty() {
        return Ok(());
    }
    let total: u64 = wanted.iter().map(|w| w.size).sum();
    let files = wanted.len();
    let bar = output::progress(total, "downloading", true);
    let transport = Transport::new(transport)?;
    let report = ferry::upstream::download(
        cache,
        &transport,
        wanted,
        &DownloadOptions { parallel },
        &mut |done, _| bar.set_position(done),
    )
    .context("downloading payloads (files that arrived are kept; run again to resume)")?;
    bar.finish_and_clear();
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    eprintln!(
        "downloaded {files} payload file(s), {} in {:.1} s ({}/s){}",
        format_size(total),
        report.seconds,
        format_size((total as f64 / report.seconds.max(0.001)) as u64),
        if report.resumed_bytes > 0 {
            format!(", {} resumed from an earlier run", format_size(report.resumed_bytes))
        } else {
            String::new()
        }
    );
    Ok(())
}
