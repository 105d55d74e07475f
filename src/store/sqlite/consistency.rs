//! `ferry check`: is the store consistent, and (deep) does every stored byte still match.

use crate::catalog::parse_update;
use crate::store::consistency::*;
use crate::store::documents::fragments_digest;
use crate::store::prelude::*;
use crate::store::{SqliteStore, StoreResult};

impl CheckStorage for SqliteStore {
    fn check(&self, deep: bool, progress: &mut dyn FnMut(u64, u64)) -> StoreResult<CheckReport> {
        let mut report = CheckReport::default();
        self.check_engine(deep, &mut report)?;
        self.check_catalog_rules(&mut report)?;
        report.revisions_checked = self
            .conn
            .query_row("SELECT COUNT(*) FROM revisions", [], |r| r.get::<_, i64>(0))
            .map_err(|e| self.err("counting", e))? as u64;
        if deep {
            self.reparse_documents(&mut report)?;
        }
        self.check_files(deep, &mut report, progress)?;
        Ok(report)
    }
}

impl SqliteStore {
    /// SQLite's own checks: integrity (quick unless `deep`) and foreign keys.
    fn check_engine(&self, deep: bool, report: &mut CheckReport) -> StoreResult<()> {
        let db = self.db_path().display().to_string();
        let integrity: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare(if deep { "PRAGMA integrity_check" } else { "PRAGMA quick_check" })
                .map_err(|e| self.err("checking integrity", e))?;
            stmt.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.err("checking integrity", e))?
        };
        for line in integrity.into_iter().filter(|l| l != "ok") {
            report.problem(&db, format!("SQLite integrity: {line}"));
        }
        let fk: Vec<(String, i64)> = {
            let mut stmt = self
                .conn
                .prepare("PRAGMA foreign_key_check")
                .map_err(|e| self.err("checking foreign keys", e))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.err("checking foreign keys", e))?
        };
        for (table, rowid) in fk {
            report.problem(&db, format!("table {table}, row {rowid}: refers to a missing row"));
        }
        Ok(())
    }

    /// The catalog's invariants, each a query that lists what breaks it.
    fn check_catalog_rules(&self, report: &mut CheckReport) -> StoreResult<()> {
        let invariants: [(&str, &str); 7] = [
            (
                "SELECT update_id || ': ' || SUM(is_latest) || ' revisions marked newest' FROM revisions GROUP BY update_id HAVING SUM(is_latest) != 1",
                "every update has exactly one newest revision",
            ),
            (
                "SELECT r.update_id || '/' || r.revision_number || ' is marked newest but revision ' || MAX(o.revision_number) || ' exists'
                 FROM revisions r JOIN revisions o ON o.update_id = r.update_id WHERE r.is_latest = 1 GROUP BY r.revision_id HAVING MAX(o.revision_number) > r.revision_number",
                "the newest revision has the highest number",
            ),
            (
                "SELECT r.update_id || '/' || r.revision_number FROM revisions r LEFT JOIN revision_documents d ON d.revision_id = r.revision_id WHERE d.revision_id IS NULL",
                "every revision has its document and fragments",
            ),
            (
                "SELECT hex(rf.sha1) FROM revision_files rf LEFT JOIN files f ON f.sha1 = rf.sha1 WHERE f.sha1 IS NULL",
                "every file a revision names has a file record",
            ),
            ("SELECT revision_id FROM revisions WHERE revision_id > 2147483647 OR revision_id < 1", "revision ids fit in 31 bits"),
            (
                "SELECT c.computer_id || ': ' || COUNT(*) || ' events, counted as at most ' || c.events_at_most
                 FROM computers c JOIN events e ON e.computer_id = c.computer_id
                 GROUP BY c.computer_id HAVING COUNT(*) > c.events_at_most ORDER BY c.computer_id",
                "no computer has more events than counted",
            ),
            (
                "SELECT p.update_id FROM published_updates p LEFT JOIN revisions r ON r.update_id = p.update_id
                 WHERE r.revision_id IS NULL ORDER BY p.update_id",
                "every published update has its revisions",
            ),
        ];
        for (sql, rule) in invariants {
            let mut stmt =
                self.conn.prepare(sql).map_err(|e| self.err(format!("checking that {rule}"), e))?;
            let bad: Vec<String> = stmt
                .query_map([], |r| r.get::<_, rusqlite::types::Value>(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| self.err(format!("checking that {rule}"), e))?
                .into_iter()
                .map(|v| match v {
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Integer(n) => n.to_string(),
                    other => format!("{other:?}"),
                })
                .collect();
            for b in bad {
                report.problem(format!("catalog ({rule})"), b);
            }
        }
        Ok(())
    }

    /// Every stored document parses again and yields the fragments stored with it.
    fn reparse_documents(&self, report: &mut CheckReport) -> StoreResult<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT r.revision_id, r.update_id, r.revision_number, r.fragments_digest, d.document FROM revisions r JOIN revision_documents d USING (revision_id)")
            .map_err(|e| self.err("re-reading documents", e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err("re-reading documents", e))?;
        while let Some(row) = rows.next().map_err(|e| self.err("re-reading documents", e))? {
            let (update_id, rev): (String, i32) = (
                row.get(1).map_err(|e| self.err("re-reading documents", e))?,
                row.get(2).map_err(|e| self.err("re-reading documents", e))?,
            );
            let stored: Vec<u8> = row.get(3).map_err(|e| self.err("re-reading documents", e))?;
            let document = row
                .get_ref(4)
                .and_then(|v| v.as_blob().map_err(Into::into))
                .map_err(|e| self.err("re-reading documents", e))?;
            report.documents_reparsed += 1;
            let document = match crate::store::documents::decompress(document, "document") {
                Ok(d) => d,
                Err(e) => {
                    report.problem(format!("revision {update_id}/{rev}"), e.to_string());
                    continue;
                }
            };
            match parse_update(&document) {
                Ok(parsed) if fragments_digest(&parsed)[..] == stored[..] => {}
                Ok(_) => report.problem(
                    format!("revision {update_id}/{rev}"),
                    "stored fragments differ from the ones its document yields",
                ),
                Err(e) => report.problem(
                    format!("revision {update_id}/{rev}"),
                    format!("stored document no longer parses: {e}"),
                ),
            }
        }
        Ok(())
    }

    /// Every file marked present is in the content tree (hashed again when `deep`).
    fn check_files(
        &self,
        deep: bool,
        report: &mut CheckReport,
        progress: &mut dyn FnMut(u64, u64),
    ) -> StoreResult<()> {
        let files = self.all_files()?;
        let total: u64 = files.iter().filter(|f| f.present).map(|f| f.size).sum();
        for f in files.iter().filter(|f| f.present) {
            let expected = f.expected();
            let path = self.content().path(&f.sha1, &f.extension);
            if deep {
                match self.content().verify(&expected) {
                    Ok(_) => {}
                    Err(e) => report.problem(path.display().to_string(), e.to_string()),
                }
                report.bytes_hashed += f.size;
                progress(report.bytes_hashed, total);
            } else if !self.content().has(&expected) {
                report.problem(
                    path.display().to_string(),
                    format!("{}: missing or of the wrong size", f.file_name),
                );
            }
            report.files_checked += 1;
        }
        Ok(())
    }
}
