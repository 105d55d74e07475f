//! `ferry check` on PostgreSQL: is the store consistent, and (deep) does every stored byte still
//! match. PostgreSQL enforces foreign keys and checks its pages itself; what it can be asked is
//! whether the schema is the one this ferry writes, whether any constraint or index was left
//! unchecked or unusable, and whether the catalog's own invariants hold.

use super::PostgresStore;
use crate::catalog::parse_update;
use crate::store::StoreResult;
use crate::store::consistency::*;
use crate::store::documents::fragments_digest;
use crate::store::prelude::*;

/// Documents fetched from the portal at once while re-parsing.
const DOCUMENTS_AT_ONCE: i32 = 64;

/// The catalog's invariants: a query listing what breaks each, as text, in a stable order.
const INVARIANTS: [(&str, &str); 7] = [
    (
        r#"SELECT update_id || ': ' || count(*) FILTER (WHERE is_latest) || ' revisions marked newest' FROM revisions
           GROUP BY update_id HAVING count(*) FILTER (WHERE is_latest) <> 1 ORDER BY update_id COLLATE "C""#,
        "every update has exactly one newest revision",
    ),
    (
        "SELECT r.update_id || '/' || r.revision_number || ' is marked newest but revision ' || max(o.revision_number) || ' exists'
         FROM revisions r JOIN revisions o ON o.update_id = r.update_id WHERE r.is_latest
         GROUP BY r.revision_id HAVING max(o.revision_number) > r.revision_number ORDER BY r.revision_id",
        "the newest revision has the highest number",
    ),
    (
        "SELECT r.update_id || '/' || r.revision_number FROM revisions r
         LEFT JOIN revision_documents d ON d.revision_id = r.revision_id WHERE d.revision_id IS NULL ORDER BY r.revision_id",
        "every revision has its document and fragments",
    ),
    (
        "SELECT upper(encode(rf.sha1, 'hex')) FROM revision_files rf LEFT JOIN files f ON f.sha1 = rf.sha1
         WHERE f.sha1 IS NULL ORDER BY rf.revision_id",
        "every file a revision names has a file record",
    ),
    (
        "SELECT revision_id::text FROM revisions WHERE revision_id < 1 ORDER BY revision_id",
        "revision ids fit in 31 bits",
    ),
    (
        r#"SELECT c.computer_id || ': ' || count(*) || ' events, counted as at most ' || c.events_at_most
           FROM computers c JOIN events e ON e.computer_id = c.computer_id
           GROUP BY c.computer_id HAVING count(*) > c.events_at_most ORDER BY c.computer_id COLLATE "C""#,
        "no computer has more events than counted",
    ),
    (
        r#"SELECT p.update_id FROM published_updates p LEFT JOIN revisions r ON r.update_id = p.update_id
           WHERE r.revision_id IS NULL ORDER BY p.update_id COLLATE "C""#,
        "every published update has its revisions",
    ),
];

impl CheckStorage for PostgresStore {
    fn check(&self, deep: bool, progress: &mut dyn FnMut(u64, u64)) -> StoreResult<CheckReport> {
        let mut report = CheckReport::default();
        self.check_engine(&mut report)?;
        for (sql, rule) in INVARIANTS {
            for bad in self.texts(&format!("checking that {rule}"), sql, &[])? {
                report.problem(format!("catalog ({rule})"), bad);
            }
        }
        let counted: Vec<i64> =
            self.rows("counting", "SELECT count(*) FROM revisions", &[], |r| r.try_get(0))?;
        report.revisions_checked = counted.first().copied().unwrap_or(0) as u64;
        if deep {
            self.reparse_documents(&mut report)?;
        }
        self.check_files(deep, &mut report, progress)?;
        Ok(report)
    }
}

