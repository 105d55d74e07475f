//! The chaos test CI runs: `ferry serve` under `ferry dev loadgen` while another client aborts
//! downloads, sends garbage, holds idle connections and asks for multi-range answers it never
//! reads. The server must stay up, answer /healthz within 100 ms throughout, keep its memory and
//! its /metrics bounded, and the simulated agents must see no errors.
//!
//! Every check is evaluated before the test fails, so one run names every problem with its
//! figures (run with `--nocapture` to see them on success too).

use crate::served::{CLIENT, CLIENT_NS, Served};
use crate::util::{ferry, stdout_of};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long the abuse lasts. The agents run as long, plus the scan each is in when time is up.
const ABUSE: Duration = Duration::from_secs(25);
/// Simulated agents making first scans with downloads. Each waits for its answers, so this is
/// a bounded load that keeps a 2-core machine busy beside the abuse without swamping it.
const AGENTS: usize = 4;
/// How much longer than ABUSE the load generator may take before it counts as hung.
const LOADGEN_GRACE: Duration = Duration::from_secs(30);
const IDLE_CONNECTIONS: usize = 300;
const UNREAD_MULTIRANGE: usize = 10;
/// 16 parts of 4,000,000 bytes: 64,000,000 bytes, within the 16 parts and 64 MiB that the server
/// answers with multipart/byteranges (beyond either it sends the whole file).
const PARTS: u64 = 16;
const PART_BYTES: u64 = 4_000_000;
const DISTINCT_OPERATIONS: usize = 5_000;
/// The distinct operation names go out in the first 30% of the abuse; /metrics is read right after.
const FLOOD_SHARE: f64 = 0.3;
/// The XML that is expensive to parse naively goes out from 40% of the abuse on, after /metrics
/// was read, so that a server stalled by it still yields the other checks' figures.
const HEAVY_FROM: f64 = 0.4;
/// Each garbage sender sends every case once per round, waiting this long at most for each answer
/// (a correct server answers every case within milliseconds to a second).
const GARBAGE_ROUND: Duration = Duration::from_secs(2);
const GARBAGE_WAIT: Duration = Duration::from_secs(5);
const HEALTH_EVERY: Duration = Duration::from_millis(50);
const HEALTH_BUDGET: Duration = Duration::from_millis(100);
/// A probe with no answer by then counts as failed, with this as its latency.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
const RSS_EVERY: Duration = Duration::from_millis(100);

/// Anonymous memory (heap, stacks) the server may add to what it holds after startup:
/// ANON_BASE plus ANON_PER_SENDER for each garbage sender (256 MiB with the 2 senders of a
/// 2-core machine).
///
/// What a correct server holds beyond its startup state during this test:
/// - caches bounded by this catalog and its clients: large Core fragments, offers per group set
///   (200 revisions, 2.5 MB of metadata) and a few thousand computers the agents register: a few MB;
/// - store connections: at most 16 pooled, the writer's and the refresher's, each caching at most
///   what it reads of a database of a few MB: under 64 MB;
/// - per connection, hyper's buffers and a task: ~320 connections at 8-64 KiB, under 20 MB (a read
///   buffer grows to the 1 MiB limit only while a huge header arrives);
/// - the agents' requests in flight: 4, small;
/// - payloads, multi-range answers included, come from file mappings when streamed, so they are
///   resident as file pages (RssFile, bounded separately by the content tree), not anonymous memory;
/// - allocator slack of the 2 worker and at most 16 blocking threads;
///
/// which ANON_BASE covers; and per garbage sender one request at a time: at most 3.8 MB of body
/// and, if it is parsed at all, a tree of 100,000 elements and as many namespace scopes (~35 MB),
/// which ANON_PER_SENDER covers. Today's server, without the unread multi-range requests, peaks
/// at 30-60 MiB here. A server that assembles the ten unread 64 MB multi-range answers in memory
/// needs 640 MB more.
const ANON_BASE: u64 = 160 << 20;
const ANON_PER_SENDER: u64 = 48 << 20;

/// /metrics may hold per-operation series only for the operations the services offer (about 30,
/// each ~15 lines of ~80 bytes: ~36 KB) and a few gauges; unknown names must not add series.
const METRICS_LIMIT: usize = 64 << 10;

