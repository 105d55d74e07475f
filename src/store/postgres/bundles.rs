//! Trusted keys, the records of imports and exports, and the catalog view an export selects
//! from, on PostgreSQL. Behaves as the SQLite backend's `sqlite/bundles.rs` does.

use super::PostgresStore;
use super::ingest::PgIngestBatch;
use crate::catalog::{Sha1Digest, Sha256Digest};
use crate::store::bundles::*;
use crate::store::{FileSummary, StoreError, StoreResult, now_rfc3339};
use postgres::Row;
use std::collections::{HashMap, HashSet};

const IMPORT_COLUMNS: &str = "bundle_id, channel, sequence, base_sequence, signer_key_id, created, imported_at, revisions_added, files_added, bytes";
const EXPORT_COLUMNS: &str = "channel, sequence, bundle_id, base_sequence, created, path";

fn import_from_row(r: &Row) -> Result<ImportRecord, postgres::Error> {
    Ok(ImportRecord {
        bundle_id: r.try_get(0)?,
        channel: r.try_get(1)?,
        sequence: r.try_get::<_, i64>(2)? as u64,
        base_sequence: r.try_get::<_, Option<i64>>(3)?.map(|v| v as u64),
        signer_key_id: r.try_get(4)?,
        created: r.try_get(5)?,
        imported_at: r.try_get(6)?,
        revisions_added: r.try_get::<_, i64>(7)? as u64,
        files_added: r.try_get::<_, i64>(8)? as u64,
        bytes: r.try_get::<_, i64>(9)? as u64,
    })
}

fn export_from_row(r: &Row) -> Result<ExportRecord, postgres::Error> {
    Ok(ExportRecord {
        channel: r.try_get(0)?,
        sequence: r.try_get::<_, i64>(1)? as u64,
        bundle_id: r.try_get(2)?,
        base_sequence: r.try_get::<_, Option<i64>>(3)?.map(|v| v as u64),
        created: r.try_get(4)?,
        path: r.try_get(5)?,
    })
}

impl ChannelRows for PgIngestBatch {
    fn record_import(&mut self, record: &ImportRecord, manifest_json: &str) -> StoreResult<()> {
        // The batch holds the ingest lock: an import another front end committed meanwhile is
        // seen here, and this one (whose rows are all "unchanged") is refused and rolled back.
        let recorded = self.run(
            "SELECT 1 FROM imports WHERE bundle_id = $1",
            &[&record.bundle_id],
            "looking up the import",
        )?;
        if recorded > 0 {
            return Err(StoreError::Refused(format!(
                "bundle {} was imported meanwhile (by another ferry on this database); this import changed nothing",
                record.bundle_id
            )));
        }
        self.run(
            &format!("INSERT INTO imports ({IMPORT_COLUMNS}, manifest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
            &[
                &record.bundle_id,
                &record.channel,
                &(record.sequence as i64),
                &record.base_sequence.map(|v| v as i64),
                &record.signer_key_id,
                &record.created,
                &record.imported_at,
                &(record.revisions_added as i64),
                &(record.files_added as i64),
                &(record.bytes as i64),
                &manifest_json,
            ],
            "recording the import",
        )?;
        Ok(())
    }

    fn record_removal(
        &mut self,
        update_id: &str,
        reason: &str,
        bundle_id: &str,
    ) -> StoreResult<()> {
        self.run(
            "INSERT INTO removed_updates (update_id, reason, bundle_id, removed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (update_id) DO UPDATE SET reason = excluded.reason, bundle_id = excluded.bundle_id, removed_at = excluded.removed_at",
            &[&update_id, &reason, &bundle_id, &now_rfc3339()],
            "recording a removed update",
        )?;
        Ok(())
    }
}

type SqlParams<'a> = [&'a (dyn postgres::types::ToSql + Sync)];

impl PostgresStore {
    /// Each row read by `read`, failing with `context`.
    fn read_rows<T>(
        &self,
        sql: &str,
        params: &SqlParams<'_>,
        context: &str,
        read: impl Fn(&Row) -> Result<T, postgres::Error>,
    ) -> StoreResult<Vec<T>> {
        let rows = self.connection()?.query(sql, params).map_err(self.fail(context))?;
        rows.iter().map(|r| read(r).map_err(self.fail(context))).collect()
    }

    /// Rows of `sql`, whose first column is a revision id, grouped by it in the order read.
    fn by_revision<T>(
        &self,
        sql: &str,
        read: impl Fn(&Row) -> Result<T, postgres::Error>,
    ) -> StoreResult<HashMap<i32, Vec<T>>> {
        let mut out: HashMap<i32, Vec<T>> = HashMap::new();
        for (revision_id, value) in self.read_rows(sql, &[], "reading the catalog", |r| {
            Ok((r.try_get::<_, i32>(0)?, read(r)?))
        })? {
            out.entry(revision_id).or_default().push(value);
        }
        Ok(out)
    }

