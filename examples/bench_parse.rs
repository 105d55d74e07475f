//! How fast SOAP requests parse: a SyncUpdates call with the cached ids of a client mid-scan.
//! `cargo run --release --example bench_parse [IDS | REQUEST-FILE]` (a file: a recorded request,
//! for example one of `ferry dev loadgen --record`'s).

use ferry::wsus::agent::{SyncRequest, sync_updates};
use ferry::wsus::client::WireCookie;
use std::time::Instant;

fn main() {
    let arg = std::env::args().nth(1);
    if let Some(body) = arg.as_deref().and_then(|a| std::fs::read(a).ok()) {
        return time_parse(&body);
    }
    let ids: usize = arg.and_then(|a| a.parse().ok()).unwrap_or(1500);
    let installed: Vec<i32> = (1..=300).collect();
    let cached: Vec<i32> = (1000..1000 + ids as i32).collect();
    let cookie =
        WireCookie { expiration: "2026-10-04T16:03:35.9967236Z".into(), data: Some(vec![7; 160]) };
    let body = sync_updates(
        &cookie,
        &SyncRequest {
            installed_non_leaf: &installed,
            other_cached: &cached,
            ..Default::default()
        },
    );
    let rounds = 2000;
    let started = Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        let r = ferry::wsus::soap::parse_request(body.as_bytes()).unwrap();
        let p = ferry::wsus::client::sync_parameters(&r.operation).unwrap();
        n += p.other_cached.len();
    }
    let per = started.elapsed() / rounds;
    println!(
        "{} ids, {} bytes: {:?} per request, {:.0} ns per id, {:.0} MB/s ({n})",
        ids + 300,
        body.len(),
        per,
        per.as_nanos() as f64 / (ids + 300) as f64,
        body.len() as f64 / per.as_secs_f64() / 1e6
    );
}

/// Parses a recorded request over and over.
fn time_parse(body: &[u8]) {
    let rounds = 20_000;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(ferry::wsus::soap::parse_request(body).unwrap());
    }
    let per = started.elapsed() / rounds;
    println!("{} bytes: {per:?} per request", body.len());
}
