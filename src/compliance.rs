//! Update states per computer, derived from the events clients report (WSUS-PROTOCOL.md §3.5):
//! the status report (event 156) lists what the agent found applicable, installed, pending a
//! reboot or failed; install and uninstall events after it move single updates on.
//!
//! Invariant: pure. Events in, states out; no store, no clock.

use serde::Serialize;
use std::collections::HashMap;

/// WSUS's update installation states, as its console and `Get-WsusComputer -UpdateInstallationStatus`
/// name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum UpdateState {
    Installed,
    InstalledPendingReboot,
    Needed,
    Failed,
    NotApplicable,
    Unknown,
}

impl UpdateState {
    pub const ALL: [UpdateState; 6] = [
        UpdateState::Installed,
        UpdateState::InstalledPendingReboot,
        UpdateState::Needed,
        UpdateState::Failed,
        UpdateState::NotApplicable,
        UpdateState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Installed => "Installed",
            UpdateState::InstalledPendingReboot => "InstalledPendingReboot",
            UpdateState::Needed => "Needed",
            UpdateState::Failed => "Failed",
            UpdateState::NotApplicable => "NotApplicable",
            UpdateState::Unknown => "Unknown",
        }
    }

    /// `needed`, `failed`, `installed-pending-reboot`... as command-line filters spell them.
    pub fn parse(text: &str) -> Option<UpdateState> {
        let t: String = text
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        UpdateState::ALL.into_iter().find(|s| s.as_str().to_ascii_lowercase() == t)
    }
}

impl std::fmt::Display for UpdateState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The facts of one reported event that matter for states.
#[derive(Debug, Clone, Copy)]
pub struct StatusEvent<'a> {
    pub event_id: i32,
    /// RFC 3339 time at the client (orders the events).
    pub time_at_target: &'a str,
    /// The update the event is about (all zeros when none).
    pub update_id: &'a str,
    pub misc_data: &'a [String],
    /// RFC 3339 time the server received it (the server's clock, comparable with when updates
    /// arrived in the store).
    pub received_at: &'a str,
}

/// What one computer's events say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComputerStatus {
    /// When the newest status report (event 156) arrived (server time): updates that were in the
    /// store by then and that it does not list are not applicable.
    pub last_status_received: Option<String>,
    /// Lower-case UpdateID → state, for every update an event named.
    pub states: HashMap<String, UpdateState>,
}

impl ComputerStatus {
    /// The state of an update for this computer; `arrived_at` is when the update reached the
    /// store (server time): a status report older than that cannot speak for it (Unknown, as
    /// WSUS shows updates computers have not reported on yet).
    pub fn state_of(&self, update_id: &str, arrived_at: &str) -> UpdateState {
        // Called for every computer × update of a report: UpdateIDs from the store are
        // lower-case already, so only others pay for a lower-cased copy.
        let state = if update_id.bytes().any(|b| b.is_ascii_uppercase()) {
            self.states.get(&update_id.to_ascii_lowercase())
        } else {
            self.states.get(update_id)
        };
        match state {
            Some(s) => *s,
            None if self.last_status_received.as_deref().is_some_and(|t| t >= arrived_at) => {
                UpdateState::NotApplicable
            }
            None => UpdateState::Unknown,
        }
    }
}

