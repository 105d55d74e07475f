//! Latencies and counts per operation, merged across simulated clients.

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Default, Clone)]
struct Samples {
    micros: Vec<u32>,
    errors: u64,
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    ops: BTreeMap<&'static str, Samples>,
    pub scans: u64,
    pub failed_scans: u64,
    pub sync_pages: u64,
    /// The most updates one SyncUpdates answer carried, the largest answer body and all of them,
    /// in bytes.
    pub largest_sync_page: usize,
    pub largest_sync_answer: usize,
    pub sync_answer_bytes: u64,
    /// NewUpdates of all SyncUpdates answers.
    pub sync_updates: u64,
    pub content_bytes: u64,
    /// SOAP answers: bytes as they came (compressed or not), and decoded.
    pub answer_wire_bytes: u64,
    pub answer_bytes: u64,
    /// Events in ReportEventBatch calls the server accepted (answered 200): what it must keep.
    pub events_reported: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OperationReport {
    pub operation: String,
    pub count: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Stats {
    pub fn record(&mut self, op: &'static str, elapsed: Duration) {
        self.ops
            .entry(op)
            .or_default()
            .micros
            .push(elapsed.as_micros().min(u32::MAX as u128) as u32);
    }

    /// One SyncUpdates answer of `updates` new updates in `bytes`.
    pub fn sync_page(&mut self, updates: usize, bytes: usize) {
        self.sync_pages += 1;
        self.largest_sync_page = self.largest_sync_page.max(updates);
        self.largest_sync_answer = self.largest_sync_answer.max(bytes);
        self.sync_answer_bytes += bytes as u64;
        self.sync_updates += updates as u64;
    }

    pub fn error(&mut self, op: &'static str) {
        self.ops.entry(op).or_default().errors += 1;
    }

    pub fn merge(&mut self, other: Stats) {
        for (op, s) in other.ops {
            let mine = self.ops.entry(op).or_default();
            mine.micros.extend(s.micros);
            mine.errors += s.errors;
        }
        self.scans += other.scans;
        self.failed_scans += other.failed_scans;
        self.sync_pages += other.sync_pages;
        self.largest_sync_page = self.largest_sync_page.max(other.largest_sync_page);
        self.largest_sync_answer = self.largest_sync_answer.max(other.largest_sync_answer);
        self.sync_answer_bytes += other.sync_answer_bytes;
        self.sync_updates += other.sync_updates;
        self.content_bytes += other.content_bytes;
        self.answer_wire_bytes += other.answer_wire_bytes;
        self.answer_bytes += other.answer_bytes;
        self.events_reported += other.events_reported;
    }

    pub fn requests(&self) -> u64 {
        self.ops.values().map(|s| s.micros.len() as u64).sum()
    }

    pub fn errors(&self) -> u64 {
        self.ops.values().map(|s| s.errors).sum()
    }

    pub fn operations(&mut self, seconds: f64) -> Vec<OperationReport> {
        let mut out = Vec::new();
        for (op, s) in &mut self.ops {
            s.micros.sort_unstable();
            let at = |q: f64| -> f64 {
                if s.micros.is_empty() {
                    return 0.0;
                }
                let i = ((s.micros.len() as f64 * q).ceil() as usize).clamp(1, s.micros.len()) - 1;
                s.micros[i] as f64 / 1000.0
            };
            out.push(OperationReport {
                operation: op.to_string(),
                count: s.micros.len() as u64,
                errors: s.errors,
                per_second: s.micros.len() as f64 / seconds.max(1e-9),
                p50_ms: at(0.50),
                p99_ms: at(0.99),
                max_ms: at(1.0),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut s = Stats::default();
        for ms in 1..=100 {
            s.record("Op", Duration::from_millis(ms));
        }
        let r = &s.operations(1.0)[0];
        assert_eq!((r.count, r.p50_ms, r.p99_ms, r.max_ms), (100, 50.0, 99.0, 100.0));
    }
}
