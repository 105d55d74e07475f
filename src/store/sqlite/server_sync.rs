//! The SQLite side of server-server sync: what an upstream tells its downstream servers (revision
//! lists by anchor and filter, documents, files, deployments), and what a downstream keeps of
//! its upstream (anchors, where files come from).

use crate::store::server_sync::*;
use crate::store::{SqliteStore, StoreError, StoreResult};
use rusqlite::{OptionalExtension, params};
use std::collections::{HashMap, HashSet};

impl SqliteStore {
    /// The category update ids each software or driver revision belongs to (its product and
    /// classification prerequisites).
    fn category_memberships(&self) -> StoreResult<HashMap<i32, Vec<String>>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT revision_id, update_id FROM prerequisites WHERE is_category = 1",
            )
            .map_err(|e| self.err("reading category memberships", e))?;
        let mut map: HashMap<i32, Vec<String>> = HashMap::new();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i32>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err("reading category memberships", e))?;
        for row in rows {
            let (id, cat) = row.map_err(|e| self.err("reading category memberships", e))?;
            map.entry(id).or_default().push(cat);
        }
        Ok(map)
    }
}

impl ServerSyncStorage for SqliteStore {
    fn revisions_for_downstream(&self, f: &DownstreamFilter) -> StoreResult<Vec<(String, i32)>> {
        let since = f.since.unwrap_or(-1);
        let rows = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> StoreResult<Vec<Candidate>> {
            let mut stmt = self
                .conn
                .prepare_cached(sql)
                .map_err(|e| self.err("listing revisions for a downstream", e))?;
            stmt.query_map(p, |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing revisions for a downstream", e))
        };
        const COLUMNS: &str =
            "revision_id, update_id, revision_number, changed_stamp, is_bundle, languages";
        let for_us = |languages: &Option<String>| f.wants_languages(languages);
        if f.get_config {
            let sql = format!(
                "SELECT {COLUMNS} FROM revisions WHERE is_latest = 1 AND update_type IN ('Category', 'Detectoid') AND changed_stamp > ?1 ORDER BY revision_id"
            );
            return Ok(rows(&sql, &[&since])?.into_iter().map(|(_, u, n, ..)| (u, n)).collect());
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM revisions WHERE is_latest = 1 AND update_type IN ('Software', 'Driver') ORDER BY revision_id"
        );
        let mut candidates = rows(&sql, &[])?;
        candidates.retain(|c| for_us(&c.5));
        let selected = f.select(candidates, || self.category_memberships())?;
        let mut out: Vec<(String, i32)> = Vec::with_capacity(selected.len());
        let mut seen: HashSet<(String, i32)> = HashSet::new();
        let mut members = self
            .conn
            .prepare_cached(
                "SELECT m.member_update_id, m.member_revision_number, r.languages FROM bundle_members m
                 LEFT JOIN revisions r ON r.update_id = m.member_update_id AND r.revision_number = m.member_revision_number
                 WHERE m.revision_id = ?1",
            )
            .map_err(|e| self.err("listing bundle members", e))?;
        for (id, u, n, is_bundle) in selected {
            if is_bundle {
                let named: Vec<(String, i32, Option<String>)> = members
                    .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .and_then(|rows| rows.collect())
                    .map_err(|e| self.err("listing bundle members", e))?;
                for (u, n, languages) in named {
                    let m = (u, n);
                    if for_us(&languages) && seen.insert(m.clone()) {
                        out.push(m);
                    }
                }
            }
            if seen.insert((u.clone(), n)) {
                out.push((u, n));
            }
        }
        Ok(out)
    }

    fn stored_revision(
        &self,
        update_id: &str,
        revision_number: i32,
    ) -> StoreResult<Option<(i32, u64)>> {
        self.conn
            .prepare_cached("SELECT revision_id, document_size FROM revisions WHERE update_id = ?1 AND revision_number = ?2")
            .and_then(|mut s| s.query_row(params![update_id, revision_number], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))).optional())
            .map_err(|e| self.err(format!("looking up {update_id}/{revision_number}"), e))
    }

    fn stored_identities(&self) -> StoreResult<HashSet<(String, i32)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT update_id, revision_number FROM revisions")
            .map_err(|e| self.err("listing revisions", e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing revisions", e))
    }

    fn revision_file_sources(
        &self,
        revision_id: i32,
    ) -> StoreResult<Vec<([u8; 20], Option<String>)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT f.sha1, f.source_url FROM revision_files rf JOIN files f ON f.sha1 = rf.sha1 WHERE rf.revision_id = ?1 ORDER BY f.sha1")
            .map_err(|e| self.err("listing a revision's files", e))?;
        let rows: Vec<(Vec<u8>, Option<String>)> = stmt
            .query_map([revision_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing a revision's files", e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(d, u)| <[u8; 20]>::try_from(d.as_slice()).ok().map(|d| (d, u)))
            .collect())
    }

    fn set_file_sources(&mut self, sources: &[([u8; 20], String)]) -> StoreResult<()> {
        let db = self.db_path();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| StoreError::sqlite(&db, "recording file sources", e))?;
        {
            let mut stmt = tx
                .prepare_cached("UPDATE files SET source_url = ?2 WHERE sha1 = ?1")
                .map_err(|e| StoreError::sqlite(&db, "recording file sources", e))?;
            for (sha1, url) in sources {
                stmt.execute(params![&sha1[..], url])
                    .map_err(|e| StoreError::sqlite(&db, "recording file sources", e))?;
            }
        }
        tx.commit().map_err(|e| StoreError::sqlite(&db, "recording file sources", e))
    }

    fn present_file_extension(
        &self,
        sha1: &crate::catalog::Sha1Digest,
    ) -> StoreResult<Option<String>> {
        self.conn
            .prepare_cached("SELECT extension FROM files WHERE sha1 = ?1 AND present = 1")
            .and_then(|mut s| s.query_row([&sha1.0[..]], |r| r.get(0)).optional())
            .map_err(|e| self.err("looking up a file", e))
    }

    fn file_sources(&self) -> StoreResult<HashMap<[u8; 20], String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT sha1, source_url FROM files WHERE source_url IS NOT NULL")
            .map_err(|e| self.err("listing file sources", e))?;
        let rows: Vec<(Vec<u8>, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing file sources", e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(d, u)| <[u8; 20]>::try_from(d.as_slice()).ok().map(|d| (d, u)))
            .collect())
    }

    fn mark_files_present(&mut self, sha1s: &[[u8; 20]]) -> StoreResult<()> {
        let db = self.db_path();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| StoreError::sqlite(&db, "marking files present", e))?;
        {
            let mut stmt = tx
                .prepare_cached("UPDATE files SET present = 1 WHERE sha1 = ?1")
                .map_err(|e| StoreError::sqlite(&db, "marking files present", e))?;
            for sha1 in sha1s {
                stmt.execute([&sha1[..]])
                    .map_err(|e| StoreError::sqlite(&db, "marking files present", e))?;
            }
        }
        tx.commit().map_err(|e| StoreError::sqlite(&db, "marking files present", e))
    }

    fn deployments_since(
        &self,
        since: i64,
    ) -> StoreResult<(Vec<DownstreamDeployment>, Vec<String>)> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT a.update_id, r.revision_number, a.action, a.deadline, a.admin, a.changed_at, a.deployment_guid, a.group_id
                 FROM approvals a JOIN revisions r ON r.update_id = a.update_id AND r.is_latest = 1
                 WHERE a.changed_stamp > ?1 ORDER BY a.approval_id",
            )
            .map_err(|e| self.err("listing deployments", e))?;
        let deployments = stmt
            .query_map([since], |r| {
                Ok(DownstreamDeployment {
                    update_id: r.get(0)?,
                    revision_number: r.get(1)?,
                    action: r.get(2)?,
                    deadline: r.get(3)?,
                    admin: r.get(4)?,
                    changed_at: r.get(5)?,
                    deployment_guid: r.get(6)?,
                    group_id: r.get(7)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing deployments", e))?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT deployment_guid FROM approval_changes WHERE change = 'removed' AND changed_stamp > ?1 AND deployment_guid <> ''
                 AND deployment_guid NOT IN (SELECT deployment_guid FROM approvals)",
            )
            .map_err(|e| self.err("listing removed deployments", e))?;
        let dead = stmt
            .query_map([since], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing removed deployments", e))?;
        Ok((deployments, dead))
    }

    fn languages(&self) -> StoreResult<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT language FROM localized_properties ORDER BY language")
            .map_err(|e| self.err("listing languages", e))?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing languages", e))
    }

    fn downstream_servers(&self) -> StoreResult<Vec<(String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT server_id, name, last_seen_at FROM downstream_servers ORDER BY name",
            )
            .map_err(|e| self.err("listing downstream servers", e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing downstream servers", e))
    }
}