    fn import_where(&self, filter: &str, value: &str) -> StoreResult<Option<ImportRecord>> {
        let sql = format!("SELECT {IMPORT_COLUMNS} FROM imports WHERE {filter} LIMIT 1");
        Ok(self.read_rows(&sql, &[&value], "reading imports", import_from_row)?.pop())
    }

    /// Runs `statements` (each with the channel and sequence as `$1`, `$2`) in one transaction.
    fn in_one_transaction(
        &self,
        statements: &[&str],
        channel: &str,
        sequence: u64,
        context: &str,
    ) -> StoreResult<()> {
        let mut connection = self.connection()?;
        let mut tx = connection.transaction().map_err(self.fail(context))?;
        for sql in statements {
            tx.execute(*sql, &[&channel, &(sequence as i64)]).map_err(self.fail(context))?;
        }
        tx.commit().map_err(self.fail(context))
    }
}

impl ChannelStorage for PostgresStore {
    fn add_trusted_key(
        &self,
        key_id: &str,
        public_key: &str,
        comment: Option<&str>,
    ) -> StoreResult<bool> {
        let n = self
            .connection()?
            .execute(
                "INSERT INTO trusted_keys (key_id, public_key, comment, added_at) VALUES ($1, $2, $3, $4) ON CONFLICT (key_id) DO NOTHING",
                &[&key_id, &public_key, &comment, &now_rfc3339()],
            )
            .map_err(self.fail(format!("trusting key {key_id}")))?;
        Ok(n == 1)
    }

    fn trusted_keys(&self) -> StoreResult<Vec<TrustedKey>> {
        self.read_rows(
            r#"SELECT key_id, public_key, comment, added_at FROM trusted_keys ORDER BY added_at COLLATE "C", key_id COLLATE "C""#,
            &[],
            "listing trusted keys",
            |r| {
                Ok(TrustedKey {
                    key_id: r.try_get(0)?,
                    public_key: r.try_get(1)?,
                    comment: r.try_get(2)?,
                    added_at: r.try_get(3)?,
                })
            },
        )
    }

    fn remove_trusted_key(&self, key_id: &str) -> StoreResult<bool> {
        // SQLite compares `COLLATE NOCASE` (ASCII only); key ids are hex.
        let n = self
            .connection()?
            .execute("DELETE FROM trusted_keys WHERE lower(key_id) = lower($1)", &[&key_id])
            .map_err(self.fail(format!("removing key {key_id}")))?;
        Ok(n > 0)
    }

    fn import_by_id(&self, bundle_id: &str) -> StoreResult<Option<ImportRecord>> {
        self.import_where("bundle_id = $1", bundle_id)
    }

    fn last_import(&self, channel: &str) -> StoreResult<Option<ImportRecord>> {
        self.import_where("channel = $1 ORDER BY sequence DESC", channel)
    }

    fn imports(&self) -> StoreResult<Vec<ImportRecord>> {
        let sql = format!(
            r#"SELECT {IMPORT_COLUMNS} FROM imports ORDER BY imported_at COLLATE "C", channel COLLATE "C", sequence"#
        );
        self.read_rows(&sql, &[], "listing imports", import_from_row)
    }

    fn import_manifest(&self, bundle_id: &str) -> StoreResult<Option<String>> {
        let row = self
            .connection()?
            .query_opt("SELECT manifest FROM imports WHERE bundle_id = $1", &[&bundle_id])
            .map_err(self.fail("reading an import"))?;
        row.map(|r| r.try_get(0)).transpose().map_err(self.fail("reading an import"))
    }

    fn removed_update_ids(&self) -> StoreResult<HashSet<String>> {
        let ids = self.read_rows(
            "SELECT update_id FROM removed_updates",
            &[],
            "reading removals",
            |r| r.try_get(0),
        )?;
        Ok(ids.into_iter().collect())
    }

    fn export_chain(&self, channel: &str) -> StoreResult<Vec<ExportRecord>> {
        let sql = format!(
            "SELECT {EXPORT_COLUMNS} FROM export_bundles WHERE channel = $1 AND NOT pending
             AND sequence >= COALESCE((SELECT max(sequence) FROM export_bundles WHERE channel = $1 AND NOT pending AND base_sequence IS NULL), 0)
             ORDER BY sequence"
        );
        self.read_rows(&sql, &[&channel], "reading channel state", export_from_row)
    }

