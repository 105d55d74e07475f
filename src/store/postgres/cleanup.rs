//! The PostgreSQL side of cleanup: what the plan reads (the rules are `admin/cleanup.rs`).

use super::PostgresStore;
use crate::catalog::Sha1Digest;
use crate::ids::UpdateId;
use crate::store::StoreResult;
use crate::store::cleanup::*;
use std::collections::HashMap;

impl PostgresStore {
    fn update_pairs(&self, what: &str, sql: &str) -> StoreResult<Vec<(UpdateId, UpdateId)>> {
        let rows = self.connection()?.query(sql, &[]).map_err(self.fail(what))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, postgres::Error>>()
            .map_err(self.fail(what))
    }
}

impl CleanupStorage for PostgresStore {
    fn supersedences(&self) -> StoreResult<Vec<(UpdateId, UpdateId)>> {
        self.update_pairs(
            "listing supersedence",
            "SELECT s.superseded_update_id, r.update_id FROM supersedences s JOIN revisions r ON r.revision_id = s.revision_id
             WHERE r.is_latest",
        )
    }

    fn bundle_memberships(&self) -> StoreResult<Vec<(UpdateId, UpdateId)>> {
        self.update_pairs(
            "listing bundles",
            "SELECT DISTINCT b.member_update_id, r.update_id FROM bundle_members b JOIN revisions r ON r.revision_id = b.revision_id
             WHERE r.is_latest",
        )
    }

    fn files_of_newest_revisions(&self) -> StoreResult<Vec<(Sha1Digest, UpdateId)>> {
        let what = "listing files";
        let rows = self
            .connection()?
            .query(
                "SELECT rf.sha1, r.update_id FROM revision_files rf JOIN revisions r ON r.revision_id = rf.revision_id
                 WHERE r.is_latest",
                &[],
            )
            .map_err(self.fail(what))?;
        let rows: Vec<(Vec<u8>, UpdateId)> = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, postgres::Error>>()
            .map_err(self.fail(what))?;
        // A digest that is not 20 bytes names no file, as in SQLite.
        Ok(rows
            .into_iter()
            .filter_map(|(sha1, update)| Some((Sha1Digest(sha1.try_into().ok()?), update)))
            .collect())
    }

    fn known_files(&self) -> StoreResult<HashMap<Sha1Digest, (String, u64)>> {
        let what = "listing files";
        let rows = self
            .connection()?
            .query("SELECT sha1, extension, size FROM files", &[])
            .map_err(self.fail(what))?;
        let rows: Vec<(Vec<u8>, String, i64)> = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, postgres::Error>>()
            .map_err(self.fail(what))?;
        Ok(rows
            .into_iter()
            .filter_map(|(s, e, n)| Some((Sha1Digest(s.try_into().ok()?), (e, n as u64))))
            .collect())
    }
}
