//! Read-side queries of the catalog: listings, one update in detail, fragments, the summary.

use crate::catalog::{Sha1Digest, Sha256Digest};
use crate::store::prelude::*;
use crate::store::query::*;
use crate::store::{SqliteStore, StoreError, StoreResult};
use rusqlite::{OptionalExtension, Row, params};
use std::collections::HashMap;

const SUMMARY_COLUMNS: &str = "revision_id, update_id, revision_number, update_type, category_kind, title, kb_article, msrc_severity, publication_state, is_bundle, creation_date";

fn summary_from_row(r: &Row<'_>) -> rusqlite::Result<UpdateSummary> {
    Ok(UpdateSummary {
        revision_id: r.get(0)?,
        update_id: r.get(1)?,
        revision_number: r.get(2)?,
        update_type: r.get(3)?,
        category_kind: r.get(4)?,
        title: r.get(5)?,
        kb_article: r.get(6)?,
        msrc_severity: r.get(7)?,
        publication_state: r.get(8)?,
        is_bundle: r.get(9)?,
        creation_date: r.get(10)?,
        classification: None,
        products: Vec::new(),
        approval: ApprovalStatus::NotApproved,
        superseded: false,
    })
}

impl SqliteStore {
    /// Category memberships (product and classification ids) of revisions: every prerequisite
    /// naming a category, and for bundle members those of their bundles.
    fn memberships(&self, categories: &CategoryIndex) -> StoreResult<HashMap<i32, Vec<String>>> {
        let mut map: HashMap<i32, Vec<String>> = HashMap::new();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT p.revision_id, p.update_id FROM prerequisites p JOIN revisions r ON r.revision_id = p.revision_id WHERE r.is_latest = 1")
            .map_err(|e| self.err("reading prerequisites", e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i32>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err("reading prerequisites", e))?;
        for row in rows {
            let (rid, uid) = row.map_err(|e| self.err("reading prerequisites", e))?;
            if categories.by_id.contains_key(&uid) {
                map.entry(rid).or_default().push(uid);
            }
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT m.revision_id, b.revision_id FROM bundle_members b
                 JOIN revisions m ON m.update_id = b.member_update_id AND m.revision_number = b.member_revision_number",
            )
            .map_err(|e| self.err("reading bundle members", e))?;
        let edges: Vec<(i32, i32)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("reading bundle members", e))?;
        inherit_bundle_memberships(&mut map, &edges);
        Ok(map)
    }

    fn revision_categories(
        &self,
        revision_id: i32,
        categories: &CategoryIndex,
    ) -> StoreResult<Vec<String>> {
        let mut ids = self.strings(
            "SELECT update_id FROM prerequisites WHERE revision_id = ?1
             UNION SELECT p.update_id FROM bundle_members b
               JOIN revisions m ON m.update_id = b.member_update_id AND m.revision_number = b.member_revision_number
               JOIN prerequisites p ON p.revision_id = b.revision_id
             WHERE m.revision_id = ?1",
            revision_id,
        )?;
        ids.retain(|id| categories.by_id.contains_key(id));
        Ok(ids)
    }

    fn strings(&self, sql: &str, revision_id: i32) -> StoreResult<Vec<String>> {
        let mut stmt =
            self.conn.prepare_cached(sql).map_err(|e| self.err("reading relationships", e))?;
        stmt.query_map([revision_id], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("reading relationships", e))
    }
}

fn file_from_row(r: &Row<'_>) -> rusqlite::Result<FileSummary> {
    let sha1: Vec<u8> = r.get(2)?;
    let sha256: Option<Vec<u8>> = r.get(3)?;
    let sha1 = Sha1Digest::from_slice(&sha1)
        .ok_or_else(|| rusqlite::Error::IntegralValueOutOfRange(2, sha1.len() as i64))?;
    let extension: String = r.get(4)?;
    Ok(FileSummary {
        file_name: r.get(0)?,
        size: r.get::<_, i64>(1)? as u64,
        content_path: crate::store::ContentStore::relative_path(&sha1, &extension),
        sha1,
        sha256: sha256.as_deref().and_then(Sha256Digest::from_slice),
        extension,
        patching_type: r.get(5)?,
        present: r.get(6)?,
    })
}

