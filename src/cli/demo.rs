//! `ferry demo`: the whole pipeline on a generated catalog, step by step, explaining each one.
//!
//! Connected side: an upstream standing in for Microsoft Update (a generated catalog served over
//! the WSUS server-server protocol on loopback), a signing key, `export` syncing from it into a
//! cache and writing a signed bundle. Isolated side: verify, import, approve the security
//! updates, serve Windows Update clients; a simulated client scans and downloads.

use super::output;
use anyhow::Context;
use ferry::admin::{Action, AdminService, Approve};
use ferry::bundle::export::{ExportOptions, ExportReport, export};
use ferry::bundle::import::{ImportOptions, import};
use ferry::bundle::minisign;
use ferry::bundle::profile::Profile;
use ferry::bundle::verify::verify;
use ferry::server::{Listeners, ServeOptions};
use ferry::store::{ALL_COMPUTERS, ApprovalState, Store, UpdateFilter};
use ferry::synth::{SynthOptions, synthesize};
use ferry::units::format_size;
use ferry::upstream::{DownloadOptions, SyncOptions, Transport, TransportOptions};
use std::path::PathBuf;

/// The profile the demo exports with (also shipped as manifests/windows11-security.toml).
const PROFILE: &str = include_str!("../../manifests/windows11-security.toml");

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Working directory (default: a new temporary directory, kept at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Revisions in the generated upstream catalog.
    #[arg(long, default_value_t = 3000)]
    updates: u64,
    /// Where the isolated side's server listens for Windows Update clients.
    #[arg(long, default_value = "127.0.0.1:8530", value_name = "ADDR")]
    listen: String,
    /// Stop once the server is up and a simulated client has scanned (for tests and scripts).
    #[arg(long)]
    exit_after_setup: bool,
}

/// A `ferry serve` running on a background runtime until dropped.
struct Running {
    url: String,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    fn start(data: &std::path::Path, listen: &str) -> anyhow::Result<Running> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("ferry-demo")
            .build()?;
        let state = ferry::server::open_state(&ferry::store::StoreLocation::sqlite(data), None)?;
        let listeners = runtime.block_on(Listeners::bind(&ServeOptions {
            listen: Some(listen.to_string()),
            ..Default::default()
        }))?;
        let addr = listeners.http_addr().context("the listener has an address")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(async move {
            if let Err(e) = ferry::server::serve(state, listeners, async {
                let _ = stopped.await;
            })
            .await
            {
                tracing::error!("the demo server stopped: {e}");
            }
        });
        Ok(Running { url: format!("http://{addr}"), runtime, stop: Some(stop) })
    }

    /// Serves until Ctrl-C.
    fn wait_for_interrupt(mut self) {
        self.runtime.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
        let _ = self.stop.take().map(|s| s.send(()));
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = match args.dir {
        Some(ref d) => d.clone(),
        None => tempfile::Builder::new().prefix("ferry-demo-").tempdir()?.keep(),
    };
    std::fs::create_dir_all(&dir)?;
    let isolated = dir.join("isolated/store");
    println!("ferry demo in {}\n", dir.display());
    let upstream = start_upstream(&dir.join("upstream/store"), args.updates)?;
    let pair = signing_key(&dir.join("connected/keys"))?;
    let exported =
        export_bundle(&dir.join("connected/cache"), &dir.join("media"), upstream, &pair)?;
    verify_bundle(&exported, &pair)?;
    let mut store = import_bundle(&isolated, &exported, &pair)?;
    approve_security_updates(&mut store)?;
    let token = store.new_admin_token()?;
    drop(store);
    serve(&args, &isolated, &exported, &token)
}