#[test]
fn the_server_stays_up_and_responsive_under_load_and_abuse() {
    let store = store();
    let mut server = Served::start(&store.data, &[]);
    let addr: SocketAddr = server.addr.parse().unwrap();
    let pid = server.pid();
    let startup = memory(pid).expect("the server's /proc/<pid>/status");
    let big: Vec<(String, u64)> =
        store.payloads.iter().filter(|p| p.1 >= 2 * PART_BYTES).take(5).cloned().collect();
    assert!(
        !big.is_empty(),
        "the store has payloads of at least {} bytes for the multi-range requests",
        2 * PART_BYTES
    );
    let mut report = vec![format!(
        "store: {} payload files, {:.0} MiB, largest {:.1} MB; server startup: VmRSS {}, RssAnon {}, RssFile {}",
        store.payloads.len(),
        store.content_bytes as f64 / (1 << 20) as f64,
        store.payloads[0].1 as f64 / 1e6,
        mib(startup.rss),
        mib(startup.anon),
        mib(startup.file),
    )];

    // As many garbage senders as the server has async workers (one per core), so expensive
    // requests can arrive on all of them at once.
    let senders = thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8);
    let cases = Arc::new(garbage_cases());

    let started = Instant::now();
    let deadline = started + ABUSE;
    let stop = Arc::new(AtomicBool::new(false));

    let mut loadgen = crate::util::ferry_process(&store.data)
        .args(["dev", "loadgen", "--url", &server.url(), "--clients", &AGENTS.to_string()])
        .args(["--duration", &ABUSE.as_secs().to_string(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferry dev loadgen starts");
    let loadgen_out = drain(loadgen.stdout.take().unwrap());
    let loadgen_err = drain(loadgen.stderr.take().unwrap());

    let health = {
        let stop = stop.clone();
        thread::spawn(move || probe_health(addr, started, &stop))
    };
    let rss = {
        let stop = stop.clone();
        thread::spawn(move || sample_memory(pid, started, &stop))
    };
    let aborts = {
        let payloads: Vec<String> = store
            .payloads
            .iter()
            .filter(|p| p.1 >= 2 << 20)
            .take(30)
            .map(|p| p.0.clone())
            .collect();
        thread::spawn(move || abort_downloads(addr, &payloads, deadline))
    };
    let garbage: Vec<_> = (0..senders)
        .map(|_| {
            let cases = cases.clone();
            thread::spawn(move || send_garbage(addr, &cases, started, deadline))
        })
        .collect();
    let operations = thread::spawn(move || flood_operations(addr, started, deadline));
    let idle = thread::spawn(move || hold_idle(addr, deadline));
    let unread = thread::spawn(move || hold_unread_multirange(addr, &big, deadline));

    let loadgen_status = loop {
        if let Some(status) = loadgen.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > ABUSE + LOADGEN_GRACE {
            let _ = loadgen.kill();
            let _ = loadgen.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let aborts = aborts.join().unwrap();
    let garbage = Garbage { events: garbage.into_iter().flat_map(|g| g.join().unwrap()).collect() };
    let operations = operations.join().unwrap();
    let idle = idle.join().unwrap();
    let unread = unread.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let health = health.join().unwrap();
    let rss = rss.join().unwrap();
    let alive = server.alive();

    let mut failures: Vec<String> = Vec::new();
    report.push(format!(
        "abuse for {:.0} s: {aborts} aborted downloads; {} distinct unknown operations sent, {} answered by {:.1} s; {}/{IDLE_CONNECTIONS} idle connections held; {}/{UNREAD_MULTIRANGE} unread {PARTS}-part multi-range requests of {} MB held",
        ABUSE.as_secs_f64(),
        operations.sent,
        operations.answered,
        operations.at,
        idle,
        unread,
        PARTS * PART_BYTES / 1_000_000
    ));
    report.push(garbage.summary(senders));

    if !alive {
        failures.push(format!("the server exited:\n{}", tail(&server.log(), 4000)));
    }

    // /healthz: every probe answered 200, each within the budget.
    let mut latencies: Vec<Duration> = health.iter().map(|p| p.latency).collect();
    latencies.sort();
    let over: Vec<&Probe> = health.iter().filter(|p| p.latency > HEALTH_BUDGET).collect();
    let not_ok: Vec<&Probe> = health.iter().filter(|p| p.status != Some(200)).collect();
    let health_line = format!(
        "/healthz: {} probes over {:.1} s, max {:.1} ms, p99 {:.1} ms, p50 {:.1} ms, {} over {} ms, {} not 200",
        health.len(),
        health.last().map_or(0.0, |p| p.at),
        ms(latencies.last().copied().unwrap_or_default()),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 0.50)),
        over.len(),
        HEALTH_BUDGET.as_millis(),
        not_ok.len()
    );
    report.push(health_line.clone());
    if health.is_empty() || !over.is_empty() {
        failures.push(format!("{health_line}; slow probes (s after start: ms): {}", probes(&over)));
    }
    if !not_ok.is_empty() {
        let answers: Vec<String> = not_ok
            .iter()
            .take(10)
            .map(|p| {
                format!(
                    "{:.2} s: {}",
                    p.at,
                    p.status.map_or("no answer".to_string(), |s| s.to_string())
                )
            })
            .collect();
        failures.push(format!(
            "{} of {} /healthz probes did not get 200: {}",
            not_ok.len(),
            health.len(),
            answers.join(", ")
        ));
    }

    // Memory: anonymous memory within the allowance; all of it within the allowance plus the
    // content tree (the file pages a server mapping payloads may have resident).
    let peak = |f: fn(&Memory) -> u64| {
        rss.iter().max_by_key(|s| f(&s.1)).map(|s| (s.0, f(&s.1))).unwrap_or((0.0, 0))
    };
    let (anon_at, anon) = peak(|m| m.anon);
    let (rss_at, peak_rss) = peak(|m| m.rss);
    let (file_at, file) = peak(|m| m.file);
    let allowance = ANON_BASE + ANON_PER_SENDER * senders as u64;
    let anon_bound = startup.anon + allowance;
    let rss_bound = startup.rss + allowance + store.content_bytes;
    let memory_line = format!(
        "memory ({} samples): peak RssAnon {} at {anon_at:.1} s (bound {}), peak VmRSS {} at {rss_at:.1} s (bound {}), peak RssFile {} at {file_at:.1} s",
        rss.len(),
        mib(anon),
        mib(anon_bound),
        mib(peak_rss),
        mib(rss_bound),
        mib(file)
    );
    report.push(memory_line);
    if rss.is_empty() {
        failures.push("no memory samples of the server".to_string());
    }
    if anon > anon_bound {
        failures.push(format!(
            "peak RssAnon {} at {anon_at:.1} s is over startup's {} + {}",
            mib(anon),
            mib(startup.anon),
            mib(allowance)
        ));
    }
    if peak_rss > rss_bound {
        failures.push(format!(
            "peak VmRSS {} at {rss_at:.1} s is over startup's {} + {} + the content tree's {}",
            mib(peak_rss),
            mib(startup.rss),
            mib(allowance),
            mib(store.content_bytes)
        ));
    }

    // /metrics after the flood of distinct operation names.
    match &operations.metrics {
        Ok((200, body)) => {
            let series = String::from_utf8_lossy(body).matches("ferry_requests_total{").count();
            let line = format!(
                "/metrics after the flood ({:.1} s): {} bytes, {series} operation series (limit {METRICS_LIMIT} bytes)",
                operations.at,
                body.len()
            );
            report.push(line.clone());
            if body.len() > METRICS_LIMIT {
                failures.push(line);
            }
        }
        Ok((status, _)) => failures
            .push(format!("/metrics answered {status} after the flood ({:.1} s)", operations.at)),
        Err(e) => failures.push(format!(
            "/metrics got no answer within 10 s after the flood ({:.1} s): {e}",
            operations.at
        )),
    }

    // The simulated agents: done in time, no errors, and they did scan.
    let out = loadgen_out.join().unwrap();
    let err = loadgen_err.join().unwrap();
    match loadgen_status {
        None => failures.push(format!(
            "ferry dev loadgen --duration {} did not finish within {:.0} s (its agents wait for every answer)",
            ABUSE.as_secs(),
            (ABUSE + LOADGEN_GRACE).as_secs_f64()
        )),
        Some(status) if !status.success() => failures.push(format!("ferry dev loadgen failed ({status}): {}", tail(&err, 2000))),
        Some(_) => match serde_json::from_str::<serde_json::Value>(&out) {
            Err(e) => failures.push(format!("ferry dev loadgen printed no JSON report ({e}): {}", tail(&out, 2000))),
            Ok(r) => {
                let line = format!(
                    "loadgen: {} agents, {:.1} s: {} scans, {} failed, {} requests, {} errors, content {:.1} MiB/s; per operation (count/errors/p99 ms/max ms): {}",
                    r["clients"],
                    r["seconds"].as_f64().unwrap_or(0.0),
                    r["scans"],
                    r["failed_scans"],
                    r["requests"],
                    r["errors"],
                    r["content_mib_per_second"].as_f64().unwrap_or(0.0),
                    r["operations"]
                        .as_array()
                        .map(|ops| ops
                            .iter()
                            .map(|o| format!(
                                "{} {}/{}/{:.0}/{:.0}",
                                o["operation"].as_str().unwrap_or("?"),
                                o["count"],
                                o["errors"],
                                o["p99_ms"].as_f64().unwrap_or(0.0),
                                o["max_ms"].as_f64().unwrap_or(0.0)
                            ))
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default()
                );
                report.push(line.clone());
                if r["errors"].as_u64() != Some(0) || r["failed_scans"].as_u64() != Some(0) || r["scans"].as_u64().unwrap_or(0) == 0 {
                    failures.push(format!("{line}; error samples: {}", r["error_samples"]));
                }
            }
        },
    }

    let report = report.join("\n");
    if failures.is_empty() {
        eprintln!("{report}");
    }
    assert!(
        failures.is_empty(),
        "{} of the chaos test's checks failed:\n- {}\n\n{report}\n\nserver log (end):\n{}",
        failures.len(),
        failures.join("\n- "),
        tail(&server.log(), 2000)
    );
}

struct Store {
    _dir: tempfile::TempDir,
    data: PathBuf,
    /// (URL path, size), largest first.
    payloads: Vec<(String, u64)>,
    content_bytes: u64,
}

fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    // 87 payload files of 0.4-14 MB (median 2.3 MB, 270 MB in all): an aborted download has
    // megabytes in flight.
    stdout_of(ferry(&data).args(["dev", "synth", "--updates", "200", "--payload-bytes", "3MiB"]));
    // The approvable updates approved (expired ones are not listed), so the agents download
    // what their machine profiles need, in 1 MiB ranges.
    let ids =
        stdout_of(ferry(&data).args(["updates", "list", "--approval", "unapproved", "--ids"]));
    stdout_of(
        ferry(&data).args(["updates", "approve", "--group", "All Computers", "-"]).write_stdin(ids),
    );
    let payloads = crate::served::payloads(&data);
    let content_bytes = payloads.iter().map(|p| p.1).sum();
    Store { _dir: dir, data, payloads, content_bytes }
}

/// One connection of the abusing client: bytes out, answers read with a timeout. Errors are
/// results, never panics: the server may close on it at any moment.
struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: SocketAddr) -> io::Result<Conn> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_nodelay(true)?;
        // A server that stops reading must not hang the test.
        s.set_write_timeout(Some(Duration::from_secs(5)))?;
        Ok(Conn { stream: BufReader::new(s) })
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.get_mut().write_all(bytes)
    }

    /// One answer: the status and the body (by its Content-Length).
    fn answer(&mut self, timeout: Duration) -> io::Result<(u16, Vec<u8>)> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        self.stream.get_ref().set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed without an answer"));
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            if self.stream.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed inside the headers",
                ));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().map_err(|_| bad("bad Content-Length"))?;
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body)?;
        Ok((status, body))
    }

    /// Reads and drops up to `n` bytes of whatever comes.
    fn read_some(&mut self, n: usize, timeout: Duration) {
        let _ = self.stream.get_ref().set_read_timeout(Some(timeout));
        let mut buf = vec![0; n];
        let mut got = 0;
        while got < n {
            match self.stream.read(&mut buf[got..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
    }

    /// Closes with a reset (SO_LINGER 0) instead of an orderly FIN.
    fn reset(self) {
        use std::os::fd::AsRawFd;
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: a valid socket descriptor and a `linger` of the size passed.
        unsafe {
            libc::setsockopt(
                self.stream.get_ref().as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
}

fn get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<(u16, Vec<u8>)> {
    let mut c = Conn::open(addr)?;
    c.send(format!("GET {path} HTTP/1.1\r\nHost: chaos.example\r\n\r\n").as_bytes())?;
    c.answer(timeout)
}

fn post(path: &str, action: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nHost: chaos.example\r\nContent-Type: text/xml; charset=utf-8\r\nSOAPAction: \"{action}\"\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn envelope(inner: &str) -> String {
    format!(
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{inner}</s:Body></s:Envelope>"
    )
}

/// xorshift64*: the same garbage on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

struct Probe {
    /// Seconds after the start.
    at: f64,
    latency: Duration,
    status: Option<u16>,
}

/// GET /healthz on a fresh connection every 50 ms until `stop`.
fn probe_health(addr: SocketAddr, started: Instant, stop: &AtomicBool) -> Vec<Probe> {
    let mut out = Vec::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            thread::sleep(next - now);
        }
        let begun = Instant::now();
        next = begun + HEALTH_EVERY;
        let status = get(addr, "/healthz", HEALTH_TIMEOUT).ok().map(|(s, _)| s);
        out.push(Probe { at: (begun - started).as_secs_f64(), latency: begun.elapsed(), status });
    }
    out
}

#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    rss: u64,
    anon: u64,
    file: u64,
}

/// VmRSS, RssAnon and RssFile of a process, in bytes.
fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        Some(line[name.len()..].trim().trim_end_matches("kB").trim().parse::<u64>().ok()? * 1024)
    };
    Some(Memory { rss: field("VmRSS:")?, anon: field("RssAnon:")?, file: field("RssFile:")? })
}