impl CatalogStorage for SqliteStore {
    fn category_index(&self) -> StoreResult<CategoryIndex> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT update_id, COALESCE(category_kind, ''), title FROM revisions WHERE update_type = 'Category' AND is_latest = 1",
            )
            .map_err(|e| self.err("listing categories", e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    (r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?),
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<HashMap<_, _>>>())
            .map_err(|e| self.err("listing categories", e))?;
        Ok(CategoryIndex { by_id: rows })
    }

    fn list_updates(&self, filter: &UpdateFilter) -> StoreResult<Vec<UpdateSummary>> {
        let categories = self.category_index()?;
        let memberships = self.memberships(&categories)?;
        let sql = if filter.all {
            format!(
                "SELECT {SUMMARY_COLUMNS} FROM revisions WHERE is_latest = 1 ORDER BY creation_date DESC, revision_id DESC"
            )
        } else {
            format!(
                "SELECT {SUMMARY_COLUMNS} FROM revisions r WHERE is_latest = 1 AND update_type IN ('Software', 'Driver')
                 AND NOT EXISTS (SELECT 1 FROM bundle_members b WHERE b.member_update_id = r.update_id)
                 ORDER BY creation_date DESC, revision_id DESC"
            )
        };
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err("listing updates", e))?;
        let mut list: Vec<UpdateSummary> = stmt
            .query_map([], summary_from_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing updates", e))?;
        decorate(&mut list, &categories, &memberships);
        let approved = self.approvals()?;
        let declined = self.declines()?;
        let superseded = self.superseded_update_ids()?;
        mark_and_filter(
            &mut list,
            filter,
            &categories,
            &memberships,
            (&approved, &declined, &superseded),
        );
        Ok(list)
    }

    fn resolve_update(&self, id: &str) -> StoreResult<Vec<i32>> {
        let id = id.trim();
        let query = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> StoreResult<Vec<i32>> {
            let mut stmt = self
                .conn
                .prepare_cached(sql)
                .map_err(|e| self.err(format!("resolving {id}"), e))?;
            stmt.query_map(p, |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.err(format!("resolving {id}"), e))
        };
        let found = match UpdateRef::parse(id)? {
            UpdateRef::Revision(guid, rev) => query(
                "SELECT revision_id FROM revisions WHERE update_id = ?1 AND revision_number = ?2",
                &[&guid, &rev],
            )?,
            UpdateRef::Latest(guid) => query(
                "SELECT revision_id FROM revisions WHERE update_id = ?1 AND is_latest = 1",
                &[&guid],
            )?,
            UpdateRef::RevisionId(rid) => {
                query("SELECT revision_id FROM revisions WHERE revision_id = ?1", &[&rid])?
            }
            UpdateRef::Kb(kb) => query(
                "SELECT revision_id FROM revisions WHERE kb_article = ?1 AND is_latest = 1 ORDER BY revision_id",
                &[&kb],
            )?,
        };
        found_updates(id, found)
    }

    fn update_summary(&self, revision_id: i32) -> StoreResult<UpdateSummary> {
        let categories = self.category_index()?;
        let mut s = self
            .conn
            .query_row(
                &format!("SELECT {SUMMARY_COLUMNS} FROM revisions WHERE revision_id = ?1"),
                [revision_id],
                summary_from_row,
            )
            .optional()
            .map_err(|e| self.err(format!("reading revision {revision_id}"), e))?
            .ok_or_else(|| StoreError::NotFound(format!("no revision #{revision_id}")))?;
        let cats = self.revision_categories(revision_id, &categories)?;
        let memberships = HashMap::from([(revision_id, cats)]);
        decorate(std::slice::from_mut(&mut s), &categories, &memberships);
        Ok(s)
    }

    fn update_detail(&self, revision_id: i32) -> StoreResult<UpdateDetail> {
        let summary = self.update_summary(revision_id)?;
        let (description, security_bulletin, handler, core_size, document_size): (Option<String>, Option<String>, Option<String>, i64, i64) = self
            .conn
            .query_row(
                "SELECT (SELECT l.description FROM localized_properties l WHERE l.revision_id = ?1 ORDER BY l.language = 'en' DESC, l.language LIMIT 1),
                        security_bulletin, handler, core_size, document_size FROM revisions WHERE revision_id = ?1",
                [revision_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .map_err(|e| self.err(format!("reading revision {revision_id}"), e))?;
        let mut prerequisites: Vec<PrerequisiteGroup> = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT clause, update_id, is_category FROM prerequisites WHERE revision_id = ?1 ORDER BY clause")
                .map_err(|e| self.err("reading prerequisites", e))?;
            let rows = stmt
                .query_map([revision_id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?))
                })
                .map_err(|e| self.err("reading prerequisites", e))?;
            let mut last = -1;
            for row in rows {
                let (clause, id, is_category) =
                    row.map_err(|e| self.err("reading prerequisites", e))?;
                if clause != last {
                    prerequisites.push(PrerequisiteGroup { is_category, update_ids: Vec::new() });
                    last = clause;
                }
                prerequisites.last_mut().expect("pushed above").update_ids.push(id);
            }
        }
        let update_id = summary.update_id.clone();
        let languages = self.strings(
            "SELECT language FROM localized_properties WHERE revision_id = ?1 ORDER BY language",
            revision_id,
        )?;
        let bundled_updates = self.strings(
            "SELECT member_update_id || '/' || member_revision_number FROM bundle_members WHERE revision_id = ?1 ORDER BY clause",
            revision_id,
        )?;
        let bundled_in = self.strings(
            "SELECT DISTINCT p.update_id || '/' || p.revision_number FROM bundle_members b JOIN revisions p ON p.revision_id = b.revision_id
             JOIN revisions m ON m.update_id = b.member_update_id AND m.revision_number = b.member_revision_number WHERE m.revision_id = ?1",
            revision_id,
        )?;
        let supersedes = self.strings(
            "SELECT superseded_update_id FROM supersedences WHERE revision_id = ?1",
            revision_id,
        )?;
        let superseded_by = self.strings(
            "SELECT DISTINCT r.update_id FROM supersedences s JOIN revisions r ON r.revision_id = s.revision_id
             WHERE s.superseded_update_id = (SELECT update_id FROM revisions WHERE revision_id = ?1) AND r.is_latest = 1",
            revision_id,
        )?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT revision_id FROM revisions WHERE update_id = ?1 AND revision_id != ?2 ORDER BY revision_number")
            .map_err(|e| self.err("listing revisions", e))?;
        let other_revisions = stmt
            .query_map(params![update_id, revision_id], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("listing revisions", e))?;
        Ok(UpdateDetail {
            files: self.revision_files(revision_id)?,
            summary,
            description,
            security_bulletin,
            handler,
            languages,
            prerequisites,
            bundled_updates,
            bundled_in,
            supersedes,
            superseded_by,
            core_size: core_size as u64,
            document_size: document_size as u64,
            other_revisions,
        })
    }

    fn revision_files(&self, revision_id: i32) -> StoreResult<Vec<FileSummary>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT f.file_name, f.size, f.sha1, f.sha256, f.extension, f.patching_type, f.present FROM revision_files rf
                 JOIN files f ON f.sha1 = rf.sha1 WHERE rf.revision_id = ?1 ORDER BY f.file_name",
            )
            .map_err(|e| self.err("listing files", e))?;
        let rows = stmt
            .query_map([revision_id], file_from_row)
            .map_err(|e| self.err("listing files", e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err("listing files", e))
    }

    fn all_files(&self) -> StoreResult<Vec<FileSummary>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT file_name, size, sha1, sha256, extension, patching_type, present FROM files ORDER BY sha1")
            .map_err(|e| self.err("listing files", e))?;
        let rows = stmt.query_map([], file_from_row).map_err(|e| self.err("listing files", e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err("listing files", e))
    }

    fn fragment(&self, revision_id: i32, kind: &FragmentKind) -> StoreResult<Option<String>> {
        let bytes: Option<Vec<u8>> = match kind {
            FragmentKind::Core => {
                self.conn.query_row("SELECT core FROM revision_documents WHERE revision_id = ?1", [revision_id], |r| r.get(0)).optional()
            }
            FragmentKind::Extended => self
                .conn
                .query_row("SELECT extended FROM revision_documents WHERE revision_id = ?1", [revision_id], |r| r.get(0))
                .optional(),
            FragmentKind::Localized(lang) => self
                .conn
                .query_row(
                    "SELECT fragment FROM localized_properties WHERE revision_id = ?1 AND language = ?2",
                    params![revision_id, lang],
                    |r| r.get(0),
                )
                .optional(),
        }
        .map_err(|e| self.err(format!("reading a fragment of revision #{revision_id}"), e))?;
        let bytes = match (bytes, kind) {
            (Some(b), FragmentKind::Core | FragmentKind::Extended) => Some(
                crate::store::documents::decompress(
                    &b,
                    &format!("fragment of revision #{revision_id}"),
                )
                .map_err(|e| StoreError::io(&self.db_path(), e))?,
            ),
            (b, _) => b,
        };
        Ok(bytes.map(|b| {
            String::from_utf8(b)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        }))
    }

    fn revision_languages(&self, revision_id: i32) -> StoreResult<(Vec<String>, Option<String>)> {
        let languages = self.strings(
            "SELECT language FROM localized_properties WHERE revision_id = ?1 ORDER BY language",
            revision_id,
        )?;
        let default = self
            .conn
            .prepare_cached("SELECT default_language FROM revisions WHERE revision_id = ?1")
            .and_then(|mut s| s.query_row([revision_id], |r| r.get(0)).optional())
            .map_err(|e| self.err("reading a revision", e))?
            .flatten();
        Ok((languages, default))
    }

    fn document(&self, revision_id: i32) -> StoreResult<Vec<u8>> {
        self.conn
            .query_row(
                "SELECT document FROM revision_documents WHERE revision_id = ?1",
                [revision_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(format!("reading the document of revision #{revision_id}"), e))?
            .ok_or_else(|| StoreError::NotFound(format!("no document for revision #{revision_id}")))
            .and_then(|b: Vec<u8>| {
                crate::store::documents::decompress(
                    &b,
                    &format!("document of revision #{revision_id}"),
                )
                .map_err(|e| StoreError::io(&self.db_path(), e))
            })
    }

    fn catalog_status(&self) -> StoreResult<CatalogStatus> {
        let one = |sql: &str| -> StoreResult<i64> {
            self.conn
                .query_row(sql, [], |r| r.get(0))
                .map_err(|e| self.err("summarizing the catalog", e))
        };
        let pairs = |sql: &str| -> StoreResult<Vec<(String, u64)>> {
            let mut stmt =
                self.conn.prepare(sql).map_err(|e| self.err("summarizing the catalog", e))?;
            stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.err("summarizing the catalog", e))
        };
        Ok(CatalogStatus {
            revisions: one("SELECT COUNT(*) FROM revisions")? as u64,
            updates: one("SELECT COUNT(*) FROM revisions WHERE is_latest = 1")? as u64,
            by_type: pairs(
                "SELECT update_type, COUNT(*) FROM revisions WHERE is_latest = 1 GROUP BY update_type ORDER BY update_type",
            )?,
            categories_by_kind: pairs(
                "SELECT COALESCE(category_kind, 'Other'), COUNT(*) FROM revisions WHERE is_latest = 1 AND update_type = 'Category' GROUP BY 1 ORDER BY 1",
            )?,
            bundles: one("SELECT COUNT(*) FROM revisions WHERE is_latest = 1 AND is_bundle = 1")?
                as u64,
            expired: one(
                "SELECT COUNT(*) FROM revisions WHERE is_latest = 1 AND publication_state = 'Expired'",
            )? as u64,
            files: one("SELECT COUNT(*) FROM files")? as u64,
            file_bytes: one("SELECT COALESCE(SUM(size), 0) FROM files")? as u64,
            files_present: one("SELECT COUNT(*) FROM files WHERE present = 1")? as u64,
            present_bytes: one("SELECT COALESCE(SUM(size), 0) FROM files WHERE present = 1")?
                as u64,
            document_bytes: one("SELECT COALESCE(SUM(document_size), 0) FROM revisions")? as u64,
            catalog_stamp: self.setting("catalog_stamp")?.and_then(|s| s.parse().ok()).unwrap_or(0),
        })
    }

    fn offerable_revisions(&self) -> StoreResult<u64> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM revisions WHERE is_latest = 1 AND update_type != 'Driver'
                   AND COALESCE(publication_state, '') != 'Expired'
                   AND update_id NOT IN (SELECT update_id FROM declined_updates)
                   AND update_id NOT IN (SELECT update_id FROM removed_updates)",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err("counting the revisions clients may be offered", e))
    }

    fn mark_file_present(&self, sha1: &Sha1Digest, present: bool) -> StoreResult<()> {
        self.conn
            .execute("UPDATE files SET present = ?2 WHERE sha1 = ?1", params![&sha1.0[..], present])
            .map(|_| ())
            .map_err(|e| self.err(format!("marking file {sha1}"), e))
    }
}
