//! `ferry serve`: the WSUS-compatible server.

use anyhow::Context;
use ferry::server::{Listeners, ServeOptions, TlsFiles};
use ferry::store::StoreLocation;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// HTTP address (WSUS's default port is 8530).
    #[arg(long, default_value = "0.0.0.0:8530", value_name = "ADDR")]
    listen: String,
    /// HTTPS address as well (WSUS uses 8531); needs --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    https_listen: Option<String>,
    /// PEM certificate chain for HTTPS.
    #[arg(long, value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// Base of the content URLs clients get (http://wsus.example:8530); by default the Host
    /// the client connected to.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Seconds a client may take to send a request (headers or body) or stay idle between
    /// requests on a kept-alive connection.
    #[arg(long, default_value_t = 45, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    client_timeout: u64,
    /// Serve connections from N event loops, each a thread with blocking threads of its own
    /// (nginx's model; about 15% less CPU per cached answer). By default one work-stealing
    /// runtime serves them, which keeps every connection moving when other work on the host
    /// takes a core away; use loops on a host that serves and does little else.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    event_loops: Option<u16>,
    /// Behind a load balancer: every connection starts with a PROXY protocol header (v1 or v2:
    /// HAProxy's send-proxy-v2, nginx's proxy_protocol) naming the client, whose address the
    /// per-client limits then use. Connections without one are refused, so let only the
    /// balancer reach this port.
    #[arg(long)]
    proxy_protocol: bool,
    /// This server's name in /metrics (the front_end label of every series), to tell apart the
    /// servers on one database (--database); by default hostname:port.
    #[arg(long, value_name = "NAME", value_parser = front_end_name)]
    name: Option<String>,
}

/// At most 128 printable characters.
fn front_end_name(name: &str) -> Result<String, String> {
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err("a name is 1 to 128 printable characters".into());
    }
    Ok(name.to_string())
}

pub fn run(at: &StoreLocation, args: Args) -> anyhow::Result<()> {
    let runtime = match args.event_loops {
        // This runtime only accepts, refreshes the snapshot and waits for the signal to stop:
        // the loops serve.
        Some(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("ferry-serve")
            .build(),
        // Blocking work is scans (CPU) and file reads: more threads than a few per core only
        // add memory (each may hold its own allocator arena).
        None => {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("ferry-serve")
                .max_blocking_threads(cores * 8)
                .build()
        }
    };
    runtime.context("starting the async runtime")?.block_on(serve(at, args))
}

async fn serve(at: &StoreLocation, args: Args) -> anyhow::Result<()> {
    // Opening reads the whole store, and a PostgreSQL client blocks: off the async threads.
    let (location, public_url) = (at.clone(), args.public_url.clone());
    let state = tokio::task::spawn_blocking(move || {
        ferry::server::open_state(&location, public_url.as_deref())
    })
    .await??;
    if let Some(name) = &args.name {
        state.name_front_end(name);
    }
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    let options = ServeOptions {
        listen: Some(args.listen),
        https_listen: args.https_listen,
        tls,
        client_timeout: std::time::Duration::from_secs(args.client_timeout),
        proxy_protocol: args.proxy_protocol,
        ..ServeOptions::default()
    };
    let options = match args.event_loops {
        Some(n) => ServeOptions { event_loops: n.into(), ..options },
        None => options,
    };
    let listeners = Listeners::bind(&options).await?;
    let catalog = state.catalog();
    let offered = catalog.revs.len();
    let files = catalog.files.values().filter(|f| f.present).count();
    drop(catalog);
    if let Some(a) = listeners.http_addr() {
        eprintln!("ferry serve: http://{a}/ (clients: WUServer=http://<this host>:{})", a.port());
    }
    if let Some(a) = listeners.https_addr() {
        eprintln!("ferry serve: https://{a}/");
    }
    eprintln!("ferry serve: {offered} revisions, {files} content files, store {at}");
    ferry::server::serve(state, listeners, shutdown_signal()).await?;
    eprintln!("ferry serve: stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
