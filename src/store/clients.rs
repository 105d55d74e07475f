//! The rows of the server side: target groups, computers, approvals, declines, reported events, and
//! what the server writes as clients talk to it. (The SQL that reads and writes them is in
//! `sqlite/clients.rs`.)

use super::*;
use crate::admin::Action;
use crate::ids::{ComputerId, GroupId, UpdateId};
use serde::Serialize;

pub const ALL_COMPUTERS: &str = "a0a08746-4dbe-4a37-9adf-9e7652c0b421";

pub const UNASSIGNED_COMPUTERS: &str = "b73ca6ed-5727-47f3-84de-015e03f6a88a";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetGroup {
    pub group_id: GroupId,
    pub name: String,
    pub parent_id: Option<GroupId>,
    pub is_builtin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComputerRecord {
    pub computer_id: ComputerId,
    pub dns_name: String,
    pub requested_groups: Option<String>,
    pub os_description: Option<String>,
    pub registered: bool,
    pub groups: Vec<GroupId>,
    pub first_seen_at: String,
    pub last_contact_at: String,
    pub last_sync_at: Option<String>,
    pub last_report_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub approval_id: i32,
    pub deployment_guid: String,
    pub update_id: UpdateId,
    pub group_id: GroupId,
    pub action: Action,
    pub deadline: Option<String>,
    pub admin: Option<String>,
    pub changed_at: String,
    pub changed_stamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decline {
    pub update_id: UpdateId,
    pub declined_at: String,
    pub changed_stamp: i64,
}

/// One event a client reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    pub event_instance_id: String,
    pub computer_id: ComputerId,
    pub event_id: i32,
    pub source_id: i32,
    pub update_id: String,
    pub revision_number: i32,
    pub win32_hresult: i64,
    pub time_at_target: String,
    pub app_name: Option<String>,
    pub replacement_strings: Vec<String>,
    pub misc_data: Vec<String>,
}

impl EventRecord {
    /// About what the record holds in memory, for the server's memory budget.
    pub fn approximate_bytes(&self) -> usize {
        let strings = self
            .replacement_strings
            .iter()
            .chain(&self.misc_data)
            .map(|s| s.len() + 24)
            .sum::<usize>();
        256 + self.event_instance_id.len()
            + self.computer_id.len()
            + self.update_id.len()
            + self.time_at_target.len()
            + self.app_name.as_ref().map_or(0, String::len)
            + strings
    }
}

/// What the server writes as clients talk to it (batched on one writer thread).
#[derive(Debug, Clone)]
pub enum ClientWrite {
    /// GetAuthorizationCookie: the computer exists, with its name and requested groups.
    Contact {
        computer_id: ComputerId,
        dns_name: String,
        requested_groups: Vec<crate::store::GroupName>,
    },
    /// RegisterComputer: what the client says about itself (name → text; a name given twice
    /// keeps its last text).
    Register {
        computer_id: ComputerId,
        info: Vec<(String, String)>,
        os_description: Option<String>,
    },
    Synced {
        computer_id: ComputerId,
    },
    /// DssAuth: a downstream server presented itself.
    Downstream {
        server_id: String,
        name: String,
    },
    Events {
        computer_id: ComputerId,
        events: Vec<EventRecord>,
    },
}

/// A batch of client writes as an engine writes it: the writes that create or describe a row
/// one at a time, in the order given, then what every contact and report of the batch adds, each
/// as one set (a front end under load writes hundreds of reports per batch, and one statement
/// for all of them costs the database a fraction of one statement each).
///
/// The order between the two parts does not matter: sync and report times are the batch's one
/// time, events are not tied to a computer row, and the newest events a computer keeps are the
/// same whether it is trimmed after each report or once after all of them.
#[derive(Debug, Default)]
pub struct WritePlan<'w> {
    /// Contacts, registrations and downstream servers, in the order given: a registration
    /// follows the contact that created its computer.
    pub in_order: Vec<RowWrite<'w>>,
    /// Computers that finished a sync, each once, sorted.
    pub synced: Vec<&'w ComputerId>,
    /// Computers that reported, each once, sorted.
    pub reported: Vec<&'w ComputerId>,
    /// Every reported event, in the order reported (the order they are numbered in).
    pub events: Vec<&'w EventRecord>,
    /// Computers whose events were added, each once, sorted: each keeps its newest
    /// `MAX_EVENTS_PER_COMPUTER`.
    pub trimmed: Vec<&'w ComputerId>,
}

/// A write of a plan that creates or describes a row, one at a time.
#[derive(Debug)]
pub enum RowWrite<'w> {
    Contact {
        computer_id: &'w ComputerId,
        dns_name: &'w str,
        requested_groups: &'w [GroupName],
    },
    /// What the client says about itself (name → text; a name given twice keeps its last text).
    Register {
        computer_id: &'w ComputerId,
        info: &'w [(String, String)],
        os_description: Option<&'w str>,
    },
    Downstream {
        server_id: &'w str,
        name: &'w str,
    },
}