/// The server's memory every 100 ms until `stop` (or until it is gone).
fn sample_memory(pid: u32, started: Instant, stop: &AtomicBool) -> Vec<(f64, Memory)> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match memory(pid) {
            Some(m) => out.push((started.elapsed().as_secs_f64(), m)),
            None => break,
        }
        thread::sleep(RSS_EVERY);
    }
    out
}

/// Starts downloads of multi-MB payloads and walks away: right after the request or after a few
/// KB, with an orderly close or a reset, whole files, open ranges, two-part ranges, pipelined.
/// Returns how many.
fn abort_downloads(addr: SocketAddr, payloads: &[String], deadline: Instant) -> usize {
    let mut n = 0;
    while Instant::now() < deadline {
        let path = &payloads[n % payloads.len()];
        let request = |range: Option<&str>| {
            let range = range.map(|r| format!("Range: bytes={r}\r\n")).unwrap_or_default();
            format!("GET {path} HTTP/1.1\r\nHost: chaos.example\r\n{range}\r\n").into_bytes()
        };
        if let Ok(mut c) = Conn::open(addr) {
            let t = Duration::from_secs(2);
            match n % 6 {
                0 => {
                    let _ = c.send(&request(None));
                }
                1 => {
                    let _ = c.send(&request(None));
                    c.read_some(4 << 10, t);
                }
                2 => {
                    let _ = c.send(&request(Some("0-")));
                    c.reset();
                }
                3 => {
                    let _ = c.send(&request(Some("1000000-")));
                    c.read_some(16 << 10, t);
                    c.reset();
                }
                4 => {
                    let _ = c.send(&request(Some("0-1048575,2097152-3145727")));
                    c.read_some(1 << 10, t);
                }
                _ => {
                    let mut two = request(None);
                    two.extend(request(Some("500000-")));
                    let _ = c.send(&two);
                    c.read_some(8 << 10, t);
                    c.reset();
                }
            }
        }
        n += 1;
        thread::sleep(Duration::from_millis(10));
    }
    n
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    /// Shut down the sending side after the bytes (a request cut short).
    half_close: bool,
    /// Sent only from HEAVY_FROM on.
    heavy: bool,
}

