//! The SQLite side of bundles: trusted keys and imports (isolated side), channel state and the
//! catalog view an export selects from (connected side).

use super::ingest::IngestBatch;
use crate::store::FileSummary;
use crate::store::bundles::*;
use crate::store::prelude::*;
use crate::store::{SqliteStore, StoreError, StoreResult, now_rfc3339};
use rusqlite::{OptionalExtension, params};
use std::collections::{HashMap, HashSet};

const IMPORT_COLUMNS: &str = "bundle_id, channel, sequence, base_sequence, signer_key_id, created, imported_at, revisions_added, files_added, bytes";

fn import_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImportRecord> {
    Ok(ImportRecord {
        bundle_id: r.get(0)?,
        channel: r.get(1)?,
        sequence: r.get::<_, i64>(2)? as u64,
        base_sequence: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
        signer_key_id: r.get(4)?,
        created: r.get(5)?,
        imported_at: r.get(6)?,
        revisions_added: r.get::<_, i64>(7)? as u64,
        files_added: r.get::<_, i64>(8)? as u64,
        bytes: r.get::<_, i64>(9)? as u64,
    })
}

impl SqliteStore {
    fn export_records(&self, sql: &str, channel: &str) -> StoreResult<Vec<ExportRecord>> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err("reading channel state", e))?;
        stmt.query_map([channel], |r| {
            Ok(ExportRecord {
                channel: r.get(0)?,
                sequence: r.get::<_, i64>(1)? as u64,
                bundle_id: r.get(2)?,
                base_sequence: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                created: r.get(4)?,
                path: r.get(5)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err("reading channel state", e))
    }
}

impl ChannelRows for IngestBatch<'_> {
    fn record_import(&mut self, record: &ImportRecord, manifest_json: &str) -> StoreResult<()> {
        self.execute(
            &format!("INSERT INTO imports ({IMPORT_COLUMNS}, manifest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
            params![
                record.bundle_id,
                record.channel,
                record.sequence as i64,
                record.base_sequence.map(|v| v as i64),
                record.signer_key_id,
                record.created,
                record.imported_at,
                record.revisions_added as i64,
                record.files_added as i64,
                record.bytes as i64,
                manifest_json
            ],
            "recording the import",
        )
    }

    fn record_removal(
        &mut self,
        update_id: &str,
        reason: &str,
        bundle_id: &str,
    ) -> StoreResult<()> {
        self.execute(
            "INSERT INTO removed_updates (update_id, reason, bundle_id, removed_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (update_id) DO UPDATE SET reason = excluded.reason, bundle_id = excluded.bundle_id, removed_at = excluded.removed_at",
            params![update_id, reason, bundle_id, now_rfc3339()],
            "recording a removed update",
        )
    }
}

impl SqliteStore {
    /// Rows of `sql`, whose first column is a revision id, grouped by it in the order read.
    fn by_revision<T>(
        &self,
        sql: &str,
        read: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> StoreResult<HashMap<i32, Vec<T>>> {
        let ctx = "reading the catalog";
        let mut out: HashMap<i32, Vec<T>> = HashMap::new();
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(ctx, e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(ctx, e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(ctx, e))? {
            let revision_id: i32 = r.get(0).map_err(|e| self.err(ctx, e))?;
            out.entry(revision_id).or_default().push(read(r).map_err(|e| self.err(ctx, e))?);
        }
        Ok(out)
    }
}

impl ChannelStorage for SqliteStore {
    fn add_trusted_key(
        &self,
        key_id: &str,
        public_key: &str,
        comment: Option<&str>,
    ) -> StoreResult<bool> {
        let n = self
            .conn
            .execute(
                "INSERT INTO trusted_keys (key_id, public_key, comment, added_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key_id) DO NOTHING",
                params![key_id, public_key, comment, now_rfc3339()],
            )
            .map_err(|e| self.err(format!("trusting key {key_id}"), e))?;
        Ok(n == 1)
    }

    fn trusted_keys(&self) -> StoreResult<Vec<TrustedKey>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key_id, public_key, comment, added_at FROM trusted_keys ORDER BY added_at, key_id")
            .map_err(|e| self.err("listing trusted keys", e))?;
        stmt.query_map([], |r| {
            Ok(TrustedKey {
                key_id: r.get(0)?,
                public_key: r.get(1)?,
                comment: r.get(2)?,
                added_at: r.get(3)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err("listing trusted keys", e))
    }

    fn remove_trusted_key(&self, key_id: &str) -> StoreResult<bool> {
        let n = self
            .conn
            .execute("DELETE FROM trusted_keys WHERE key_id = ?1 COLLATE NOCASE", [key_id])
            .map_err(|e| self.err(format!("removing key {key_id}"), e))?;
        Ok(n > 0)
    }

    fn import_by_id(&self, bundle_id: &str) -> StoreResult<Option<ImportRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {IMPORT_COLUMNS} FROM imports WHERE bundle_id = ?1"),
                [bundle_id],
                import_from_row,
            )
            .optional()
            .map_err(|e| self.err("reading imports", e))
    }

    fn last_import(&self, channel: &str) -> StoreResult<Option<ImportRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {IMPORT_COLUMNS} FROM imports WHERE channel = ?1 ORDER BY sequence DESC LIMIT 1"),
                [channel],
                import_from_row,
            )
            .optional()
            .map_err(|e| self.err("reading imports", e))
    }

    fn imports(&self) -> StoreResult<Vec<ImportRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {IMPORT_COLUMNS} FROM imports ORDER BY imported_at, channel, sequence"
            ))
            .map_err(|e| self.err("listing imports", e))?;
        stmt.query_map([], import_from_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing imports", e))
    }

    fn import_manifest(&self, bundle_id: &str) -> StoreResult<Option<String>> {
        self.conn
            .query_row("SELECT manifest FROM imports WHERE bundle_id = ?1", [bundle_id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err("reading an import", e))
    }

    fn removed_update_ids(&self) -> StoreResult<HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT update_id FROM removed_updates")
            .map_err(|e| self.err("reading removals", e))?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("reading removals", e))
    }

    fn export_chain(&self, channel: &str) -> StoreResult<Vec<ExportRecord>> {
        self.export_records(
            "SELECT channel, sequence, bundle_id, base_sequence, created, path FROM export_bundles WHERE channel = ?1 AND pending = 0
             AND sequence >= COALESCE((SELECT MAX(sequence) FROM export_bundles WHERE channel = ?1 AND pending = 0 AND base_sequence IS NULL), 0)
             ORDER BY sequence",
            channel,
        )
    }

    fn pending_exports(&self, channel: &str) -> StoreResult<Vec<ExportRecord>> {
        self.export_records(
            "SELECT channel, sequence, bundle_id, base_sequence, created, path FROM export_bundles WHERE channel = ?1 AND pending = 1
             ORDER BY sequence",
            channel,
        )
    }

    fn last_export_sequence(&self, channel: &str) -> StoreResult<u64> {
        self.conn
            .query_row("SELECT COALESCE(MAX(sequence), 0) FROM export_bundles WHERE channel = ?1 AND pending = 0", [channel], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| v as u64)
            .map_err(|e| self.err("reading channel state", e))
    }

    fn carried(
        &self,
        channel: &str,
        kind: &str,
        from_sequence: u64,
    ) -> StoreResult<HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.item FROM export_carried c JOIN export_bundles b ON b.channel = c.channel AND b.sequence = c.sequence
                 WHERE c.channel = ?1 AND c.kind = ?2 AND c.sequence >= ?3 AND b.pending = 0",
            )
            .map_err(|e| self.err("reading channel state", e))?;
        stmt.query_map(params![channel, kind, from_sequence as i64], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("reading channel state", e))
    }

    fn record_pending_export(
        &mut self,
        record: &ExportRecord,
        carried: &[(&str, Vec<String>)],
    ) -> StoreResult<()> {
        let db = self.db_path();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| StoreError::sqlite(&db, "recording an export", e))?;
        tx.execute(
            "INSERT INTO export_bundles (channel, sequence, bundle_id, base_sequence, created, path, pending) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)",
            params![
                record.channel,
                record.sequence as i64,
                record.bundle_id,
                record.base_sequence.map(|v| v as i64),
                record.created,
                record.path
            ],
        )
        .map_err(|e| StoreError::sqlite(&db, format!("recording bundle {} of channel {}", record.sequence, record.channel), e))?;
        {
            let mut stmt = tx
                .prepare("INSERT OR IGNORE INTO export_carried (channel, sequence, kind, item) VALUES (?1, ?2, ?3, ?4)")
                .map_err(|e| StoreError::sqlite(&db, "recording what an export carried", e))?;
            for (kind, items) in carried {
                for item in items {
                    stmt.execute(params![record.channel, record.sequence as i64, kind, item])
                        .map_err(|e| {
                            StoreError::sqlite(&db, "recording what an export carried", e)
                        })?;
                }
            }
        }
        tx.commit().map_err(|e| StoreError::sqlite(&db, "committing an export record", e))
    }

    fn confirm_export(&self, channel: &str, sequence: u64) -> StoreResult<()> {
        self.conn
            .execute(
                "UPDATE export_bundles SET pending = 0 WHERE channel = ?1 AND sequence = ?2",
                params![channel, sequence as i64],
            )
            .map_err(|e| {
                self.err(format!("confirming bundle {sequence} of channel {channel}"), e)
            })?;
        Ok(())
    }

    fn discard_pending_export(&mut self, channel: &str, sequence: u64) -> StoreResult<()> {
        let db = self.db_path();
        let context = format!("forgetting unfinished bundle {sequence} of channel {channel}");
        let tx =
            self.conn.transaction().map_err(|e| StoreError::sqlite(&db, context.clone(), e))?;
        for sql in [
            "DELETE FROM export_carried WHERE channel = ?1 AND sequence = ?2",
            "DELETE FROM export_bundles WHERE channel = ?1 AND sequence = ?2 AND pending = 1",
        ] {
            tx.execute(sql, params![channel, sequence as i64])
                .map_err(|e| StoreError::sqlite(&db, context.clone(), e))?;
        }
        tx.commit().map_err(|e| StoreError::sqlite(&db, context, e))
    }

    fn catalog_revisions(&self) -> StoreResult<Vec<CatalogRevision>> {
        let ctx = "reading the catalog";
        let mut prerequisites = self.by_revision(
            "SELECT revision_id, clause, update_id FROM prerequisites ORDER BY revision_id, clause",
            |r| Ok((r.get::<_, i64>(1)?, r.get::<_, String>(2)?)),
        )?;
        let mut bundles = self.by_revision(
            "SELECT revision_id, member_update_id, member_revision_number FROM bundle_members",
            |r| Ok((r.get::<_, String>(1)?, r.get::<_, i32>(2)?)),
        )?;
        let mut superseded = self
            .by_revision("SELECT revision_id, superseded_update_id FROM supersedences", |r| {
                r.get::<_, String>(1)
            })?;
        let all_files: HashMap<Vec<u8>, FileSummary> =
            self.all_files()?.into_iter().map(|f| (f.sha1.0.to_vec(), f)).collect();
        let mut files_of = self
            .by_revision("SELECT revision_id, sha1 FROM revision_files", |r| {
                Ok(all_files.get(&r.get::<_, Vec<u8>>(1)?).cloned())
            })?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT revision_id, update_id, revision_number, update_type, category_kind, is_latest, is_bundle, explicitly_deployable,
                        publication_state = 'Expired', title, kb_article, msrc_severity, document_size, ingested_at, core_size, languages
                 FROM revisions ORDER BY revision_id",
            )
            .map_err(|e| self.err(ctx, e))?;
        let rows = stmt
            .query_map([], |r| {
                let revision_id: i32 = r.get(0)?;
                Ok(CatalogRevision {
                    revision_id,
                    update_id: r.get(1)?,
                    revision_number: r.get(2)?,
                    update_type: r.get(3)?,
                    category_kind: r.get(4)?,
                    is_latest: r.get(5)?,
                    is_bundle: r.get(6)?,
                    explicitly_deployable: r.get(7)?,
                    expired: r.get::<_, Option<bool>>(8)?.unwrap_or(false),
                    title: r.get(9)?,
                    kb_article: r.get(10)?,
                    msrc_severity: r.get(11)?,
                    document_size: r.get::<_, i64>(12)? as u64,
                    ingested_at: r.get(13)?,
                    core_size: r.get::<_, i64>(14)? as u64,
                    languages: r
                        .get::<_, Option<String>>(15)?
                        .map(|l| l.split(' ').map(str::to_string).collect())
                        .unwrap_or_default(),
                    prerequisites: Vec::new(),
                    prerequisite_clauses: Vec::new(),
                    bundle_members: Vec::new(),
                    superseded: Vec::new(),
                    files: Vec::new(),
                })
            })
            .map_err(|e| self.err(ctx, e))?;
        let mut out = Vec::new();
        for row in rows {
            let mut r = row.map_err(|e| self.err(ctx, e))?;
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
            out.push(r);
        }
        Ok(out)
    }

    fn for_each_small_core(
        &self,
        max_size: u64,
        visit: &mut dyn FnMut(i32, String),
    ) -> StoreResult<()> {
        let ctx = "reading core fragments";
        let mut stmt = self
            .conn
            .prepare("SELECT d.revision_id, d.core FROM revision_documents d JOIN revisions r USING (revision_id) WHERE r.core_size <= ?1")
            .map_err(|e| self.err(ctx, e))?;
        let mut rows = stmt.query([max_size as i64]).map_err(|e| self.err(ctx, e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(ctx, e))? {
            let id: i32 = r.get(0).map_err(|e| self.err(ctx, e))?;
            let blob = r
                .get_ref(1)
                .and_then(|v| v.as_blob().map_err(Into::into))
                .map_err(|e| self.err(ctx, e))?;
            let bytes = crate::store::documents::decompress(blob, "core fragment")
                .map_err(|e| StoreError::io(&self.db_path(), e))?;
            visit(id, String::from_utf8(bytes).unwrap_or_default());
        }
        Ok(())
    }

    fn compressed_document(&self, revision_id: i32) -> StoreResult<(Vec<u8>, u64)> {
        self.conn
            .query_row(
                "SELECT d.document, r.document_size FROM revision_documents d JOIN revisions r USING (revision_id) WHERE revision_id = ?1",
                [revision_id],
                |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
            .map_err(|e| self.err(format!("reading the document of revision #{revision_id}"), e))?
            .ok_or_else(|| StoreError::NotFound(format!("no document for revision #{revision_id}")))
    }
}