impl<'w> WritePlan<'w> {
    pub fn new(writes: &'w [ClientWrite]) -> WritePlan<'w> {
        let mut plan = WritePlan::default();
        for write in writes {
            match write {
                ClientWrite::Synced { computer_id } => plan.synced.push(computer_id),
                ClientWrite::Events { computer_id, events } => {
                    plan.reported.push(computer_id);
                    plan.events.extend(events);
                    plan.trimmed.extend(events.iter().map(|e| &e.computer_id));
                }
                ClientWrite::Contact { computer_id, dns_name, requested_groups } => plan
                    .in_order
                    .push(RowWrite::Contact { computer_id, dns_name, requested_groups }),
                ClientWrite::Register { computer_id, info, os_description } => {
                    let os_description = os_description.as_deref();
                    plan.in_order.push(RowWrite::Register { computer_id, info, os_description })
                }
                ClientWrite::Downstream { server_id, name } => {
                    plan.in_order.push(RowWrite::Downstream { server_id, name })
                }
            }
        }
        for ids in [&mut plan.synced, &mut plan.reported, &mut plan.trimmed] {
            ids.sort_unstable();
            ids.dedup();
        }
        plan
    }
}

/// Whether a computer's events are to be trimmed to its newest [`MAX_EVENTS_PER_COMPUTER`], given
/// how many it has at most after a report (`None`: the store keeps no count for it, as for a
/// computer removed while its reports were on their way).
pub fn over_the_event_limit(events_at_most: Option<i64>) -> bool {
    events_at_most.is_none_or(|n| n > MAX_EVENTS_PER_COMPUTER as i64)
}

/// Events kept per computer (the newest). Years of a real client's reports; compliance reads the
/// newest status report and what followed it.
pub const MAX_EVENTS_PER_COMPUTER: usize = 10_000;

#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub server_id: String,
    pub cookie_key: [u8; 32],
    /// RFC 3339; clients echo it back in GetCookie.
    pub config_last_change: String,
}

/// The server side: groups, computers, stamps, approvals, declines, the server identity, client activity.
pub trait ClientStorage {
    fn groups(&self) -> StoreResult<Vec<TargetGroup>>;

    /// A group by name (case-insensitive) or GUID.
    fn group(&self, name_or_id: &str) -> StoreResult<Option<TargetGroup>>;

    fn computers(&self) -> StoreResult<Vec<ComputerRecord>>;

    /// One computer, with its groups.
    fn computer(&self, computer_id: &str) -> StoreResult<Option<ComputerRecord>>;

    /// The counter every approval or decline change advances (clients and the server's
    /// caches compare it).
    fn deployment_stamp(&self) -> StoreResult<i64>;

    fn catalog_stamp(&self) -> StoreResult<i64>;

    fn approvals(&self) -> StoreResult<Vec<Approval>>;

    fn declines(&self) -> StoreResult<Vec<Decline>>;

    /// Every approval change (approved, removed, declined) with its stamp.
    fn approval_change_log(&self) -> StoreResult<Vec<(i64, String)>>;

    /// Applies what the server recorded about clients, in one transaction. The transaction takes
    /// the write lock first (IMMEDIATE): one that read first and then found an import holding the
    /// lock would fail at once instead of waiting out the busy timeout.
    fn apply_client_writes(&mut self, writes: &[ClientWrite]) -> StoreResult<()>;

    /// Events a computer reported, newest first.
    fn events(&self, computer_id: Option<&str>) -> StoreResult<Vec<EventRecord>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> ComputerId {
        ComputerId::parse(text).unwrap()
    }

    fn report(computer: &str, instances: &[&str]) -> ClientWrite {
        let event = |instance: &&str| EventRecord {
            event_instance_id: instance.to_string(),
            computer_id: id(computer),
            event_id: 1,
            source_id: 1,
            update_id: "u".into(),
            revision_number: 1,
            win32_hresult: 0,
            time_at_target: String::new(),
            app_name: None,
            replacement_strings: Vec::new(),
            misc_data: Vec::new(),
        };
        ClientWrite::Events {
            computer_id: id(computer),
            events: instances.iter().map(event).collect(),
        }
    }

    #[test]
    fn a_plan_keeps_row_writes_in_order_and_gathers_syncs_and_reports() {
        let writes = [
            ClientWrite::Synced { computer_id: id("b") },
            report("b", &["b-1", "b-2"]),
            ClientWrite::Contact {
                computer_id: id("b"),
                dns_name: "b".into(),
                requested_groups: vec![],
            },
            ClientWrite::Synced { computer_id: id("a") },
            ClientWrite::Register { computer_id: id("b"), info: vec![], os_description: None },
            report("a", &["a-1"]),
            ClientWrite::Synced { computer_id: id("b") },
            report("b", &["b-3"]),
            ClientWrite::Downstream { server_id: "s".into(), name: "n".into() },
        ];
        let plan = WritePlan::new(&writes);
        let kinds: Vec<&str> = plan
            .in_order
            .iter()
            .map(|w| match w {
                RowWrite::Contact { .. } => "contact",
                RowWrite::Register { .. } => "register",
                RowWrite::Downstream { .. } => "downstream",
            })
            .collect();
        assert_eq!(kinds, ["contact", "register", "downstream"]);
        let ids =
            |ids: &[&ComputerId]| ids.iter().map(|c| c.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(ids(&plan.synced), ["a", "b"]);
        assert_eq!(ids(&plan.reported), ["a", "b"]);
        assert_eq!(ids(&plan.trimmed), ["a", "b"]);
        let events: Vec<&str> = plan.events.iter().map(|e| e.event_instance_id.as_str()).collect();
        assert_eq!(events, ["b-1", "b-2", "a-1", "b-3"], "in the order reported");
    }

    #[test]
    fn a_report_without_events_still_counts_as_a_report() {
        let writes = [report("a", &[])];
        let plan = WritePlan::new(&writes);
        assert_eq!(plan.reported.len(), 1);
        assert!(plan.events.is_empty() && plan.trimmed.is_empty());
    }
}