fn garbage_cases() -> Vec<Case> {
    let mut rng = Rng(0x00c0_ffee_d00d_f00d);
    let action = format!("{CLIENT_NS}/GetConfig");
    let soap = |body: &str| post(CLIENT, &action, body.as_bytes());
    let case = |name, bytes| Case { name, bytes, half_close: false, heavy: false };
    let cut = |name, bytes| Case { name, bytes, half_close: true, heavy: false };
    let heavy = |name, bytes| Case { name, bytes, half_close: false, heavy: true };
    let get_config = format!(
        "<GetConfig xmlns=\"{CLIENT_NS}\"><protocolVersion>2.90</protocolVersion></GetConfig>"
    );
    let mut after_request_line = format!("POST {CLIENT} HTTP/1.1\r\n").into_bytes();
    after_request_line.extend(rng.bytes(4096));
    let mut attributes = String::with_capacity(1 << 20);
    for i in 0..80_000 {
        attributes.push_str(&format!(" a{i}=\"v\""));
    }
    // 100,000 prefixes declared on the envelope, and as many elements using the first one (the
    // one a resolver searching from the innermost declaration finds last).
    let mut declarations = String::with_capacity(3 << 20);
    for i in 0..100_000 {
        declarations.push_str(&format!(" xmlns:p{i}=\"urn:chaos:{i}\""));
    }
    let prefixed = "<p0:x/>".repeat(100_000);
    let mut headers = String::from("GET /healthz HTTP/1.1\r\nHost: chaos.example\r\n");
    for i in 0..10_000 {
        headers.push_str(&format!("X-Chaos-{i}: {i}\r\n"));
    }
    headers.push_str("\r\n");
    vec![
        case("random bytes", rng.bytes(4096)),
        case("random bytes after a request line", after_request_line),
        cut("a request line cut short", b"GET /Content/0".to_vec()),
        cut("headers cut short", format!("POST {CLIENT} HTTP/1.1\r\nHost: chaos.example\r\nContent-Le").into_bytes()),
        cut("a body cut short", {
            let mut b = format!("POST {CLIENT} HTTP/1.1\r\nHost: chaos.example\r\nContent-Type: text/xml\r\nContent-Length: 10000\r\n\r\n")
                .into_bytes();
            b.extend_from_slice(&envelope(&get_config).as_bytes()[..120]);
            b
        }),
        case(
            "a 2 MiB header",
            format!("GET /healthz HTTP/1.1\r\nHost: chaos.example\r\nX-Chaos: {}\r\n\r\n", "a".repeat(2 << 20)).into_bytes(),
        ),
        case("10,000 headers", headers.into_bytes()),
        case(
            "a bad chunk size",
            format!("POST {CLIENT} HTTP/1.1\r\nHost: chaos.example\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n<s:Envelope\r\n0\r\n\r\n")
                .into_bytes(),
        ),
        case(
            "Content-Length and Transfer-Encoding both",
            format!("POST {CLIENT} HTTP/1.1\r\nHost: chaos.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                .into_bytes(),
        ),
        case(
            "a terabyte Content-Length",
            format!("POST {CLIENT} HTTP/1.1\r\nHost: chaos.example\r\nContent-Length: 1000000000000\r\n\r\n<s:Envelope").into_bytes(),
        ),
        case("unclosed SOAP", soap(&envelope(&get_config).replace("</s:Envelope>", ""))),
        case("mismatched tags", soap(&envelope(&get_config).replace("</GetConfig>", "</GetCookie>"))),
        case("not SOAP", soap("<html><body>hello</body></html>")),
        case("not UTF-8", {
            let mut b = envelope(&get_config).into_bytes();
            b.splice(40..40, [0xff, 0xfe, 0xc0]);
            post(CLIENT, &action, &b)
        }),
        case("a Body nested 100,000 deep", soap(&envelope(&format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000))))),
        case(
            "entity expansion",
            soap(&format!(
                "<?xml version=\"1.0\"?><!DOCTYPE s:Envelope [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>{}",
                envelope(&format!("<GetConfig xmlns=\"{CLIENT_NS}\"><protocolVersion>&d;&d;&d;&d;</protocolVersion></GetConfig>"))
            )),
        ),
        heavy(
            "an element with 80,000 attributes",
            soap(&envelope(&format!("<GetConfig xmlns=\"{CLIENT_NS}\"{attributes}><protocolVersion>2.90</protocolVersion></GetConfig>"))),
        ),
        heavy(
            "100,000 namespace declarations and prefixed elements",
            soap(&format!(
                "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"{declarations}><s:Body><GetConfig xmlns=\"{CLIENT_NS}\">{prefixed}<protocolVersion>2.90</protocolVersion></GetConfig></s:Body></s:Envelope>"
            )),
        ),
    ]
}