/// Step 1: an upstream standing in for Microsoft Update, serving a generated catalog.
fn start_upstream(upstream_dir: &std::path::Path, updates: u64) -> anyhow::Result<Running> {
    println!(
        "1. An upstream standing in for Microsoft Update: a generated catalog ({} revisions, real category GUIDs, payload files)",
        updates
    );
    let mut upstream_store = Store::open_or_create(upstream_dir)?;
    let options = SynthOptions {
        updates,
        seed: 1,
        languages: vec!["en".into(), "de".into()],
        payload_bytes: 64 << 10,
    };
    let bar = output::progress(updates, "generating", false);
    let report = synthesize(&mut upstream_store, &options, &mut |done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    drop(upstream_store);
    let upstream = Running::start(upstream_dir, "127.0.0.1:0")?;
    println!(
        "   {} revisions, {} payload files ({}), served over the WSUS server-server protocol at {}/ServerSyncWebService/ServerSyncWebService.asmx",
        report.revisions_added + report.revisions_already_present,
        report.files_written,
        format_size(report.payload_bytes_written),
        upstream.url
    );

    Ok(upstream)
}

/// Step 2: the export host's signing key.
fn signing_key(keys: &std::path::Path) -> anyhow::Result<minisign::KeyPair> {
    println!("2. A signing key (Ed25519, minisign format) for the export host");
    std::fs::create_dir_all(keys)?;
    let pair = minisign::generate();
    std::fs::write(keys.join("ferry.key"), pair.secret.to_file_text(None)?)?;
    std::fs::write(keys.join("ferry.pub"), pair.public.to_file_text())?;
    println!(
        "   key id {}: {} stays on the export host, {} goes to the isolated side",
        pair.public.key_id,
        keys.join("ferry.key").display(),
        keys.join("ferry.pub").display()
    );

    Ok(pair)
}

/// Step 3: sync the channel from the upstream into the cache, download, export a bundle.
fn export_bundle(
    cache_dir: &std::path::Path,
    media: &std::path::Path,
    upstream: Running,
    pair: &minisign::KeyPair,
) -> anyhow::Result<ExportReport> {
    println!(
        "3. Export, connected side: sync the channel windows11-security (Windows 11 security and critical updates) from the upstream into the cache"
    );
    let profile = Profile::parse(PROFILE, "manifests/windows11-security.toml")?;
    let mut cache = Store::open_or_create(cache_dir)?;
    let sync_options = SyncOptions {
        upstream: upstream.url.clone(),
        transport: TransportOptions::default(),
        parallel: 4,
    };
    let synced = ferry::upstream::sync(&mut cache, &profile, &sync_options, &mut |_| {})?;
    println!(
        "   {} category/detectoid and {} update revisions listed, {} fetched ({}) in {:.1} s",
        synced.config_revisions_listed,
        synced.update_revisions_listed,
        synced.revisions_fetched,
        format_size(synced.document_bytes),
        synced.seconds
    );
    let wanted = ferry::upstream::payloads_to_download(&cache, &profile, &upstream.url)?;
    let (count, bytes) = (wanted.len(), wanted.iter().map(|w| w.size).sum::<u64>());
    let transport = Transport::new(&TransportOptions::default())?;
    let downloaded = ferry::upstream::download(
        &mut cache,
        &transport,
        wanted,
        &DownloadOptions { parallel: 4 },
        &mut |_, _| {},
    )?;
    println!(
        "   {count} payload files downloaded ({}) in {:.1} s, each checked against its SHA-1 and SHA-256",
        format_size(bytes),
        downloaded.seconds
    );
    let exported = export(
        &mut cache,
        &profile,
        &pair.secret,
        media,
        &ExportOptions {
            volume_size: 4 << 20,
            upstream_url: Some(ferry::upstream::server_sync_url(&upstream.url)),
            upstream_anchor: Some(synced.anchor),
            ..Default::default()
        },
        &mut |_, _, _| {},
    )?;
    drop(upstream);
    let m = &exported.manifest;
    println!(
        "   bundle {}: {} revisions ({} updates), {} payload files, {} in {} volume(s) of at most 4 MiB, signed",
        exported.dir.display(),
        m.summary.revisions,
        m.summary.software_updates,
        m.summary.payload_files,
        format_size(m.summary.total_bytes),
        m.volumes.len()
    );

    Ok(exported)
}

/// Step 4: the isolated side verifies the bundle before loading anything.
fn verify_bundle(exported: &ExportReport, pair: &minisign::KeyPair) -> anyhow::Result<()> {
    println!(
        "4. Isolated side, before anything is loaded: verify the signature, the trust, the expiry and every byte"
    );
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

    Ok(())
}

/// Step 5: import into the isolated store, trusting the export host's key.
fn import_bundle(
    isolated: &std::path::Path,
    exported: &ExportReport,
    pair: &minisign::KeyPair,
) -> anyhow::Result<Store> {
    println!(
        "5. Import into the isolated store {} (one transaction: nothing is visible until everything checked out)",
        isolated.display()
    );
    let mut store = Store::open_or_create(isolated)?;
    store.add_trusted_key(
        &pair.public.key_id.to_string(),
        &pair.public.to_base64(),
        Some("demo export host"),
    )?;
    let imported =
        import(&mut store, &exported.dir, &[], &ImportOptions::default(), &mut |_, _, _| {})?;
    println!(
        "   {} revisions added, {} payload files in the content tree",
        imported.revisions_added, imported.files_added
    );

    Ok(store)
}

/// Step 6: approve the security updates for All Computers, with their prerequisites.
fn approve_security_updates(store: &mut Store) -> anyhow::Result<()> {
    println!("6. Approve the security updates for All Computers (as Approve-WsusUpdate would)");
    let filter = UpdateFilter {
        classification: Some("security".into()),
        approval: Some(ApprovalState::Unapproved),
        ..Default::default()
    };
    let ids: Vec<String> =
        store.list_updates(&filter)?.into_iter().map(|u| u.update_id.into()).collect();
    if ids.is_empty() {
        println!("   the generated catalog holds no security update: nothing approved");
    } else {
        let approved = AdminService::new(store).approve(&Approve {
            updates: &ids,
            group: ALL_COMPUTERS,
            action: Action::Install,
            deadline: None,
            admin: Some("ferry demo"),
            with_prerequisites: true,
        })?;
        println!(
            "   {} updates approved (and {} prerequisites they need); the rest are offered to clients for checking only, as on WSUS",
            approved.requested.len(),
            approved.prerequisites.len()
        );
    }
    Ok(())
}

/// Step 7: serve the isolated store, scan it with a simulated client, say how to point Windows
/// machines at it.
fn serve(
    args: &Args,
    isolated: &std::path::Path,
    exported: &ExportReport,
    token: &str,
) -> anyhow::Result<()> {
    println!("7. Serve Windows Update clients from the isolated store");
    let server = Running::start(isolated, &args.listen).with_context(|| {
        format!("starting the server on {} (choose another address with --listen)", args.listen)
    })?;
    println!("   listening on {}", server.url);
    let scan = ferry::loadgen::scan_once(&server.url)?;
    println!(
        "   a simulated {} scanned it: {} SyncUpdates calls, answers {} xpress-compressed ({} decoded); {} updates offered for install, {} of them applicable to it; {} downloaded with ranged GETs",
        scan.profile,
        scan.sync_calls,
        format_size(scan.answer_wire_bytes),
        format_size(scan.answer_bytes),
        scan.offered_for_install,
        scan.needed,
        format_size(scan.downloaded_bytes)
    );

    let host = args
        .listen
        .rsplit_once(':')
        .map(|(h, p)| (if h == "0.0.0.0" || h == "127.0.0.1" { "<this host>" } else { h }, p))
        .unwrap_or(("<this host>", "8530"));
    println!(
        "\nTo point a Windows machine at it (Group Policy: Windows Update > Specify intranet Microsoft update service location),"
    );
    println!(
        "or in the registry under HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate:"
    );
    println!("  WUServer       = http://{}:{}", host.0, host.1);
    println!("  WUStatusServer = http://{}:{}", host.0, host.1);
    println!("  AU\\UseWUServer = 1 (DWORD)");
    if args.listen.starts_with("127.") {
        println!(
            "(it listens on loopback; pass --listen 0.0.0.0:8530 to reach it from other machines)"
        );
    }
    println!("\nThe web console: {}/admin (log in with the admin token {token})", server.url);
    println!("\nWhat the isolated side holds, and what the simulated machine reported:");
    println!("  ferry --data {} status", isolated.display());
    println!("  ferry --data {} updates list --approval approved", isolated.display());
    println!("  ferry --data {} report", isolated.display());
    println!("  ferry inspect {} --html report.html", exported.dir.display());
    if args.exit_after_setup {
        return Ok(());
    }
    println!("\nServing until Ctrl-C.");
    server.wait_for_interrupt();
    Ok(())
}
