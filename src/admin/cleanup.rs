//! Server cleanup as administrators run it (Invoke-WsusServerCleanup): declining superseded and
//! expired updates, deleting content no update needs, forgetting computers that stopped
//! reporting.
//!
//! Invariant: a plan is made first and changes nothing (`--dry-run` prints it). Carrying it out
//! works in small transactions (a batch of declines, one file at a time), so cleanup never holds
//! the database long and runs while the server serves.

use super::{AdminResult, AdminService, Refusal};
use crate::catalog::Sha1Digest;
use crate::compliance::{ComputerStatus, UpdateState};
use crate::ids::{ComputerId, UpdateId};
use crate::store::prelude::*;
use crate::store::{
    Approval, ApprovalState, CleanupOptions, CleanupPlan, ContentStore, DeclineReason,
    PlannedComputer, PlannedDecline, PlannedFile, Store, StoreError, UpdateFilter, UpdateSummary,
};
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, HashSet};

/// WSUS's waiting time: a superseded update approved in the last 30 days stays.
const SUPERSEDED_GRACE_DAYS: i64 = 30;
/// Declines per transaction.
const DECLINE_BATCH: usize = 200;
/// What `--obsolete-computers` accepts, in days.
pub const OBSOLETE_DAYS: std::ops::RangeInclusive<u32> = 1..=36_500;

impl AdminService<'_> {
    /// What cleanup would do with `options`; done as well when `run`.
    pub fn cleanup(&mut self, options: &CleanupOptions, run: bool) -> AdminResult<CleanupPlan> {
        let plan = plan(self.store, options, Utc::now())?;
        if run {
            carry_out(self.store, &plan)?;
        }
        Ok(plan)
    }
}

/// Decides what to clean, changing nothing.
fn plan(store: &Store, options: &CleanupOptions, now: DateTime<Utc>) -> AdminResult<CleanupPlan> {
    if let Some(days) = options.obsolete_computers_days
        && !OBSOLETE_DAYS.contains(&days)
    {
        return Err(Refusal::ObsoleteComputerDays { given: days }.into());
    }
    let mut plan = CleanupPlan::default();
    if options.decline_superseded || options.decline_expired {
        plan.declines = plan_declines(store, options, now)?;
    }
    if options.unneeded_content {
        plan.files = plan_files(store, &plan.declines, now)?;
        plan.bytes_freed = plan.files.iter().map(|f| f.size).sum();
    }
    if let Some(days) = options.obsolete_computers_days {
        let cutoff = timestamp(now - Duration::days(days.into()));
        for c in store.computers()? {
            if c.last_contact_at < cutoff {
                plan.computers.push(PlannedComputer {
                    computer_id: c.computer_id,
                    name: c.dns_name,
                    last_contact_at: c.last_contact_at,
                });
            }
        }
    }
    Ok(plan)
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What cleanup knows when it judges whether an update may be declined.
struct DeclineFacts<'a> {
    options: &'a CleanupOptions,
    /// UpdateID → when it was last approved for install.
    approved: HashMap<&'a str, &'a str>,
    /// UpdateID → the UpdateIDs of newest revisions that supersede it.
    superseders: HashMap<UpdateId, Vec<UpdateId>>,
    statuses: HashMap<String, ComputerStatus>,
    /// Approved after this (an RFC 3339 text): too recent to decline.
    grace: String,
}

fn plan_declines(
    store: &Store,
    options: &CleanupOptions,
    now: DateTime<Utc>,
) -> AdminResult<Vec<PlannedDecline>> {
    let updates = store.list_updates(&UpdateFilter {
        approval: Some(ApprovalState::AnyExceptDeclined),
        ..Default::default()
    })?;
    let approvals = store.approvals()?;
    let mut superseders: HashMap<UpdateId, Vec<UpdateId>> = HashMap::new();
    for (old, new) in store.supersedences()? {
        superseders.entry(old).or_default().push(new);
    }
    let facts = DeclineFacts {
        options,
        approved: newest_install_approvals(&approvals),
        superseders,
        statuses: store.computer_statuses()?,
        grace: timestamp(now - Duration::days(SUPERSEDED_GRACE_DAYS)),
    };
    Ok(updates
        .iter()
        .filter_map(|u| {
            let reason = facts.decline_reason(u)?;
            Some(PlannedDecline { update_id: u.update_id.clone(), title: u.title.clone(), reason })
        })
        .collect())
}

fn newest_install_approvals(approvals: &[Approval]) -> HashMap<&str, &str> {
    let mut newest: HashMap<&str, &str> = HashMap::new();
    for a in approvals.iter().filter(|a| a.action == crate::admin::Action::Install) {
        let at = newest.entry(a.update_id.as_str()).or_insert(a.changed_at.as_str());
        if a.changed_at.as_str() > *at {
            *at = a.changed_at.as_str();
        }
    }
    newest
}