/// What happened to each garbage case.
struct Garbage {
    events: Vec<Sent>,
}

/// One garbage case sent: when (seconds after the start), what came back, after how long.
struct Sent {
    at: f64,
    case: &'static str,
    outcome: String,
    seconds: f64,
}

impl Garbage {
    fn summary(&self, senders: usize) -> String {
        let mut names: Vec<&str> = Vec::new();
        for e in &self.events {
            if !names.contains(&e.case) {
                names.push(e.case);
            }
        }
        let lines: Vec<String> = names
            .iter()
            .map(|name| {
                let mut mine: Vec<&Sent> = self.events.iter().filter(|e| e.case == *name).collect();
                mine.sort_by(|a, b| a.at.total_cmp(&b.at));
                let mut outcomes: Vec<String> = mine.iter().map(|e| e.outcome.clone()).collect();
                outcomes.sort();
                outcomes.dedup();
                let slowest = mine.iter().map(|e| e.seconds).fold(0.0, f64::max);
                let at: Vec<String> = mine.iter().take(6).map(|e| format!("{:.1}", e.at)).collect();
                let more = if mine.len() > 6 { ", ..." } else { "" };
                format!(
                    "  {name}: sent {} times (at {}{more} s), {}, slowest {slowest:.2} s",
                    mine.len(),
                    at.join(", "),
                    outcomes.join(" | ")
                )
            })
            .collect();
        format!(
            "garbage ({senders} senders, each case on a fresh connection):\n{}",
            lines.join("\n")
        )
    }
}

