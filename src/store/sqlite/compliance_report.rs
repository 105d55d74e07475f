//! The compliance report: each computer's update states (from its events, `crate::compliance`)
//! over the updates an administrator manages, per computer and per update.

use crate::compliance::{ComputerStatus, StateCounts, StatusEvent, UpdateState, computer_status};
use crate::store::compliance_report::*;
use crate::store::prelude::*;
use crate::store::{ApprovalState, ComputerRecord, SqliteStore, StoreResult, UpdateFilter};
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

    fn compliance_report(
        &self,
        computers: Vec<ComputerRecord>,
        group: Option<String>,
    ) -> StoreResult<ComplianceReport> {
        let statuses = self.computer_statuses()?;
        let arrived = self.arrival_times()?;
        let updates = self.list_updates(&UpdateFilter {
            approval: Some(ApprovalState::AnyExceptDeclined),
            ..Default::default()
        })?;
        let group_names: HashMap<crate::ids::GroupId, String> =
            self.groups()?.into_iter().map(|g| (g.group_id, g.name)).collect();
        let empty = ComputerStatus::default();
        let mut per_update: Vec<StateCounts> = vec![StateCounts::default(); updates.len()];
        let mut out = Vec::with_capacity(computers.len());
        for c in computers {
            let status = statuses.get(c.computer_id.as_str()).unwrap_or(&empty);
            let mut counts = StateCounts::default();
            let (mut failed, mut needed) = (Vec::new(), Vec::new());
            for (i, u) in updates.iter().enumerate() {
                let state = status.state_of(
                    &u.update_id,
                    arrived.get(u.update_id.as_str()).map_or("", String::as_str),
                );
                counts.add(state);
                per_update[i].add(state);
                match state {
                    UpdateState::Failed => failed.push(u.update_id.clone()),
                    UpdateState::Needed => needed.push(u.update_id.clone()),
                    _ => {}
                }
            }
            out.push(ComputerCompliance {
                name: c.dns_name,
                groups: c
                    .groups
                    .iter()
                    .map(|g| group_names.get(g).cloned().unwrap_or_else(|| g.to_string()))
                    .collect(),
                computer_id: c.computer_id,
                last_contact_at: c.last_contact_at,
                last_sync_at: c.last_sync_at,
                last_report_at: c.last_report_at,
                counts,
                failed,
                needed,
            });
        }
        let updates = updates
            .into_iter()
            .zip(per_update)
            .filter(|(u, n)| {
                u.approval == crate::store::ApprovalStatus::Approved
                    || n.needed + n.failed + n.installed + n.installed_pending_reboot > 0
            })
            .map(|(u, counts)| UpdateCompliance {
                update_id: u.update_id,
                kb_article: u.kb_article,
                title: u.title,
                classification: u.classification,
                approval: u.approval,
                counts,
            })
            .collect();
        Ok(ComplianceReport {
            generated_at: crate::store::now_rfc3339(),
            group,
            computers: out,
            updates,
        })
    }
}
