//! The compliance report: each computer's update states (from its events, `crate::compliance`)
//! over the updates an administrator manages, per computer and per update.

use crate::compliance::{ComputerStatus, StatusEvent, computer_status};
use crate::store::compliance_report::*;
use crate::store::{SqliteStore, StoreResult};
use std::collections::HashMap;

/// Events that move update states (WSUS-PROTOCOL.md §3.5).
const STATUS_EVENTS: &str = "156, 182, 183, 184, 190, 191, 195, 201, 202, 203, 204, 222";

impl ComplianceStorage for SqliteStore {
    fn computer_statuses(&self) -> StoreResult<HashMap<String, ComputerStatus>> {
        let sql = format!(
            "SELECT computer_id, event_id, COALESCE(time_at_target, received_at), update_id, misc_data, received_at FROM events
             WHERE event_id IN ({STATUS_EVENTS}) ORDER BY computer_id, rowid"
        );
        let fail = |e| self.err("reading events", e);
        let mut stmt = self.conn.prepare(&sql).map_err(fail)?;
        let mut rows = stmt.query([]).map_err(fail)?;
        type Owned = (i32, String, String, Vec<String>, String);
        let fold = |events: &[Owned]| {
            computer_status(events.iter().map(|(event_id, time, update, misc, received)| {
                StatusEvent {
                    event_id: *event_id,
                    time_at_target: time,
                    update_id: update,
                    misc_data: misc,
                    received_at: received,
                }
            }))
        };
        let mut out = HashMap::new();
        let mut current: Option<String> = None;
        let mut events: Vec<Owned> = Vec::new();
        while let Some(r) = rows.next().map_err(fail)? {
            let computer: String = r.get(0).map_err(fail)?;
            if current.as_deref() != Some(computer.as_str()) {
                if let Some(done) = current.replace(computer) {
                    out.insert(done, fold(&events));
                }
                events.clear();
            }
            let misc: String = r.get::<_, Option<String>>(4).map_err(fail)?.unwrap_or_default();
            events.push((
                r.get(1).map_err(fail)?,
                r.get(2).map_err(fail)?,
                r.get(3).map_err(fail)?,
                serde_json::from_str(&misc).unwrap_or_default(),
                r.get(5).map_err(fail)?,
            ));
        }
        if let Some(done) = current {
            out.insert(done, fold(&events));
        }
        Ok(out)
    }

    fn arrival_times(&self) -> StoreResult<HashMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT update_id, ingested_at FROM revisions WHERE is_latest = 1")
            .map_err(|e| self.err("reading arrival times", e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("reading arrival times", e))
    }
}
