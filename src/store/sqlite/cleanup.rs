//! The SQLite side of cleanup: what the plan reads (the rules are `admin/cleanup.rs`).

use crate::catalog::Sha1Digest;
use crate::ids::UpdateId;
use crate::store::cleanup::*;
use crate::store::{SqliteStore, StoreResult};
use std::collections::HashMap;

impl SqliteStore {
    fn pairs(&self, what: &str, sql: &str) -> StoreResult<Vec<(UpdateId, UpdateId)>> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(what, e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|r| r.collect())
            .map_err(|e| self.err(what, e))
    }
}

impl CleanupStorage for SqliteStore {
    fn supersedences(&self) -> StoreResult<Vec<(UpdateId, UpdateId)>> {
        self.pairs(
            "listing supersedence",
            "SELECT s.superseded_update_id, r.update_id FROM supersedences s JOIN revisions r ON r.revision_id = s.revision_id
             WHERE r.is_latest = 1",
        )
    }

    fn bundle_memberships(&self) -> StoreResult<Vec<(UpdateId, UpdateId)>> {
        self.pairs(
            "listing bundles",
            "SELECT DISTINCT b.member_update_id, r.update_id FROM bundle_members b JOIN revisions r ON r.revision_id = b.revision_id
             WHERE r.is_latest = 1",
        )
    }

    fn files_of_newest_revisions(&self) -> StoreResult<Vec<(Sha1Digest, UpdateId)>> {
        let what = "listing files";
        let mut stmt = self
            .conn
            .prepare("SELECT rf.sha1, r.update_id FROM revision_files rf JOIN revisions r ON r.revision_id = rf.revision_id WHERE r.is_latest = 1")
            .map_err(|e| self.err(what, e))?;
        let rows: Vec<(Vec<u8>, UpdateId)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|r| r.collect())
            .map_err(|e| self.err(what, e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(sha1, update)| Some((Sha1Digest(sha1.try_into().ok()?), update)))
            .collect())
    }

    fn known_files(&self) -> StoreResult<HashMap<Sha1Digest, (String, u64)>> {
        let what = "listing files";
        let mut stmt = self
            .conn
            .prepare("SELECT sha1, extension, size FROM files")
            .map_err(|e| self.err(what, e))?;
        let rows: Vec<(Vec<u8>, String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|r| r.collect())
            .map_err(|e| self.err(what, e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(s, e, n)| Some((Sha1Digest(s.try_into().ok()?), (e, n as u64))))
            .collect())
    }
}