/// Sends each garbage case on a fresh connection, waiting for the answer (or the close) before
/// the next, one round every GARBAGE_ROUND; the heavy cases from HEAVY_FROM on.
fn send_garbage(
    addr: SocketAddr,
    cases: &[Case],
    started: Instant,
    deadline: Instant,
) -> Vec<Sent> {
    let heavy_from = started + ABUSE.mul_f64(HEAVY_FROM);
    let mut events = Vec::new();
    let mut round = started;
    'rounds: loop {
        for case in cases {
            let now = Instant::now();
            if now >= deadline {
                break 'rounds;
            }
            if case.heavy && now < heavy_from {
                continue;
            }
            let outcome = match Conn::open(addr) {
                Err(e) => format!("connect failed: {:?}", e.kind()),
                Ok(mut c) => {
                    // A server that answers early and closes makes the rest of the write fail.
                    let sent = c.send(&case.bytes);
                    if case.half_close {
                        let _ = c.stream.get_ref().shutdown(Shutdown::Write);
                    }
                    let wait = (deadline - now + Duration::from_secs(2)).min(GARBAGE_WAIT);
                    match (sent, c.answer(wait)) {
                        (_, Ok((status, _))) => status.to_string(),
                        (Ok(()), Err(e)) => describe(&e),
                        (Err(w), Err(e)) => {
                            format!("{:?} while sending, then {}", w.kind(), describe(&e))
                        }
                    }
                }
            };
            events.push(Sent {
                at: (now - started).as_secs_f64(),
                case: case.name,
                outcome,
                seconds: now.elapsed().as_secs_f64(),
            });
            thread::sleep(Duration::from_millis(20));
        }
        round += GARBAGE_ROUND;
        let now = Instant::now();
        if now < round {
            thread::sleep(round - now);
        }
    }
    events
}

