//! The PostgreSQL side of the compliance report: each computer's status from its events, read
//! through a portal a chunk at a time, so memory holds one computer's events and one chunk.

use super::PostgresStore;
use crate::compliance::{ComputerStatus, StatusEvent, computer_status};
use crate::store::StoreResult;
use crate::store::compliance_report::*;
use postgres::Row;
use std::collections::HashMap;

/// Events that move update states (WSUS-PROTOCOL.md §3.5).
const STATUS_EVENTS: &str = "156, 182, 183, 184, 190, 191, 195, 201, 202, 203, 204, 222";

/// Rows fetched from the portal at once.
const ROWS_AT_ONCE: i32 = 1000;

/// (event_id, time, update_id, misc_data, received_at) of one event.
type Owned = (i32, String, String, Vec<String>, String);

/// Folds the events of one computer after another (they arrive grouped by computer, each
/// computer's in the order they arrived).
#[derive(Default)]
struct Statuses {
    out: HashMap<String, ComputerStatus>,
    current: Option<String>,
    events: Vec<Owned>,
}

impl Statuses {
    fn push(&mut self, r: &Row) -> Result<(), postgres::Error> {
        let computer: String = r.try_get(0)?;
        if self.current.as_deref() != Some(computer.as_str()) {
            self.fold_current();
            self.current = Some(computer);
        }
        let misc: Option<String> = r.try_get(4)?;
        self.events.push((
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            serde_json::from_str(&misc.unwrap_or_default()).unwrap_or_default(),
            r.try_get(5)?,
        ));
        Ok(())
    }

    fn fold_current(&mut self) {
        if let Some(done) = self.current.take() {
            let status = computer_status(self.events.iter().map(
                |(event_id, time, update, misc, received)| StatusEvent {
                    event_id: *event_id,
                    time_at_target: time,
                    update_id: update,
                    misc_data: misc,
                    received_at: received,
                },
            ));
            self.out.insert(done, status);
        }
        self.events.clear();
    }
}

impl ComplianceStorage for PostgresStore {
    fn computer_statuses(&self) -> StoreResult<HashMap<String, ComputerStatus>> {
        let sql = format!(
            "SELECT computer_id, event_id, COALESCE(time_at_target, received_at), update_id, misc_data, received_at FROM events
             WHERE event_id IN ({STATUS_EVENTS}) ORDER BY computer_id, seq"
        );
        let what = "reading events";
        let mut conn = self.connection()?;
        // A portal lives in a transaction.
        let mut tx = conn.build_transaction().read_only(true).start().map_err(self.fail(what))?;
        let portal = tx.bind(sql.as_str(), &[]).map_err(self.fail(what))?;
        let mut statuses = Statuses::default();
        loop {
            let rows = tx.query_portal(&portal, ROWS_AT_ONCE).map_err(self.fail(what))?;
            for r in &rows {
                statuses.push(r).map_err(self.fail(what))?;
            }
            if rows.len() < ROWS_AT_ONCE as usize {
                break;
            }
        }
        tx.commit().map_err(self.fail(what))?;
        statuses.fold_current();
        Ok(statuses.out)
    }

    fn arrival_times(&self) -> StoreResult<HashMap<String, String>> {
        let what = "reading arrival times";
        let rows = self
            .connection()?
            .query("SELECT update_id, ingested_at FROM revisions WHERE is_latest", &[])
            .map_err(self.fail(what))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, postgres::Error>>()
            .map_err(self.fail(what))
    }
}
