//! Server cleanup (Invoke-WsusServerCleanup): declining superseded and expired updates, deleting
//! content no update needs, forgetting computers that stopped reporting.
//!
//! Invariant: every step works in small transactions (a batch of declines, one file at a time),
//! so cleanup never holds the database long and runs while the server serves. A plan is computed
//! first; `--dry-run` prints the plan and changes nothing.

use crate::catalog::Sha1Digest;
use crate::compliance::UpdateState;
use crate::store::cleanup::*;
use crate::store::prelude::*;
use crate::store::{ApprovalState, ContentStore, SqliteStore, StoreResult, UpdateFilter};
use std::collections::{HashMap, HashSet};

/// WSUS's waiting time: a superseded update approved in the last 30 days stays.
const SUPERSEDED_GRACE_DAYS: i64 = 30;
const DECLINE_BATCH: usize = 200;

impl SqliteStore {
    /// UpdateID → the UpdateIDs of newest revisions that supersede it.
    fn superseding_updates(&self) -> StoreResult<HashMap<String, Vec<String>>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.superseded_update_id, r.update_id FROM supersedences s JOIN revisions r ON r.revision_id = s.revision_id
                 WHERE r.is_latest = 1",
            )
            .map_err(|e| self.err("listing supersedence", e))?;
        let rows: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|r| r.collect())
            .map_err(|e| self.err("listing supersedence", e))?;
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (old, new) in rows {
            map.entry(old).or_default().push(new);
        }
        Ok(map)
    }

    /// Files some client may still download: those of newest revisions of updates that are not
    /// declined (nor about to be), bundle members through their bundles.
    fn needed_files(&self, declining: &HashSet<&str>) -> StoreResult<HashSet<[u8; 20]>> {
        let declined: HashSet<String> = self.declines()?.into_iter().map(|d| d.update_id).collect();
        let gone = |u: &str| declined.contains(u) || declining.contains(u);
        // Member UpdateID → its bundles' UpdateIDs.
        let mut parents: HashMap<String, Vec<String>> = HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT DISTINCT b.member_update_id, r.update_id FROM bundle_members b JOIN revisions r ON r.revision_id = b.revision_id WHERE r.is_latest = 1")
                .map_err(|e| self.err("listing bundles", e))?;
            let rows: Vec<(String, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|r| r.collect())
                .map_err(|e| self.err("listing bundles", e))?;
            for (member, bundle) in rows {
                parents.entry(member).or_default().push(bundle);
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT rf.sha1, r.update_id FROM revision_files rf JOIN revisions r ON r.revision_id = rf.revision_id WHERE r.is_latest = 1")
            .map_err(|e| self.err("listing files", e))?;
        let rows: Vec<(Vec<u8>, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|r| r.collect())
            .map_err(|e| self.err("listing files", e))?;
        let mut needed = HashSet::new();
        for (sha1, update) in rows {
            let wanted = match parents.get(&update) {
                Some(bundles) => !gone(&update) && bundles.iter().any(|b| !gone(b)),
                None => !gone(&update),
            };
            if wanted && let Ok(sha1) = <[u8; 20]>::try_from(sha1.as_slice()) {
                needed.insert(sha1);
            }
        }
        Ok(needed)
    }

    /// Every file the store lists: SHA-1 → (extension, size).
    fn known_files(&self) -> StoreResult<HashMap<[u8; 20], (String, u64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT sha1, extension, size FROM files")
            .map_err(|e| self.err("listing files", e))?;
        let rows: Vec<(Vec<u8>, String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|r| r.collect())
            .map_err(|e| self.err("listing files", e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(s, e, n)| {
                <[u8; 20]>::try_from(s.as_slice()).ok().map(|s| (s, (e, n as u64)))
            })
            .collect())
    }
}

/// Files in the content tree that look like content (`XX/<SHA1>.<ext>`) but that the store does
/// not list: left by an interrupted copy or put there by hand.
/// Files younger than a day are left alone: an import moves payloads into the tree just before
/// it commits their rows.
fn stray_files(
    content: &ContentStore,
    known: &HashMap<[u8; 20], (String, u64)>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, u64)> {
    let young = |m: &std::fs::Metadata| {
        m.modified()
            .ok()
            .map(chrono::DateTime::<chrono::Utc>::from)
            .is_none_or(|t| now - t < chrono::Duration::days(1))
    };
    let mut out = Vec::new();
    let Ok(folders) = std::fs::read_dir(content.root()) else { return out };
    for folder in folders.flatten() {
        let name = folder.file_name().to_string_lossy().into_owned();
        if name.len() != 2 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(folder.path()) else { continue };
        for file in files.flatten() {
            let file_name = file.file_name().to_string_lossy().into_owned();
            let Some(hex) = file_name.split('.').next().filter(|h| h.len() == 40) else { continue };
            let Ok(sha1) = Sha1Digest::from_hex(hex) else { continue };
            if !known.contains_key(&sha1.0)
                && file.metadata().is_ok_and(|m| m.is_file() && !young(&m))
            {
                out.push((
                    format!("{name}/{file_name}"),
                    file.metadata().map(|m| m.len()).unwrap_or(0),
                ));
            }
        }
    }
    out
}

