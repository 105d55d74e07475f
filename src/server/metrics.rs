//! Counters for `/metrics` (Prometheus text format): requests and latency per operation,
//! faults, content bytes. Every series carries the `front_end` label (`--name`, else
//! `hostname:port`), so that the series of front ends on one database stay apart however they
//! are gathered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default, Clone)]
struct Operation {
    count: u64,
    faults: u64,
    seconds: f64,
    buckets: [u64; BUCKETS.len()],
}

/// The operations ferry answers: the only values of the `operation` label. Anything else a
/// request names counts under `(other)`, and a body that is not SOAP under `(unparsed)`, so
/// no request can add a label (each one is kept for the life of the process).
pub const OPERATIONS: &[&str] = &[
    // ClientWebService, SimpleAuth, Reporting (MS-WUSP)
    "GetConfig",
    "GetCookie",
    "RegisterComputer",
    "StartCategoryScan",
    "SyncUpdates",
    "SyncPrinterCatalog",
    "RefreshCache",
    "GetExtendedUpdateInfo",
    "GetFileLocations",
    "GetAuthorizationCookie",
    "ReportEventBatch",
    // ServerSync, DssAuth and the reporting rollup (MS-WSUSSS)
    "GetAuthConfig",
    "GetConfigData",
    "GetRevisionIdList",
    "GetUpdateData",
    "GetUpdateDecryptionData",
    "GetDeployments",
    "DownloadFiles",
    "GetRollupConfiguration",
    "RollupDownstreamServers",
    "RollupComputers",
    "GetOutOfSyncComputers",
    "RollupComputerStatus",
];
pub const UNPARSED: &str = "(unparsed)";
pub const OTHER: &str = "(other)";

/// A value of the `operation` label: built only from static names, so requests cannot add labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label(&'static str, &'static str);

impl Label {
    pub const UNPARSED: Label = Label(UNPARSED, "");

    /// A SOAP operation: one of `OPERATIONS`, else `(other)`.
    pub fn soap(name: &str) -> Label {
        Label(OPERATIONS.iter().copied().find(|o| *o == name).unwrap_or(OTHER), "")
    }