impl DeclineFacts<'_> {
    /// Why cleanup declines `u`, if it does.
    fn decline_reason(&self, u: &UpdateSummary) -> Option<DeclineReason> {
        let approved = self.approved.get(u.update_id.as_str());
        let expired = u.is_expired();
        if self.options.decline_expired && expired && approved.is_none() {
            return Some(DeclineReason::Expired);
        }
        if !self.options.decline_superseded {
            return None;
        }
        // WSUS's rule: superseded by an approved update, not approved in the last 30 days, and
        // no computer reports that it needs it.
        let by = self.superseders.get(u.update_id.as_str())?;
        let approved_superseder = by.iter().find(|s| self.approved.contains_key(s.as_str()))?;
        if approved.is_some_and(|at| *at > self.grace.as_str()) {
            return None;
        }
        let needed = self.statuses.values().any(|s| {
            matches!(s.state_of(&u.update_id, ""), UpdateState::Needed | UpdateState::Failed)
        });
        (!needed).then(|| DeclineReason::SupersededBy { update_id: approved_superseder.clone() })
    }
}

/// Content no update needs once `declines` are made: files the store lists, and stray files
/// it does not.
fn plan_files(
    store: &Store,
    declines: &[PlannedDecline],
    now: DateTime<Utc>,
) -> AdminResult<Vec<PlannedFile>> {
    let declining: HashSet<&str> = declines.iter().map(|d| d.update_id.as_str()).collect();
    let needed = needed_files(store, &declining)?;
    let known = store.known_files()?;
    let content = store.content();
    let mut files: Vec<PlannedFile> = known
        .iter()
        .filter(|(sha1, (extension, _))| {
            !needed.contains(*sha1) && content.path(sha1, extension).exists()
        })
        .map(|(sha1, (extension, size))| PlannedFile {
            path: ContentStore::relative_path(sha1, extension),
            size: *size,
            known: true,
        })
        .collect();
    files.extend(stray_files(content, &known, now));
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Files some client may still download: those of newest revisions of updates that are not
/// declined (nor about to be), bundle members through their bundles.
fn needed_files(store: &Store, declining: &HashSet<&str>) -> AdminResult<HashSet<Sha1Digest>> {
    let declined: HashSet<UpdateId> = store.declines()?.into_iter().map(|d| d.update_id).collect();
    let gone = |u: &str| declined.contains(u) || declining.contains(u);
    let mut bundles_of: HashMap<UpdateId, Vec<UpdateId>> = HashMap::new();
    for (member, bundle) in store.bundle_memberships()? {
        bundles_of.entry(member).or_default().push(bundle);
    }
    let wanted = |update: &str| match bundles_of.get(update) {
        Some(bundles) => !gone(update) && bundles.iter().any(|b| !gone(b)),
        None => !gone(update),
    };
    Ok(store
        .files_of_newest_revisions()?
        .into_iter()
        .filter(|(_, update)| wanted(update))
        .map(|(sha1, _)| sha1)
        .collect())
}

/// Files in the content tree that look like content (`XX/<SHA1>.<ext>`) but that the store does
/// not list: left by an interrupted copy or put there by hand. Files younger than a day are left
/// alone: an import moves payloads into the tree just before it commits their rows.
fn stray_files(
    content: &ContentStore,
    known: &HashMap<Sha1Digest, (String, u64)>,
    now: DateTime<Utc>,
) -> Vec<PlannedFile> {
    let young = |m: &std::fs::Metadata| {
        m.modified().ok().map(DateTime::<Utc>::from).is_none_or(|t| now - t < Duration::days(1))
    };
    content
        .payload_files()
        .filter(|f| !known.contains_key(&f.sha1) && !young(&f.metadata))
        .map(|f| PlannedFile { path: f.relative, size: f.metadata.len(), known: false })
        .collect()
}

/// Carries out a plan, in small steps. What an import committed since the plan was made stays.
fn carry_out(store: &mut Store, plan: &CleanupPlan) -> AdminResult<()> {
    let ids: Vec<&UpdateId> = plan.declines.iter().map(|d| &d.update_id).collect();
    for batch in ids.chunks(DECLINE_BATCH) {
        let decline = |tx: &dyn DeploymentRows| {
            batch.iter().try_fold(0, |n, id| {
                Ok::<_, StoreError>(n + usize::from(tx.decline(id, Some("cleanup"))?))
            })
        };
        store.administer("declining", decline, |n| *n > 0)?;
    }
    if !plan.files.is_empty() {
        let needed_now = needed_files(store, &HashSet::new())?;
        let known_now = store.known_files()?;
        for f in &plan.files {
            let sha1 = f
                .path
                .rsplit('/')
                .next()
                .and_then(|n| n.split('.').next())
                .and_then(|h| Sha1Digest::from_hex(h).ok());
            if sha1.is_some_and(|d| {
                needed_now.contains(&d) || (!f.known && known_now.contains_key(&d))
            }) {
                continue;
            }
            if f.known
                && let Some(sha1) = sha1
            {
                // Marked missing before the bytes go: the store never claims a file it lacks.
                store.mark_file_present(&sha1, false)?;
            }
            let path = store.content().root().join(&f.path);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::Io { path, source: e }.into()),
            }
        }
    }
    let computers: Vec<ComputerId> = plan.computers.iter().map(|c| c.computer_id.clone()).collect();
    if !computers.is_empty() {
        super::groups::forget_computers(store, &computers)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two updates of the table: `old`, and `new`, which supersedes it.
    fn id(name: &str) -> UpdateId {
        let last = if name == "old" { '1' } else { '2' };
        UpdateId::parse(&format!("00000000-0000-0000-0000-00000000000{last}")).unwrap()
    }

    fn update(id: &UpdateId, expired: bool) -> UpdateSummary {
        UpdateSummary {
            revision_id: 1,
            update_id: id.clone(),
            revision_number: 200,
            update_type: "Software".into(),
            category_kind: None,
            title: None,
            kb_article: None,
            msrc_severity: None,
            publication_state: expired.then(|| "Expired".to_string()),
            is_bundle: false,
            creation_date: None,
            classification: None,
            products: Vec::new(),
            approval: crate::store::ApprovalStatus::NotApproved,
            superseded: false,
        }
    }

    /// WSUS's decline rules, one case per line: (what is declined, the update expired, when it
    /// was approved for install, superseded by, the superseder approved, a computer's state of
    /// it) → the reason, if any.
    #[test]
    fn the_decline_rules() {
        type Case = (&'static str, bool, Option<&'static str>, bool, Option<UpdateState>);
        let (old, recent) = ("2026-01-01T00:00:00Z", "2026-11-30T00:00:00Z");
        let expired = Some(DeclineReason::Expired);
        let (old_id, new_id) = (id("old"), id("new"));
        let superseded = Some(DeclineReason::SupersededBy { update_id: new_id.clone() });
        let cases: [(Case, Option<DeclineReason>); 10] = [
            (("expired, not approved", true, None, false, None), expired.clone()),
            (("expired, approved", true, Some(old), false, None), None),
            (("expired, approved, superseded", true, Some(old), true, None), superseded.clone()),
            (("superseded by an approved update", false, None, true, None), superseded.clone()),
            (("approved long ago", false, Some(old), true, None), superseded.clone()),
            (("approved in the last 30 days", false, Some(recent), true, None), None),
            (("needed by a computer", false, None, true, Some(UpdateState::Needed)), None),
            (("failed on a computer", false, None, true, Some(UpdateState::Failed)), None),
            (("installed everywhere", false, None, true, Some(UpdateState::Installed)), superseded),
            (("neither", false, None, false, None), None),
        ];
        let now = DateTime::parse_from_rfc3339("2026-12-05T00:00:00Z").unwrap().to_utc();
        let options = CleanupOptions {
            decline_superseded: true,
            decline_expired: true,
            ..Default::default()
        };
        for ((what, is_expired, approved_at, superseder_approved, state), expected) in cases {
            let mut approved = HashMap::from([(new_id.as_str(), old)]);
            if !superseder_approved {
                approved.clear();
            }
            if let Some(at) = approved_at {
                approved.insert(old_id.as_str(), at);
            }
            let statuses = state.map(|s| ComputerStatus {
                last_status_received: None,
                states: HashMap::from([(old_id.to_string(), s)]),
            });
            let facts = DeclineFacts {
                options: &options,
                approved,
                superseders: HashMap::from([(old_id.clone(), vec![new_id.clone()])]),
                statuses: statuses.into_iter().map(|s| ("pc".to_string(), s)).collect(),
                grace: timestamp(now - Duration::days(SUPERSEDED_GRACE_DAYS)),
            };
            assert_eq!(facts.decline_reason(&update(&old_id, is_expired)), expected, "{what}");
        }
        let only_expired = CleanupOptions { decline_expired: true, ..Default::default() };
        let facts = DeclineFacts {
            options: &only_expired,
            approved: HashMap::from([(new_id.as_str(), old)]),
            superseders: HashMap::from([(old_id.clone(), vec![new_id.clone()])]),
            statuses: HashMap::new(),
            grace: timestamp(now),
        };
        assert_eq!(facts.decline_reason(&update(&old_id, false)), None, "superseding is not asked");
    }

    #[test]
    fn the_obsolete_computer_days_are_checked_before_anything_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path()).unwrap();
        for (days, refused) in [(0, true), (1, false), (36_500, false), (36_501, true)] {
            let options =
                CleanupOptions { obsolete_computers_days: Some(days), ..Default::default() };
            let result = plan(&store, &options, Utc::now());
            assert_eq!(result.is_err(), refused, "{days}");
            if refused {
                let err = result.unwrap_err().to_string();
                assert!(err.contains("use 1 to 36500"), "{err}");
            }
        }
    }
}
