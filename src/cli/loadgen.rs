//! `ferry dev loadgen`: simulated Windows Update Agents against a server.

use super::output;
use ferry::loadgen::{LoadOptions, LoadReport, MAX_SYNC_CALLS, Mode, Profile};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum ModeArg {
    /// Every scan is a new machine's first scan.
    First,
    /// Measured scans are repeat scans with a warm cache (each client's first scan is not counted).
    Repeat,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Server base URL. Give it again for each front end of one server (several `ferry serve`
    /// on one database): client i starts on the i-th and each scan moves on to the next.
    #[arg(long, default_value = "http://127.0.0.1:8530")]
    url: Vec<String>,
    /// Concurrent simulated clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, value_enum, default_value = "first")]
    mode: ModeArg,
    /// Machine profiles the clients take in turn (Windows 11, Windows 11 with Office, Windows 10, Server 2022).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=Profile::count() as u64))]
    profiles: u64,
    /// Skip the content downloads of approved updates.
    #[arg(long)]
    no_download: bool,
    /// Record one first and one repeat scan per profile into DIR/answers/ (for a static web
    /// server), instead of generating load.
    #[arg(long, value_name = "DIR", conflicts_with = "static_answers")]
    record: Option<PathBuf>,
    /// The URL is a static web server holding answers recorded with --record.
    #[arg(long)]
    static_answers: bool,
    /// Ask for xpress-compressed answers (Accept-Encoding: xpress), as real agents do.
    #[arg(long, conflicts_with = "static_answers")]
    xpress: bool,
    /// Instead of generating load, one first scan by a machine every update applies to: prints
    /// its SyncUpdates calls (WUA gives up after 200), its largest page and answer.
    #[arg(long, conflicts_with_all = ["record", "static_answers"])]
    once: bool,
    /// With --once: SyncUpdates calls of the software pass before the scan gives up; above 200
    /// only to measure what a scan would need where WUA gives up.
    #[arg(long, default_value_t = MAX_SYNC_CALLS as u64, requires = "once", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_sync_calls: u64,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if let Some(dir) = &a.record {
        let n = ferry::loadgen::record(first_url(&a)?, a.profiles as usize, dir)?;
        eprintln!("recorded {n} answers into {}", dir.join("answers").display());
        return Ok(());
    }
    if a.once {
        let scan = ferry::loadgen::scan_once_within(first_url(&a)?, a.max_sync_calls as usize)?;
        if a.json {
            return output::json(&scan);
        }
        println!(
            "a {} scanned {}: {} SyncUpdates calls (WUA gives up after {MAX_SYNC_CALLS}) brought {} updates; largest page {} updates, largest answer {} bytes, {} bytes in all; {} offered for install",
            scan.profile,
            a.url[0],
            scan.sync_calls,
            scan.new_updates,
            scan.largest_page,
            scan.largest_answer_bytes,
            scan.sync_answer_bytes,
            scan.offered_for_install
        );
        return Ok(());
    }
    if !(a.duration > 0.0 && a.duration.is_finite()) {
        anyhow::bail!("--duration must be a positive number of seconds");
    }
    let options = LoadOptions {
        urls: a.url,
        clients: a.clients.max(1),
        duration: Duration::from_secs_f64(a.duration),
        mode: match a.mode {
            ModeArg::First => Mode::First,
            ModeArg::Repeat => Mode::Repeat,
        },
        profiles: a.profiles as usize,
        download: !a.no_download,
        static_answers: a.static_answers,
        threads: a.threads,
        xpress: a.xpress,
    };
    let report = ferry::loadgen::run(&options)?;
    if a.json {
        return output::json(&report);
    }
    print_report(&report);
    Ok(())
}

/// The one server `--record` and `--once` talk to.
fn first_url(a: &Args) -> anyhow::Result<&str> {
    match a.url.as_slice() {
        [url] => Ok(url),
        _ => anyhow::bail!("--record and --once talk to one server: give one --url"),
    }
}

fn print_report(r: &LoadReport) {
    println!(
        "{} clients, {:?} scans, {:.1} s: {} scans ({:.1}/s), {} failed; {} requests ({:.0}/s), {} errors; {} events reported; {:.1} SyncUpdates per scan; answers {:.0} KiB per scan on the wire ({:.0} KiB decoded); content {:.1} MiB/s",
        r.clients,
        r.mode,
        r.seconds,
        r.scans,
        r.scans_per_second,
        r.failed_scans,
        r.requests,
        r.requests_per_second,
        r.errors,
        r.events_reported,
        r.sync_pages_per_scan,
        r.answer_wire_bytes_per_scan / 1024.0,
        r.answer_bytes_per_scan / 1024.0,
        r.content_mib_per_second
    );
    let rows: Vec<Vec<String>> = r
        .operations
        .iter()
        .map(|o| {
            vec![
                o.operation.clone(),
                o.count.to_string(),
                format!("{:.0}", o.per_second),
                format!("{:.2}", o.p50_ms),
                format!("{:.2}", o.p99_ms),
                format!("{:.2}", o.max_ms),
                o.errors.to_string(),
            ]
        })
        .collect();
    output::table(&["OPERATION", "COUNT", "PER S", "P50 MS", "P99 MS", "MAX MS", "ERRORS"], &rows);
    for e in &r.error_samples {
        println!("error: {e}");
    }
}