struct Flood {
    sent: usize,
    answered: usize,
    /// Seconds after the start when /metrics was asked for.
    at: f64,
    metrics: io::Result<(u16, Vec<u8>)>,
}

/// SOAP requests naming distinct operations nobody offers (half in the service's namespace,
/// half in their own) over the first FLOOD_SHARE of the abuse, then /metrics.
fn flood_operations(addr: SocketAddr, started: Instant, deadline: Instant) -> Flood {
    let every = ABUSE.mul_f64(FLOOD_SHARE) / DISTINCT_OPERATIONS as u32;
    let (mut sent, mut answered) = (0, 0);
    let mut conn: Option<Conn> = None;
    for i in 0..DISTINCT_OPERATIONS {
        let at = started + every * i as u32;
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if now < at {
            thread::sleep(at - now);
        }
        let name = format!("ChaosOperation{i}");
        let ns = if i % 2 == 0 { CLIENT_NS.to_string() } else { format!("urn:chaos:{i}") };
        let request = post(
            CLIENT,
            &format!("{ns}/{name}"),
            envelope(&format!("<{name} xmlns=\"{ns}\"/>")).as_bytes(),
        );
        if conn.is_none() {
            conn = Conn::open(addr).ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        sent += 1;
        match c.send(&request).and_then(|_| c.answer(Duration::from_secs(5))) {
            Ok(_) => answered += 1,
            Err(_) => conn = None,
        }
    }
    let at = started.elapsed().as_secs_f64();
    Flood { sent, answered, at, metrics: get(addr, "/metrics", Duration::from_secs(10)) }
}

/// Connections that send nothing, half a request line and headers, or headers and half a body,
/// held until the deadline. Returns how many were opened.
fn hold_idle(addr: SocketAddr, deadline: Instant) -> usize {
    let mut held = Vec::new();
    for i in 0..IDLE_CONNECTIONS {
        if Instant::now() >= deadline {
            break;
        }
        if let Ok(mut c) = Conn::open(addr) {
            let _ = match i % 3 {
                0 => Ok(()),
                1 => c.send(b"GET /healthz HTTP/1.1\r\nHost: chaos.example\r\n"),
                _ => c.send(
                    format!(
                        "POST {CLIENT} HTTP/1.1\r\nHost: chaos.example\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<s:Envelope"
                    )
                    .as_bytes(),
                ),
            };
            held.push(c);
        }
        thread::sleep(Duration::from_millis(5));
    }
    let n = held.len();
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    n
}

/// `Range: bytes=` with 16 parts of 4,000,000 bytes spread evenly over a file of `size` bytes.
fn sixteen_parts(size: u64) -> String {
    let parts: Vec<String> = (0..PARTS)
        .map(|k| {
            let start = k * (size - PART_BYTES) / (PARTS - 1);
            format!("{start}-{}", start + PART_BYTES - 1)
        })
        .collect();
    parts.join(",")
}

/// Multi-range requests near the server's limit on the largest payloads, never read, held until
/// the deadline. Returns how many were sent.
fn hold_unread_multirange(addr: SocketAddr, big: &[(String, u64)], deadline: Instant) -> usize {
    // The agents' first requests go first.
    thread::sleep(Duration::from_secs(1));
    let mut held = Vec::new();
    for i in 0..UNREAD_MULTIRANGE {
        let (path, size) = &big[i % big.len()];
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: chaos.example\r\nRange: bytes={}\r\n\r\n",
            sixteen_parts(*size)
        );
        if let Ok(mut c) = Conn::open(addr)
            && c.send(request.as_bytes()).is_ok()
        {
            held.push(c);
        }
        thread::sleep(Duration::from_millis(100));
    }
    let n = held.len();
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    n
}

fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "no answer in time".to_string(),
        io::ErrorKind::UnexpectedEof => "closed".to_string(),
        kind => format!("{kind:?}"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1 << 20) as f64)
}

fn probes(p: &[&Probe]) -> String {
    let shown: Vec<String> =
        p.iter().take(20).map(|p| format!("{:.2}: {:.0}", p.at, ms(p.latency))).collect();
    format!(
        "{}{}",
        shown.join(", "),
        if p.len() > 20 { format!(", ... ({} more)", p.len() - 20) } else { String::new() }
    )
}

fn tail(s: &str, n: usize) -> &str {
    let mut at = s.len().saturating_sub(n);
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}
