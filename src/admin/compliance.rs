//! The compliance report: each computer's update states (folded from its events by
//! `crate::compliance`) over the updates an administrator manages, rolled up per computer and
//! per update, as `ferry report`, the console and the API show it.

use crate::compliance::{ComputerStatus, StateCounts, UpdateState};
use crate::ids::GroupId;
use crate::store::{
    ApprovalState, ApprovalStatus, ComplianceReport, ComputerCompliance, ComputerRecord,
    PublishedBy, Store, StoreResult, UpdateCompliance, UpdateFilter, now_rfc3339,
};
use std::collections::HashMap;

/// The vendor and product of each update published here (`ferry publish`), by update id.
pub fn published_by(store: &Store) -> StoreResult<HashMap<String, PublishedBy>> {
    Ok(store
        .published()?
        .into_iter()
        .map(|p| (p.update_id.to_string(), PublishedBy { vendor: p.vendor, product: p.product }))
        .collect())
}

/// The report over `computers` (a group's, or one), `group` naming the group it is for.
pub fn compliance_report(
    store: &Store,
    computers: Vec<ComputerRecord>,
    group: Option<String>,
) -> StoreResult<ComplianceReport> {
    let statuses = store.computer_statuses()?;
    let arrived = store.arrival_times()?;
    let updates = store.list_updates(&UpdateFilter {
        approval: Some(ApprovalState::AnyExceptDeclined),
        ..Default::default()
    })?;
    let mut published = published_by(store)?;
    let group_names: HashMap<GroupId, String> =
        store.groups()?.into_iter().map(|g| (g.group_id, g.name)).collect();
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
            u.approval == ApprovalStatus::Approved
                || n.needed + n.failed + n.installed + n.installed_pending_reboot > 0
        })
        .map(|(u, counts)| UpdateCompliance {
            published: published.remove(u.update_id.as_str()),
            update_id: u.update_id,
            kb_article: u.kb_article,
            title: u.title,
            classification: u.classification,
            approval: u.approval,
            counts,
        })
        .collect();
    Ok(ComplianceReport { generated_at: now_rfc3339(), group, computers: out, updates })
}