    /// An admin API call (counted once its token matched): method and route from the API's
    /// fixed tables.
    pub fn admin(method: &'static str, route: &'static str) -> Label {
        Label(method, route)
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            "" => f.write_str(self.0),
            route => write!(f, "admin {} {route}", self.0),
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    operations: Mutex<BTreeMap<Label, Operation>>,
    pub content_bytes: AtomicU64,
    pub content_requests: AtomicU64,
    pub scans: AtomicU64,
    /// Requests answered ServerBusy because the memory budget was spent.
    pub busy: AtomicU64,
    /// Answers sent xpress-compressed, and their bytes before and after.
    pub xpress_answers: AtomicU64,
    pub xpress_original_bytes: AtomicU64,
    pub xpress_sent_bytes: AtomicU64,
    /// The `front_end` label's value, once named.
    front_end: OnceLock<String>,
}

/// `hostname:port`: the name of a front end not given one.
pub fn default_front_end(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("{host}:{port}")
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// An answer sent xpress-compressed: `plain` bytes became `sent`.
    pub fn count_xpress(&self, plain: usize, sent: u64) {
        self.xpress_answers.fetch_add(1, Ordering::Relaxed);
        self.xpress_original_bytes.fetch_add(plain as u64, Ordering::Relaxed);
        self.xpress_sent_bytes.fetch_add(sent, Ordering::Relaxed);
    }

    /// Names the front end in every series (the first name given stays).
    pub fn name_front_end(&self, name: &str) {
        let _ = self.front_end.set(escape_label(name));
    }

    /// The labels of a series: the front end's, then `more` (`name="value"` pairs).
    fn labels(&self, more: &str) -> String {
        match (self.front_end.get(), more) {
            (None, "") => String::new(),
            (None, more) => format!("{{{more}}}"),
            (Some(f), "") => format!("{{front_end=\"{f}\"}}"),
            (Some(f), more) => format!("{{front_end=\"{f}\",{more}}}"),
        }
    }

    pub fn observe(&self, label: Label, elapsed: Duration, fault: bool) {
        let s = elapsed.as_secs_f64();
        let mut ops = self.operations.lock().expect("metrics lock");
        let o = ops.entry(label).or_default();
        o.count += 1;
        o.faults += u64::from(fault);
        o.seconds += s;
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                o.buckets[i] += 1;
            }
        }
    }

    pub fn render(&self, extra: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        self.render_operations(&mut out);
        let counters = [
            (
                "ferry_content_bytes_total",
                "Payload bytes served from /Content.",
                self.content_bytes.load(Ordering::Relaxed),
            ),
            (
                "ferry_content_requests_total",
                "Requests for /Content.",
                self.content_requests.load(Ordering::Relaxed),
            ),
            (
                "ferry_scans_total",
                "SyncUpdates software passes that completed a scan (not truncated).",
                self.scans.load(Ordering::Relaxed),
            ),
            (
                "ferry_busy_total",
                "Requests answered ServerBusy: the memory held for clients was at its limit.",
                self.busy.load(Ordering::Relaxed),
            ),
            (
                "ferry_xpress_answers_total",
                "SOAP answers sent xpress-compressed.",
                self.xpress_answers.load(Ordering::Relaxed),
            ),
            (
                "ferry_xpress_original_bytes_total",
                "Bytes of the xpress-compressed answers before compression.",
                self.xpress_original_bytes.load(Ordering::Relaxed),
            ),
            (
                "ferry_xpress_sent_bytes_total",
                "Bytes of the xpress-compressed answers as sent.",
                self.xpress_sent_bytes.load(Ordering::Relaxed),
            ),
        ];
        let labels = self.labels("");
        for (name, help, value) in counters.iter().copied().chain(extra.iter().copied()) {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{labels} {value}\n"
            ));
        }
        out
    }

    /// Requests, faults and latency per operation.
    fn render_operations(&self, out: &mut String) {
        out.push_str("# HELP ferry_requests_total SOAP requests by operation.\n# TYPE ferry_requests_total counter\n");
        let ops = self.operations.lock().expect("metrics lock").clone();
        let labels: Vec<(String, &Operation)> = ops
            .iter()
            .map(|(name, o)| (self.labels(&format!("operation=\"{name}\"")), o))
            .collect();
        for (l, o) in &labels {
            out.push_str(&format!("ferry_requests_total{l} {}\n", o.count));
        }
        out.push_str("# HELP ferry_faults_total SOAP faults by operation.\n# TYPE ferry_faults_total counter\n");
        for (l, o) in &labels {
            out.push_str(&format!("ferry_faults_total{l} {}\n", o.faults));
        }
        out.push_str("# HELP ferry_request_seconds Latency of SOAP requests.\n# TYPE ferry_request_seconds histogram\n");
        for (name, o) in &ops {
            let op = format!("operation=\"{name}\"");
            for (i, b) in BUCKETS.iter().enumerate() {
                let l = self.labels(&format!("{op},le=\"{b}\""));
                out.push_str(&format!("ferry_request_seconds_bucket{l} {}\n", o.buckets[i]));
            }
            let l = self.labels(&format!("{op},le=\"+Inf\""));
            out.push_str(&format!("ferry_request_seconds_bucket{l} {}\n", o.count));
            let l = self.labels(&op);
            out.push_str(&format!("ferry_request_seconds_sum{l} {}\n", o.seconds));
            out.push_str(&format!("ferry_request_seconds_count{l} {}\n", o.count));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_carries_the_front_end() {
        let m = Metrics::default();
        m.observe(Label::soap("SyncUpdates"), Duration::from_millis(1), false);
        m.name_front_end("wsus \"1\"\\a");
        m.name_front_end("ignored: the first name stays");
        let text = m.render(&[("ferry_x", "A gauge.", 7)]);
        let label = r#"front_end="wsus \"1\"\\a""#;
        let series: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(series.iter().all(|l| l.contains(label)), "{text}");
        assert!(
            text.contains(&format!("ferry_requests_total{{{label},operation=\"SyncUpdates\"}} 1"))
        );
        assert!(text.contains(&format!("ferry_x{{{label}}} 7")), "{text}");
    }

    /// Regression: every distinct operation name a request sent became a label kept forever
    /// (2,000 requests made /metrics 1.5 GB).
    #[test]
    fn labels_come_only_from_the_fixed_set() {
        let m = Metrics::default();
        for i in 0..10_000 {
            m.observe(
                Label::soap(&format!("Op{i}{}", "x".repeat(100))),
                Duration::from_millis(1),
                true,
            );
        }
        m.observe(Label::soap("SyncUpdates"), Duration::from_millis(1), false);
        m.observe(Label::UNPARSED, Duration::from_millis(1), true);
        let text = m.render(&[]);
        assert!(text.len() < 16 << 10, "{} bytes", text.len());
        assert!(text.contains("ferry_requests_total{operation=\"(other)\"} 10000"), "{text}");
        assert!(text.contains("ferry_requests_total{operation=\"SyncUpdates\"} 1"), "{text}");
    }
}