/// Folds a computer's events, oldest first, into its update states.
pub fn computer_status<'a>(events: impl IntoIterator<Item = StatusEvent<'a>>) -> ComputerStatus {
    let mut events: Vec<StatusEvent<'a>> = events.into_iter().collect();
    // By the client's time, parsed (formats vary: fractions, offsets), else the server's;
    // stable, so events with one time keep the order they arrived in.
    let at = |e: &StatusEvent<'_>| {
        chrono::DateTime::parse_from_rfc3339(e.time_at_target)
            .or_else(|_| chrono::DateTime::parse_from_rfc3339(e.received_at))
            .map(|t| t.timestamp_micros())
            .unwrap_or(i64::MIN)
    };
    events.sort_by_key(at);
    let mut status = ComputerStatus::default();
    for e in events {
        let update = e.update_id.to_ascii_lowercase();
        let has_update = !update.is_empty() && update.bytes().any(|b| b != b'0' && b != b'-');
        match e.event_id {
            156 => {
                status.last_status_received = Some(e.received_at.to_string());
                status.states.clear();
                // Later lists win for an id in two (a pending reboot is also "installed").
                for (tag, state) in [
                    ("U", UpdateState::Needed),
                    ("h", UpdateState::Needed),
                    ("V", UpdateState::Installed),
                    ("W", UpdateState::InstalledPendingReboot),
                    ("g", UpdateState::Failed),
                ] {
                    for id in status_list(e.misc_data, tag) {
                        status.states.insert(id, state);
                    }
                }
            }
            // Installation succeeded; scheduled install succeeded; succeeded after the reboot.
            183 | 190 | 203 if has_update => {
                status.states.insert(update, UpdateState::Installed);
            }
            // Succeeded, restart required (184, 191); install pending the reboot (201).
            184 | 191 | 201 if has_update => {
                status.states.insert(update, UpdateState::InstalledPendingReboot);
            }
            // Installation failed; scheduled install failed; failed after the reboot.
            182 | 195 | 204 if has_update => {
                status.states.insert(update, UpdateState::Failed);
            }
            // Uninstalled: applicable again until the next status report says otherwise.
            222 if has_update => {
                status.states.insert(update, UpdateState::Needed);
            }
            // The restart happened: what waited for it is installed.
            202 => {
                for s in status.states.values_mut() {
                    if *s == UpdateState::InstalledPendingReboot {
                        *s = UpdateState::Installed;
                    }
                }
            }
            _ => {}
        }
    }
    status
}

/// The UpdateIDs of one status list (`U=ID;ID;...`) of an event 156, lower case.
fn status_list<'a>(misc_data: &'a [String], tag: &'a str) -> impl Iterator<Item = String> + 'a {
    misc_data
        .iter()
        .filter_map(move |m| m.strip_prefix(tag).and_then(|rest| rest.strip_prefix('=')))
        .flat_map(|list| list.split(';'))
        .map(|id| id.trim().to_ascii_lowercase())
        .filter(|id| !id.is_empty())
}

/// How many updates are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    pub installed: u64,
    pub installed_pending_reboot: u64,
    pub needed: u64,
    pub failed: u64,
    pub not_applicable: u64,
    pub unknown: u64,
}

impl StateCounts {
    pub fn add(&mut self, state: UpdateState) {
        match state {
            UpdateState::Installed => self.installed += 1,
            UpdateState::InstalledPendingReboot => self.installed_pending_reboot += 1,
            UpdateState::Needed => self.needed += 1,
            UpdateState::Failed => self.failed += 1,
            UpdateState::NotApplicable => self.not_applicable += 1,
            UpdateState::Unknown => self.unknown += 1,
        }
    }

    pub fn get(&self, state: UpdateState) -> u64 {
        match state {
            UpdateState::Installed => self.installed,
            UpdateState::InstalledPendingReboot => self.installed_pending_reboot,
            UpdateState::Needed => self.needed,
            UpdateState::Failed => self.failed,
            UpdateState::NotApplicable => self.not_applicable,
            UpdateState::Unknown => self.unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3A474CB0-CC8B-4AB4-A9FA-92C1477B61C7";
    const B: &str = "3FF4FFD6-0358-4592-BB16-14B3D38A2CB0";
    const C: &str = "725139C2-EA1B-4EA2-AEFF-79256D5A4F68";
    const NONE: &str = "00000000-0000-0000-0000-000000000000";

    fn event<'a>(id: i32, time: &'a str, update: &'a str, misc: &'a [String]) -> StatusEvent<'a> {
        StatusEvent {
            event_id: id,
            time_at_target: time,
            update_id: update,
            misc_data: misc,
            received_at: time,
        }
    }

    /// Every update of these cases reached the store before the reports.
    const ARRIVED: &str = "2026-10-01T00:00:00Z";