    fn pending_exports(&self, channel: &str) -> StoreResult<Vec<ExportRecord>> {
        let sql = format!(
            "SELECT {EXPORT_COLUMNS} FROM export_bundles WHERE channel = $1 AND pending ORDER BY sequence"
        );
        self.read_rows(&sql, &[&channel], "reading channel state", export_from_row)
    }

    fn last_export_sequence(&self, channel: &str) -> StoreResult<u64> {
        let sql = "SELECT COALESCE(max(sequence), 0) FROM export_bundles WHERE channel = $1 AND NOT pending";
        let found =
            self.read_rows(sql, &[&channel], "reading channel state", |r| r.try_get::<_, i64>(0))?;
        Ok(found.first().copied().unwrap_or(0) as u64)
    }

    fn carried(
        &self,
        channel: &str,
        kind: &str,
        from_sequence: u64,
    ) -> StoreResult<HashSet<String>> {
        let items = self.read_rows(
            "SELECT c.item FROM export_carried c JOIN export_bundles b ON b.channel = c.channel AND b.sequence = c.sequence
             WHERE c.channel = $1 AND c.kind = $2 AND c.sequence >= $3 AND NOT b.pending",
            &[&channel, &kind, &(from_sequence as i64)],
            "reading channel state",
            |r| r.try_get(0),
        )?;
        Ok(items.into_iter().collect())
    }