impl PostgresStore {
    /// What PostgreSQL can say: the schema version, constraints added without being checked,
    /// indexes a failed build left unusable.
    fn check_engine(&self, report: &mut CheckReport) -> StoreResult<()> {
        let db = self.url.to_string();
        let versions: Vec<Option<i32>> = self.rows(
            "reading the schema version",
            "SELECT max(version) FROM schema_version",
            &[],
            |r| r.try_get(0),
        )?;
        let found = versions.into_iter().flatten().next().unwrap_or(0);
        let known = PostgresStore::known_schema_version();
        if usize::try_from(found).ok() != Some(known) {
            report.problem(&db, format!("schema version {found}, but this ferry writes {known}"));
        }
        let unchecked = self.texts(
            "checking constraints",
            r#"SELECT (c.conrelid::regclass::text || ': constraint ' || c.conname || ' was never checked') COLLATE "C"
               FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
               WHERE n.nspname = current_schema() AND NOT c.convalidated ORDER BY 1"#,
            &[],
        )?;
        let invalid = self.texts(
            "checking indexes",
            r#"SELECT (i.indrelid::regclass::text || ': index ' || i.indexrelid::regclass::text || ' is not usable') COLLATE "C"
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = current_schema() AND NOT (i.indisvalid AND i.indisready) ORDER BY 1"#,
            &[],
        )?;
        for problem in unchecked.into_iter().chain(invalid) {
            report.problem(&db, format!("PostgreSQL: {problem}"));
        }
        Ok(())
    }

    /// Every stored document parses again and yields the fragments stored with it; documents
    /// are read through a portal, a few at a time.
    fn reparse_documents(&self, report: &mut CheckReport) -> StoreResult<()> {
        let what = "re-reading documents";
        let mut conn = self.connection()?;
        let mut tx = conn.build_transaction().read_only(true).start().map_err(self.fail(what))?;
        let portal = tx
            .bind(
                "SELECT r.update_id, r.revision_number, r.fragments_digest, d.document
                 FROM revisions r JOIN revision_documents d USING (revision_id) ORDER BY r.revision_id",
                &[],
            )
            .map_err(self.fail(what))?;
        loop {
            let rows = tx.query_portal(&portal, DOCUMENTS_AT_ONCE).map_err(self.fail(what))?;
            for row in &rows {
                let (update_id, rev, stored, document): (String, i32, &[u8], &[u8]) = (
                    row.try_get(0).map_err(self.fail(what))?,
                    row.try_get(1).map_err(self.fail(what))?,
                    row.try_get(2).map_err(self.fail(what))?,
                    row.try_get(3).map_err(self.fail(what))?,
                );
                report.documents_reparsed += 1;
                let subject = format!("revision {update_id}/{rev}");
                match crate::store::documents::decompress(document, "document") {
                    Err(e) => report.problem(subject, e.to_string()),
                    Ok(document) => match parse_update(&document) {
                        Ok(parsed) if fragments_digest(&parsed)[..] == stored[..] => {}
                        Ok(_) => report.problem(
                            subject,
                            "stored fragments differ from the ones its document yields",
                        ),
                        Err(e) => report
                            .problem(subject, format!("stored document no longer parses: {e}")),
                    },
                }
            }
            if rows.len() < DOCUMENTS_AT_ONCE as usize {
                break;
            }
        }
        tx.commit().map_err(self.fail(what))
    }

    /// Every file marked present is in the content tree (hashed again when `deep`). Without a
    /// content tree, that there is none to check them against is the problem.
    fn check_files(
        &self,
        deep: bool,
        report: &mut CheckReport,
        progress: &mut dyn FnMut(u64, u64),
    ) -> StoreResult<()> {
        let files: Vec<_> = self.all_files()?.into_iter().filter(|f| f.present).collect();
        let Some(content) = self.content() else {
            if !files.is_empty() {
                let problem = format!(
                    "{} files are marked present, but no content tree was given to find them in",
                    files.len()
                );
                report.problem(self.url.to_string(), problem);
            }
            return Ok(());
        };
        let total: u64 = files.iter().map(|f| f.size).sum();
        for f in &files {
            let expected = f.expected();
            let path = content.path(&f.sha1, &f.extension);
            if deep {
                if let Err(e) = content.verify(&expected) {
                    report.problem(path.display().to_string(), e.to_string());
                }
                report.bytes_hashed += f.size;
                progress(report.bytes_hashed, total);
            } else if !content.has(&expected) {
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
