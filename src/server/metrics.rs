//! Counters for `/metrics` (Prometheus text format): requests and latency per operation,
//! faults, content bytes.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default, Clone)]
struct Operation {
    count: u64,
    faults: u64,
    seconds: f64,
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct Metrics {
    operations: Mutex<BTreeMap<String, Operation>>,
    pub content_bytes: AtomicU64,
    pub content_requests: AtomicU64,
    pub scans: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, operation: &str, elapsed: Duration, fault: bool) {
        let s = elapsed.as_secs_f64();
        let mut ops = self.operations.lock().expect("metrics lock");
        let o = ops.entry(operation.to_string()).or_default();
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
        out.push_str("# HELP ferry_requests_total SOAP requests by operation.\n# TYPE ferry_requests_total counter\n");
        let ops = self.operations.lock().expect("metrics lock").clone();
        for (name, o) in &ops {
            out.push_str(&format!("ferry_requests_total{{operation=\"{name}\"}} {}\n", o.count));
        }
        out.push_str("# HELP ferry_faults_total SOAP faults by operation.\n# TYPE ferry_faults_total counter\n");
        for (name, o) in &ops {
            out.push_str(&format!("ferry_faults_total{{operation=\"{name}\"}} {}\n", o.faults));
        }
        out.push_str("# HELP ferry_request_seconds Latency of SOAP requests.\n# TYPE ferry_request_seconds histogram\n");
        for (name, o) in &ops {
            for (i, b) in BUCKETS.iter().enumerate() {
                out.push_str(&format!("ferry_request_seconds_bucket{{operation=\"{name}\",le=\"{b}\"}} {}\n", o.buckets[i]));
            }
            out.push_str(&format!("ferry_request_seconds_bucket{{operation=\"{name}\",le=\"+Inf\"}} {}\n", o.count));
            out.push_str(&format!("ferry_request_seconds_sum{{operation=\"{name}\"}} {}\n", o.seconds));
            out.push_str(&format!("ferry_request_seconds_count{{operation=\"{name}\"}} {}\n", o.count));
        }
        let counters = [
            ("ferry_content_bytes_total", "Payload bytes served from /Content.", self.content_bytes.load(Ordering::Relaxed)),
            ("ferry_content_requests_total", "Requests for /Content.", self.content_requests.load(Ordering::Relaxed)),
            ("ferry_scans_total", "SyncUpdates software passes that completed a scan (not truncated).", self.scans.load(Ordering::Relaxed)),
        ];
        for (name, help, value) in counters.iter().copied().chain(extra.iter().copied()) {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"));
        }
        out
    }
}