    /// (events as (id, time, update, misc), expected (update, state) pairs).
    #[test]
    fn states_follow_status_reports_and_the_events_after_them() {
        let lists = vec![format!("U={A};{B}"), format!("V={C}"), "G=1507.2601.30012.0".to_string()];
        let later_lists = vec![format!("U={B}"), format!("W={A}")];
        let a_lower = A.to_lowercase();
        type Case<'a> = (Vec<StatusEvent<'a>>, Vec<(&'a str, UpdateState)>);
        let cases: Vec<Case<'_>> = vec![
            (vec![], vec![(A, UpdateState::Unknown)]),
            (
                vec![event(156, "2026-10-06T19:31:57Z", NONE, &lists)],
                vec![
                    (A, UpdateState::Needed),
                    (B, UpdateState::Needed),
                    (C, UpdateState::Installed),
                    (NONE, UpdateState::NotApplicable),
                ],
            ),
            // An install failure after the report; then a success with a restart; then the restart.
            (
                vec![
                    event(156, "2026-10-06T19:31:57Z", NONE, &lists),
                    event(182, "2026-10-06T19:40:00Z", &a_lower, &[]),
                ],
                vec![(A, UpdateState::Failed), (B, UpdateState::Needed)],
            ),
            (
                vec![
                    event(184, "2026-10-06T19:45:00Z", A, &[]),
                    event(156, "2026-10-06T19:31:57Z", NONE, &lists),
                    event(202, "2026-10-06T19:50:00Z", NONE, &[]),
                ],
                vec![(A, UpdateState::Installed)],
            ),
            // A newer status report replaces everything an older one said.
            (
                vec![
                    event(156, "2026-10-06T19:31:57Z", NONE, &lists),
                    event(156, "2026-10-07T08:00:00Z", NONE, &later_lists),
                ],
                vec![
                    (A, UpdateState::InstalledPendingReboot),
                    (B, UpdateState::Needed),
                    (C, UpdateState::NotApplicable),
                ],
            ),
            // Events about no update (detection, download started) change nothing.
            (
                vec![
                    event(147, "2026-10-06T19:00:00Z", NONE, &[]),
                    event(167, "2026-10-06T19:01:00Z", A, &[]),
                ],
                vec![(A, UpdateState::Unknown)],
            ),
            (vec![event(222, "2026-10-06T19:00:00Z", C, &[])], vec![(C, UpdateState::Needed)]),
            // Times in other shapes order by what they mean: 21:00+02:00 is before 19:30Z.
            (
                vec![
                    event(182, "2026-10-06T19:30:00.5Z", A, &[]),
                    event(156, "2026-10-06T21:00:00+02:00", NONE, &lists),
                ],
                vec![(A, UpdateState::Failed)],
            ),
        ];
        for (i, (events, expected)) in cases.into_iter().enumerate() {
            let status = computer_status(events);
            for (update, state) in expected {
                assert_eq!(status.state_of(update, ARRIVED), state, "case {i}, {update}");
            }
        }
    }

    /// An update that arrived after the newest status report is Unknown, not Not applicable.
    #[test]
    fn updates_newer_than_the_status_report_are_unknown() {
        let lists = vec![format!("U={A}")];
        let status = computer_status([event(156, "2026-10-06T19:31:57Z", NONE, &lists)]);
        assert_eq!(status.state_of(B, ARRIVED), UpdateState::NotApplicable);
        assert_eq!(status.state_of(B, "2026-10-07T00:00:00Z"), UpdateState::Unknown);
        assert_eq!(
            status.state_of(A, "2026-10-07T00:00:00Z"),
            UpdateState::Needed,
            "listed updates keep their state"
        );
    }

    #[test]
    fn state_names_parse_as_filters_write_them() {
        assert_eq!(UpdateState::parse("needed"), Some(UpdateState::Needed));
        assert_eq!(
            UpdateState::parse("installed-pending-reboot"),
            Some(UpdateState::InstalledPendingReboot)
        );
        assert_eq!(UpdateState::parse("NotApplicable"), Some(UpdateState::NotApplicable));
        assert_eq!(UpdateState::parse("sometimes"), None);
    }
}
