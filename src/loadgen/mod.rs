//! `ferry dev loadgen`: many simulated Windows Update Agents against a server, each making the
//! native client's calls (`scan.rs`) as a machine of some profile (`machine.rs`). Reports scans
//! per second and per-operation latency. It can also record the answers, so that a plain web
//! server can serve them as static files and the same load can be replayed against it.

mod http;
mod machine;
mod scan;
mod stats;

pub use machine::Profile;
pub use scan::{MAX_SYNC_CALLS, ScanError};
pub use stats::OperationReport;

use scan::{Agent, Target};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every scan is a new machine's first scan (handshake, all pages, extended info, report, downloads).
    First,
    /// Each client makes its first scan once, then measured scans with a warm cache.
    Repeat,
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `http://host:port[/prefix]`: one server, or several front ends of one (on one
    /// database). With several, client *i* starts on the *i*-th and each scan moves on to the
    /// next, as behind a load balancer without affinity.
    pub urls: Vec<String>,
    pub clients: usize,
    pub duration: Duration,
    pub mode: Mode,
    /// Machine profiles the clients take in turn.
    pub profiles: usize,
    pub download: bool,
    /// The URL serves answers recorded with `record` (GET `<prefix>/answers/<key>.xml`).
    pub static_answers: bool,
    pub threads: usize,
    /// Ask the server for xpress-compressed answers, as real agents do.
    pub xpress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("--url {0}")]
    Url(String),
    #[error("recording into {}: {source}", path.display())]
    Record { path: PathBuf, source: std::io::Error },
    #[error("a scan as {profile}: {source}")]
    RecordScan { profile: String, source: ScanError },
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The servers' URLs, comma-separated.
    pub url: String,
    pub mode: Mode,
    pub clients: usize,
    pub profiles: Vec<String>,
    pub seconds: f64,
    pub scans: u64,
    pub scans_per_second: f64,
    pub failed_scans: u64,
    pub requests: u64,
    pub requests_per_second: f64,
    pub errors: u64,
    pub sync_pages_per_scan: f64,
    pub content_mib_per_second: f64,
    /// SOAP answer bytes per scan as they came over the wire (compressed with `--xpress`), and
    /// decoded.
    pub answer_wire_bytes_per_scan: f64,
    pub answer_bytes_per_scan: f64,
    /// Events in the ReportEventBatch calls the servers accepted: what they must have kept.
    pub events_reported: u64,
    pub operations: Vec<OperationReport>,
    /// The first few distinct scan errors, to say what went wrong.
    pub error_samples: Vec<String>,
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, LoadError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(LoadError::Runtime)
}

/// Runs the load for the given duration.
pub fn run(options: &LoadOptions) -> Result<LoadReport, LoadError> {
    let servers: Vec<(String, String)> = options
        .urls
        .iter()
        .map(|u| http::split_url(u))
        .collect::<Result<_, _>>()
        .map_err(LoadError::Url)?;
    if servers.is_empty() {
        return Err(LoadError::Url("no server URL given".into()));
    }
    let profiles = Profile::first(options.profiles);
    let rt = runtime(options.threads)?;
    let target = if options.static_answers {
        Target::Static
    } else {
        Target::Server { xpress: options.xpress }
    };
    let (stats, seconds, samples) = rt.block_on(async {
        let started = Instant::now();
        let deadline = started + options.duration;
        let (profiles, servers) = (std::sync::Arc::new(profiles), std::sync::Arc::new(servers));
        let mut tasks = tokio::task::JoinSet::new();
        for client in 0..options.clients.max(1) {
            let (target, profiles, servers) = (target.clone(), profiles.clone(), servers.clone());
            let (mode, download) = (options.mode, options.download);
            tasks.spawn(async move {
                let profile = &profiles[client % profiles.len()];
                let client = Client { number: client, servers: &servers, mode, deadline };
                client.run(Agent::new("", "", target, None, download, profile)).await
            });
        }
        let mut all = stats::Stats::default();
        let mut samples: Vec<String> = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok((s, errors)) = done {
                all.merge(s);
                for e in errors {
                    if samples.len() < 5 && !samples.contains(&e) {
                        samples.push(e);
                    }
                }
            }
        }
        (all, started.elapsed().as_secs_f64(), samples)
    });
    let mut stats = stats;
    let operations = stats.operations(seconds);
    let per_scan = |n: u64| {
        if stats.scans > 0 { n as f64 / (stats.scans + stats.failed_scans) as f64 } else { 0.0 }
    };
    Ok(LoadReport {
        url: options.urls.join(","),
        mode: options.mode,
        clients: options.clients,
        profiles: Profile::first(options.profiles).iter().map(|p| p.name.to_string()).collect(),
        seconds,
        scans: stats.scans,
        scans_per_second: stats.scans as f64 / seconds,
        failed_scans: stats.failed_scans,
        requests: stats.requests(),
        requests_per_second: stats.requests() as f64 / seconds,
        errors: stats.errors(),
        sync_pages_per_scan: per_scan(stats.sync_pages),
        content_mib_per_second: stats.content_bytes as f64 / (1 << 20) as f64 / seconds,
        answer_wire_bytes_per_scan: per_scan(stats.answer_wire_bytes),
        answer_bytes_per_scan: per_scan(stats.answer_bytes),
        events_reported: stats.events_reported,
        operations,
        error_samples: samples,
    })
}

/// One simulated client's loop: scans until the deadline, each on the next server.
struct Client<'a> {
    number: usize,
    servers: &'a [(String, String)],
    mode: Mode,
    deadline: Instant,
}