    fn record_pending_export(
        &mut self,
        record: &ExportRecord,
        carried: &[(&str, Vec<String>)],
    ) -> StoreResult<()> {
        let mut connection = self.connection()?;
        let mut tx = connection.transaction().map_err(self.fail("recording an export"))?;
        let (channel, sequence) = (&record.channel, record.sequence as i64);
        tx.execute(
            "INSERT INTO export_bundles (channel, sequence, bundle_id, base_sequence, created, path, pending) VALUES ($1, $2, $3, $4, $5, $6, true)",
            &[channel, &sequence, &record.bundle_id, &record.base_sequence.map(|v| v as i64), &record.created, &record.path],
        )
        .map_err(self.fail(format!("recording bundle {} of channel {channel}", record.sequence)))?;
        let insert = tx
            .prepare("INSERT INTO export_carried (channel, sequence, kind, item) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
            .map_err(self.fail("recording what an export carried"))?;
        for (kind, items) in carried {
            for item in items {
                tx.execute(&insert, &[channel, &sequence, kind, item])
                    .map_err(self.fail("recording what an export carried"))?;
            }
        }
        tx.commit().map_err(self.fail("committing an export record"))
    }

    fn confirm_export(&self, channel: &str, sequence: u64) -> StoreResult<()> {
        self.in_one_transaction(
            &["UPDATE export_bundles SET pending = false WHERE channel = $1 AND sequence = $2"],
            channel,
            sequence,
            &format!("confirming bundle {sequence} of channel {channel}"),
        )
    }

    fn discard_pending_export(&mut self, channel: &str, sequence: u64) -> StoreResult<()> {
        self.in_one_transaction(
            &[
                "DELETE FROM export_carried WHERE channel = $1 AND sequence = $2",
                "DELETE FROM export_bundles WHERE channel = $1 AND sequence = $2 AND pending",
            ],
            channel,
            sequence,
            &format!("forgetting unfinished bundle {sequence} of channel {channel}"),
        )
    }

    fn catalog_revisions(&self) -> StoreResult<Vec<CatalogRevision>> {
        let mut prerequisites = self.by_revision(
            r#"SELECT revision_id, clause, update_id FROM prerequisites ORDER BY revision_id, clause, update_id COLLATE "C""#,
            |r| Ok((r.try_get::<_, i32>(1)?, r.try_get::<_, String>(2)?)),
        )?;
        let mut bundles = self.by_revision(
            r#"SELECT revision_id, member_update_id, member_revision_number FROM bundle_members
               ORDER BY revision_id, clause, member_update_id COLLATE "C", member_revision_number"#,
            |r| Ok((r.try_get::<_, String>(1)?, r.try_get::<_, i32>(2)?)),
        )?;
        let mut superseded = self.by_revision(
            r#"SELECT revision_id, superseded_update_id FROM supersedences ORDER BY revision_id, superseded_update_id COLLATE "C""#,
            |r| r.try_get::<_, String>(1),
        )?;
        let mut files_of = self.by_revision(
            "SELECT rf.revision_id, f.file_name, f.size, f.sha1, f.sha256, f.extension, f.patching_type, f.present
             FROM revision_files rf JOIN files f USING (sha1) ORDER BY rf.revision_id, f.sha1",
            |r| {
                let sha1: Vec<u8> = r.try_get(3)?;
                let sha256: Option<Vec<u8>> = r.try_get(4)?;
                Ok(Sha1Digest::from_slice(&sha1).map(|sha1| {
                    let extension: String = r.get(5);
                    FileSummary {
                        file_name: r.get(1),
                        size: r.get::<_, i64>(2) as u64,
                        content_path: crate::store::ContentStore::relative_path(&sha1, &extension),
                        sha1,
                        sha256: sha256.as_deref().and_then(Sha256Digest::from_slice),
                        extension,
                        patching_type: r.get(6),
                        present: r.get(7),
                    }
                }))
            },
        )?;
        let mut out = self.read_rows(
            "SELECT revision_id, update_id, revision_number, update_type, category_kind, is_latest, is_bundle, explicitly_deployable,
                    publication_state = 'Expired', title, kb_article, msrc_severity, document_size, ingested_at, core_size, languages
             FROM revisions ORDER BY revision_id",
            &[],
            "reading the catalog",
            catalog_revision_from_row,
        )?;
        for r in &mut out {
            let clauses = prerequisites.remove(&r.revision_id).unwrap_or_default();
            let mut grouped: Vec<Vec<String>> = Vec::new();
            let mut last = None;
            for (clause, id) in clauses {
                if last != Some(clause) {
                    grouped.push(Vec::new());
                    last = Some(clause);
                }
                grouped.last_mut().expect("pushed").push(id);
            }
            r.prerequisites = grouped.iter().flatten().cloned().collect();
            r.prerequisite_clauses = grouped;
            r.bundle_members = bundles.remove(&r.revision_id).unwrap_or_default();
            r.superseded = superseded.remove(&r.revision_id).unwrap_or_default();
            r.files =
                files_of.remove(&r.revision_id).unwrap_or_default().into_iter().flatten().collect();
        }
        Ok(out)
    }

    fn for_each_small_core(
        &self,
        max_size: u64,
        visit: &mut dyn FnMut(i32, String),
    ) -> StoreResult<()> {
        let ctx = "reading core fragments";
        let mut connection = self.connection()?;
        // Streamed: the rows are read as they arrive, not gathered first.
        let params: [&(dyn postgres::types::ToSql + Sync); 1] = [&(max_size as i64)];
        let mut rows = connection
            .query_raw(
                "SELECT d.revision_id, d.core FROM revision_documents d JOIN revisions r USING (revision_id) WHERE r.core_size <= $1",
                params,
            )
            .map_err(self.fail(ctx))?;
        use postgres::fallible_iterator::FallibleIterator;
        while let Some(r) = rows.next().map_err(self.fail(ctx))? {
            let id: i32 = r.try_get(0).map_err(self.fail(ctx))?;
            let blob: &[u8] = r.try_get(1).map_err(self.fail(ctx))?;
            let bytes =
                crate::store::documents::decompress(blob, "core fragment").map_err(|e| {
                    StoreError::io(
                        std::path::Path::new(&format!("{}: core fragment #{id}", self.url)),
                        e,
                    )
                })?;
            visit(id, String::from_utf8(bytes).unwrap_or_default());
        }
        Ok(())
    }

    fn compressed_document(&self, revision_id: i32) -> StoreResult<(Vec<u8>, u64)> {
        let context = format!("reading the document of revision #{revision_id}");
        let found = self.read_rows(
            "SELECT d.document, r.document_size FROM revision_documents d JOIN revisions r USING (revision_id) WHERE revision_id = $1",
            &[&revision_id],
            &context,
            |r| Ok((r.try_get::<_, Vec<u8>>(0)?, r.try_get::<_, i64>(1)? as u64)),
        )?;
        found
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NotFound(format!("no document for revision #{revision_id}")))
    }
}

fn catalog_revision_from_row(r: &Row) -> Result<CatalogRevision, postgres::Error> {
    Ok(CatalogRevision {
        revision_id: r.try_get(0)?,
        update_id: r.try_get(1)?,
        revision_number: r.try_get(2)?,
        update_type: r.try_get(3)?,
        category_kind: r.try_get(4)?,
        is_latest: r.try_get(5)?,
        is_bundle: r.try_get(6)?,
        explicitly_deployable: r.try_get(7)?,
        expired: r.try_get::<_, Option<bool>>(8)?.unwrap_or(false),
        title: r.try_get(9)?,
        kb_article: r.try_get(10)?,
        msrc_severity: r.try_get(11)?,
        document_size: r.try_get::<_, i64>(12)? as u64,
        ingested_at: r.try_get(13)?,
        core_size: r.try_get::<_, i64>(14)? as u64,
        languages: r
            .try_get::<_, Option<String>>(15)?
            .map(|l| l.split(' ').map(str::to_string).collect())
            .unwrap_or_default(),
        prerequisites: Vec::new(),
        prerequisite_clauses: Vec::new(),
        bundle_members: Vec::new(),
        superseded: Vec::new(),
        files: Vec::new(),
    })
}