impl CleanupStorage for SqliteStore {
    fn plan_cleanup(
        &self,
        options: &CleanupOptions,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<CleanupPlan> {
        let mut plan = CleanupPlan::default();
        let updates = self.list_updates(&UpdateFilter {
            approval: Some(ApprovalState::AnyExceptDeclined),
            ..Default::default()
        })?;
        let approvals = self.approvals()?;
        if options.decline_superseded || options.decline_expired {
            let approved: HashMap<&str, &str> = approvals
                .iter()
                .filter(|a| a.action == crate::admin::Action::Install)
                .map(|a| (a.update_id.as_str(), a.changed_at.as_str()))
                .fold(HashMap::new(), |mut m, (u, at)| {
                    let e = m.entry(u).or_insert(at);
                    if at > *e {
                        *e = at;
                    }
                    m
                });
            let superseders = self.superseding_updates()?;
            let statuses = self.computer_statuses()?;
            let grace = (now - chrono::Duration::days(SUPERSEDED_GRACE_DAYS))
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            for u in &updates {
                let expired = u.publication_state.as_deref() == Some("Expired");
                if options.decline_expired
                    && expired
                    && !approved.contains_key(u.update_id.as_str())
                {
                    plan.declines.push(PlannedDecline {
                        update_id: u.update_id.clone(),
                        title: u.title.clone(),
                        reason: DeclineReason::Expired,
                    });
                    continue;
                }
                if !options.decline_superseded {
                    continue;
                }
                // WSUS's rule: superseded by an approved update, not approved in the last 30
                // days, and no computer reports that it needs it.
                let Some(by) = superseders.get(&u.update_id) else { continue };
                let Some(approved_superseder) =
                    by.iter().find(|s| approved.contains_key(s.as_str()))
                else {
                    continue;
                };
                if approved.get(u.update_id.as_str()).is_some_and(|at| *at > grace.as_str()) {
                    continue;
                }
                let needed = statuses.values().any(|s| {
                    matches!(
                        s.state_of(&u.update_id, ""),
                        UpdateState::Needed | UpdateState::Failed
                    )
                });
                if needed {
                    continue;
                }
                plan.declines.push(PlannedDecline {
                    update_id: u.update_id.clone(),
                    title: u.title.clone(),
                    reason: DeclineReason::SupersededBy {
                        update_id: approved_superseder.to_string(),
                    },
                });
            }
        }
        if options.unneeded_content {
            let declining: HashSet<&str> =
                plan.declines.iter().map(|d| d.update_id.as_str()).collect();
            let needed = self.needed_files(&declining)?;
            let known = self.known_files()?;
            let content = self.content().clone();
            for (sha1, (extension, size)) in &known {
                if needed.contains(sha1) {
                    continue;
                }
                let digest = Sha1Digest(*sha1);
                if content.path(&digest, extension).exists() {
                    plan.files.push(PlannedFile {
                        path: ContentStore::relative_path(&digest, extension),
                        size: *size,
                        known: true,
                    });
                }
            }
            for (path, size) in stray_files(&content, &known, now) {
                plan.files.push(PlannedFile { path, size, known: false });
            }
            plan.files.sort_by(|a, b| a.path.cmp(&b.path));
            plan.bytes_freed = plan.files.iter().map(|f| f.size).sum();
        }
        if let Some(days) = options.obsolete_computers_days {
            if !(1..=36_500).contains(&days) {
                return Err(crate::store::StoreError::Refused(format!(
                    "obsolete computers: {days} days; use 1 to 36500 (WSUS uses 30)"
                )));
            }
            let cutoff = (now - chrono::Duration::days(days.into()))
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            for c in self.computers()? {
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

    fn run_cleanup(&mut self, plan: &CleanupPlan) -> StoreResult<()> {
        let ids: Vec<String> = plan.declines.iter().map(|d| d.update_id.clone()).collect();
        for batch in ids.chunks(DECLINE_BATCH) {
            let decline = |tx: &dyn crate::store::DeploymentRows| {
                batch.iter().try_fold(0, |n, id| {
                    Ok::<_, crate::store::StoreError>(
                        n + usize::from(tx.decline(id, Some("cleanup"))?),
                    )
                })
            };
            self.administer("declining", decline, |n| *n > 0)?;
        }
        let content = self.content().clone();
        // What an import committed since the plan was made stays.
        let needed_now = if plan.files.is_empty() {
            HashSet::new()
        } else {
            self.needed_files(&HashSet::new())?
        };
        let known_now = if plan.files.is_empty() { HashMap::new() } else { self.known_files()? };
        for f in &plan.files {
            let path = content.root().join(&f.path);
            let sha1 = f
                .path
                .rsplit('/')
                .next()
                .and_then(|n| n.split('.').next())
                .and_then(|h| Sha1Digest::from_hex(h).ok());
            if sha1.is_some_and(|d| {
                needed_now.contains(&d.0) || (!f.known && known_now.contains_key(&d.0))
            }) {
                continue;
            }
            if f.known
                && let Some(sha1) = sha1
            {
                // Marked missing before the bytes go: the store never claims a file it lacks.
                self.mark_file_present(&sha1, false)?;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(crate::store::StoreError::Io { path, source: e }),
            }
        }
        let computers: Vec<String> = plan.computers.iter().map(|c| c.computer_id.clone()).collect();
        if !computers.is_empty() {
            self.remove_computers(&computers)?;
        }
        Ok(())
    }
}