impl Client<'_> {
    /// Scans until the deadline; returns what it measured and its first few errors.
    async fn run(&self, mut agent: Agent<'_>) -> (stats::Stats, Vec<String>) {
        let mut errors: Vec<String> = Vec::new();
        // Warm: the last scan succeeded, so the next is a repeat scan. Measured: the first warm
        // up is behind (later ones, after a failure, are measured like the rest).
        let (mut warm, mut measured) = (false, false);
        let mut turn = self.number;
        while Instant::now() < self.deadline {
            let (authority, prefix) = &self.servers[turn % self.servers.len()];
            agent.move_to(authority, prefix);
            turn += 1;
            let result = match (self.mode, warm) {
                (Mode::Repeat, true) => agent.repeat_scan().await,
                _ => agent.first_scan().await,
            };
            match result {
                Ok(()) => {
                    if self.mode == Mode::Repeat && !measured {
                        // The first scan warms the cache; it is not what is measured (but the
                        // events it reported were reported).
                        measured = true;
                        let events_reported = agent.stats.events_reported;
                        agent.stats = stats::Stats::default();
                        agent.stats.events_reported = events_reported;
                    }
                    warm = true;
                }
                Err(e) => {
                    agent.stats.failed_scans += 1;
                    warm = false;
                    if errors.len() < 3 {
                        errors.push(e.to_string());
                    }
                    // Do not spin on a server that refuses everything.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        (agent.stats, errors)
    }
}

/// Plays one first scan and one repeat scan per profile against the server and writes every
/// answer to `dir/answers/`, for a static web server to serve (`static_answers`).
pub fn record(url: &str, profiles: usize, dir: &std::path::Path) -> Result<usize, LoadError> {
    let (authority, prefix) = http::split_url(url).map_err(LoadError::Url)?;
    let answers = dir.join("answers");
    std::fs::create_dir_all(&answers)
        .map_err(|source| LoadError::Record { path: answers.clone(), source })?;
    let rt = runtime(1)?;
    let profiles = Profile::first(profiles);
    rt.block_on(async {
        for p in &profiles {
            let mut agent = Agent::new(
                &authority,
                &prefix,
                Target::Server { xpress: false },
                Some(dir.to_path_buf()),
                false,
                p,
            );
            agent
                .first_scan()
                .await
                .map_err(|source| LoadError::RecordScan { profile: p.name.to_string(), source })?;
            agent
                .repeat_scan()
                .await
                .map_err(|source| LoadError::RecordScan { profile: p.name.to_string(), source })?;
        }
        Ok::<(), LoadError>(())
    })?;
    let entries = std::fs::read_dir(&answers)
        .map_err(|source| LoadError::Record { path: answers.clone(), source })?;
    let n = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "xml"))
        .count();
    Ok(n)
}

/// What one simulated client saw in one first scan.
#[derive(Debug, Clone, Serialize)]
pub struct ScanSummary {
    pub profile: String,
    pub sync_calls: u64,
    /// NewUpdates received in all SyncUpdates answers.
    pub new_updates: u64,
    /// The most new updates one SyncUpdates answer carried.
    pub largest_page: usize,
    /// The largest SyncUpdates answer body, in bytes (plain, not compressed).
    pub largest_answer_bytes: usize,
    /// All SyncUpdates answer bodies together, in bytes.
    pub sync_answer_bytes: u64,
    pub offered_for_install: usize,
    /// Of those, the ones the machine's evaluation found it needs.
    pub needed: usize,
    pub downloaded_bytes: u64,
    /// SOAP answer bytes as they came (xpress-compressed), and decoded.
    pub answer_wire_bytes: u64,
    pub answer_bytes: u64,
}

/// One simulated machine that every update applies to makes a first scan against `url` and
/// downloads what is approved for it; the scan fails where WUA's would, after
/// `MAX_SYNC_CALLS` SyncUpdates calls.
pub fn scan_once(url: &str) -> Result<ScanSummary, LoadError> {
    scan_once_within(url, MAX_SYNC_CALLS)
}

/// `scan_once` with another limit of SyncUpdates calls: to measure how many calls a scan needs
/// where WUA would give up.
pub fn scan_once_within(url: &str, max_sync_calls: usize) -> Result<ScanSummary, LoadError> {
    let (authority, prefix) = http::split_url(url).map_err(LoadError::Url)?;
    let profiles = [Profile::everything()];
    let rt = runtime(1)?;
    rt.block_on(async {
        let mut agent = Agent::new(
            &authority,
            &prefix,
            Target::Server { xpress: true },
            None,
            true,
            &profiles[0],
        );
        agent.max_sync_calls = max_sync_calls;
        agent.first_scan().await.map_err(|source| LoadError::RecordScan {
            profile: profiles[0].name.to_string(),
            source,
        })?;
        Ok(ScanSummary {
            profile: profiles[0].name.to_string(),
            sync_calls: agent.stats.sync_pages,
            new_updates: agent.stats.sync_updates,
            largest_page: agent.stats.largest_sync_page,
            largest_answer_bytes: agent.stats.largest_sync_answer,
            sync_answer_bytes: agent.stats.sync_answer_bytes,
            offered_for_install: agent.offered_for_install(),
            needed: agent.needed_for_install(),
            downloaded_bytes: agent.stats.content_bytes,
            answer_wire_bytes: agent.stats.answer_wire_bytes,
            answer_bytes: agent.stats.answer_bytes,
        })
    })
}
