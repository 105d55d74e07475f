//! Read-side queries of the catalog on PostgreSQL: listings, one update in detail, fragments,
//! the summary. Text orders as in SQLite (`COLLATE "C"`), NULLs where SQLite puts them (first
//! ascending, last descending), and lists SQLite reads by primary key in that key's order.

use super::PostgresStore;
use crate::catalog::{Sha1Digest, Sha256Digest};
use crate::store::prelude::*;
use crate::store::query::*;
use crate::store::{StoreError, StoreResult};
use postgres::Row;
use postgres::types::ToSql;
use std::collections::HashMap;

const SUMMARY_COLUMNS: &str = "revision_id, update_id, revision_number, update_type, category_kind, title, kb_article, msrc_severity, publication_state, is_bundle, creation_date";

const FILE_COLUMNS: &str =
    "f.file_name, f.size, f.sha1, f.sha256, f.extension, f.patching_type, f.present";

type Params<'a> = [&'a (dyn ToSql + Sync)];

fn summary_from_row(r: &Row) -> Result<UpdateSummary, postgres::Error> {
    Ok(UpdateSummary {
        revision_id: r.try_get(0)?,
        update_id: r.try_get(1)?,
        revision_number: r.try_get(2)?,
        update_type: r.try_get(3)?,
        category_kind: r.try_get(4)?,
        title: r.try_get(5)?,
        kb_article: r.try_get(6)?,
        msrc_severity: r.try_get(7)?,
        publication_state: r.try_get(8)?,
        is_bundle: r.try_get(9)?,
        creation_date: r.try_get(10)?,
        classification: None,
        products: Vec::new(),
        approval: ApprovalStatus::NotApproved,
        superseded: false,
    })
}

/// A file row (`FILE_COLUMNS`); a SHA-1 of the wrong length reads as no file (`None`).
fn file_from_row(r: &Row) -> Result<Option<FileSummary>, postgres::Error> {
    let sha1: &[u8] = r.try_get(2)?;
    let Some(sha1) = Sha1Digest::from_slice(sha1) else { return Ok(None) };
    let sha256: Option<&[u8]> = r.try_get(3)?;
    let extension: String = r.try_get(4)?;
    Ok(Some(FileSummary {
        file_name: r.try_get(0)?,
        size: r.try_get::<_, i64>(1)? as u64,
        content_path: crate::store::ContentStore::relative_path(&sha1, &extension),
        sha1,
        sha256: sha256.and_then(Sha256Digest::from_slice),
        extension,
        patching_type: r.try_get(5)?,
        present: r.try_get(6)?,
    }))
}

impl PostgresStore {
    /// The first column of each row of `sql`, as text.
    pub(super) fn texts(
        &self,
        what: &str,
        sql: &str,
        params: &Params<'_>,
    ) -> StoreResult<Vec<String>> {
        self.rows(what, sql, params, |r| r.try_get(0))
    }

    /// Category memberships (product and classification ids) of newest revisions: every
    /// prerequisite naming a category, and for bundle members those of their bundles.
    fn memberships(&self, categories: &CategoryIndex) -> StoreResult<HashMap<i32, Vec<String>>> {
        let pairs = self.rows(
            "reading prerequisites",
            r#"SELECT p.revision_id, p.update_id FROM prerequisites p JOIN revisions r ON r.revision_id = p.revision_id
               WHERE r.is_latest ORDER BY p.revision_id, p.clause, p.update_id COLLATE "C""#,
            &[],
            |r| Ok((r.try_get::<_, i32>(0)?, r.try_get::<_, String>(1)?)),
        )?;
        let mut map: HashMap<i32, Vec<String>> = HashMap::new();
        for (rid, uid) in pairs {
            if categories.by_id.contains_key(&uid) {
                map.entry(rid).or_default().push(uid);
            }
        }
        let edges = self.rows(
            "reading bundle members",
            "SELECT m.revision_id, b.revision_id FROM bundle_members b
             JOIN revisions m ON m.update_id = b.member_update_id AND m.revision_number = b.member_revision_number",
            &[],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
        )?;
        inherit_bundle_memberships(&mut map, &edges);
        Ok(map)
    }

    fn revision_categories(
        &self,
        revision_id: i32,
        categories: &CategoryIndex,
    ) -> StoreResult<Vec<String>> {
        let mut ids = self.texts(
            "reading relationships",
            r#"SELECT update_id FROM (SELECT update_id FROM prerequisites WHERE revision_id = $1
               UNION SELECT p.update_id FROM bundle_members b
                 JOIN revisions m ON m.update_id = b.member_update_id AND m.revision_number = b.member_revision_number
                 JOIN prerequisites p ON p.revision_id = b.revision_id
               WHERE m.revision_id = $1) u ORDER BY update_id COLLATE "C""#,
            &[&revision_id],
        )?;
        ids.retain(|id| categories.by_id.contains_key(id));
        Ok(ids)
    }

    /// The prerequisites of a revision, grouped by clause.
    fn prerequisite_groups(&self, revision_id: i32) -> StoreResult<Vec<PrerequisiteGroup>> {
        let rows = self.rows(
            "reading prerequisites",
            r#"SELECT clause, update_id, is_category FROM prerequisites WHERE revision_id = $1
               ORDER BY clause, update_id COLLATE "C""#,
            &[&revision_id],
            |r| Ok((r.try_get::<_, i32>(0)?, r.try_get::<_, String>(1)?, r.try_get(2)?)),
        )?;
        let mut groups: Vec<PrerequisiteGroup> = Vec::new();
        let mut last = None;
        for (clause, id, is_category) in rows {
            if last != Some(clause) {
                groups.push(PrerequisiteGroup { is_category, update_ids: Vec::new() });
                last = Some(clause);
            }
            groups.last_mut().expect("pushed above").update_ids.push(id);
        }
        Ok(groups)
    }

    /// One compressed column of a revision's document row, or a localized fragment.
    fn fragment_bytes(
        &self,
        revision_id: i32,
        kind: &FragmentKind,
    ) -> StoreResult<Option<Vec<u8>>> {
        let what = format!("reading a fragment of revision #{revision_id}");
        let mut conn = self.connection()?;
        let row = match kind {
            FragmentKind::Core => conn
                .query_opt("SELECT core FROM revision_documents WHERE revision_id = $1", &[&revision_id]),
            FragmentKind::Extended => conn.query_opt(
                "SELECT extended FROM revision_documents WHERE revision_id = $1",
                &[&revision_id],
            ),
            FragmentKind::Localized(lang) => conn.query_opt(
                "SELECT fragment FROM localized_properties WHERE revision_id = $1 AND language = $2",
                &[&revision_id, lang],
            ),
        }
        .map_err(self.fail(what.clone()))?;
        row.map(|r| r.try_get(0)).transpose().map_err(self.fail(what))
    }

    fn decompressed(&self, bytes: &[u8], what: &str) -> StoreResult<Vec<u8>> {
        crate::store::documents::decompress(bytes, what).map_err(|e| StoreError::Database {
            database: self.url.to_string(),
            context: format!("reading the {what}"),
            source: crate::store::DatabaseError { message: e.to_string(), busy: false },
        })
    }
}

impl CatalogStorage for PostgresStore {
    fn category_index(&self) -> StoreResult<CategoryIndex> {
        let rows = self.rows(
            "listing categories",
            "SELECT update_id, COALESCE(category_kind, ''), title FROM revisions WHERE update_type = 'Category' AND is_latest",
            &[],
            |r| Ok((r.try_get::<_, String>(0)?, (r.try_get(1)?, r.try_get(2)?))),
        )?;
        Ok(CategoryIndex { by_id: rows.into_iter().collect() })
    }

    fn list_updates(&self, filter: &UpdateFilter) -> StoreResult<Vec<UpdateSummary>> {
        let categories = self.category_index()?;
        let memberships = self.memberships(&categories)?;
        let which = if filter.all {
            ""
        } else {
            "AND update_type IN ('Software', 'Driver')
             AND NOT EXISTS (SELECT 1 FROM bundle_members b WHERE b.member_update_id = r.update_id)"
        };
        let sql = format!(
            r#"SELECT {SUMMARY_COLUMNS} FROM revisions r WHERE is_latest {which}
               ORDER BY creation_date COLLATE "C" DESC NULLS LAST, revision_id DESC"#
        );
        let mut list = self.rows("listing updates", &sql, &[], summary_from_row)?;
        decorate(&mut list, &categories, &memberships);
        let approved = self.approvals()?;
        let declined = self.declines()?;
        let superseded = self.superseded_update_ids()?;
        let state = (&approved[..], &declined[..], &superseded);
        mark_and_filter(&mut list, filter, &categories, &memberships, state);
        Ok(list)
    }

    fn resolve_update(&self, id: &str) -> StoreResult<Vec<i32>> {
        let id = id.trim();
        let what = format!("resolving {id}");
        let query = |sql: &str, p: &Params<'_>| self.rows(&what, sql, p, |r| r.try_get(0));
        let found = match UpdateRef::parse(id)? {
            UpdateRef::Revision(guid, rev) => query(
                "SELECT revision_id FROM revisions WHERE update_id = $1 AND revision_number = $2",
                &[&guid, &rev],
            )?,
            UpdateRef::Latest(guid) => query(
                "SELECT revision_id FROM revisions WHERE update_id = $1 AND is_latest",
                &[&guid],
            )?,
            UpdateRef::RevisionId(rid) => {
                query("SELECT revision_id FROM revisions WHERE revision_id = $1", &[&rid])?
            }
            UpdateRef::Kb(kb) => query(
                "SELECT revision_id FROM revisions WHERE kb_article = $1 AND is_latest ORDER BY revision_id",
                &[&kb],
            )?,
        };
        found_updates(id, found)
    }

    fn update_summary(&self, revision_id: i32) -> StoreResult<UpdateSummary> {
        let categories = self.category_index()?;
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM revisions WHERE revision_id = $1");
        let mut s = self
            .rows(
                &format!("reading revision {revision_id}"),
                &sql,
                &[&revision_id],
                summary_from_row,
            )?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("no revision #{revision_id}")))?;
        let cats = self.revision_categories(revision_id, &categories)?;
        let memberships = HashMap::from([(revision_id, cats)]);
        decorate(std::slice::from_mut(&mut s), &categories, &memberships);
        Ok(s)
    }

    fn update_detail(&self, revision_id: i32) -> StoreResult<UpdateDetail> {
        let summary = self.update_summary(revision_id)?;
        let what = format!("reading revision {revision_id}");
        let (description, security_bulletin, handler, core_size, document_size) = self
            .rows(
                &what,
                r#"SELECT (SELECT l.description FROM localized_properties l WHERE l.revision_id = $1
                           ORDER BY l.language = 'en' DESC, l.language COLLATE "C" LIMIT 1),
                          security_bulletin, handler, core_size, document_size FROM revisions WHERE revision_id = $1"#,
                &[&revision_id],
                |r| {
                    let sizes: (i64, i64) = (r.try_get(3)?, r.try_get(4)?);
                    Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, sizes.0, sizes.1))
                },
            )?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("no revision #{revision_id}")))?;
        let related = "reading relationships";
        let id = &[&revision_id as &(dyn ToSql + Sync)];
        Ok(UpdateDetail {
            prerequisites: self.prerequisite_groups(revision_id)?,
            languages: self.revision_languages(revision_id)?.0,
            bundled_updates: self.texts(
                related,
                r#"SELECT member_update_id || '/' || member_revision_number FROM bundle_members WHERE revision_id = $1
                   ORDER BY clause, member_update_id COLLATE "C", member_revision_number"#,
                id,
            )?,
            bundled_in: self.texts(
                related,
                r#"SELECT DISTINCT p.update_id || '/' || p.revision_number, p.revision_id FROM bundle_members b
                   JOIN revisions p ON p.revision_id = b.revision_id
                   JOIN revisions m ON m.update_id = b.member_update_id AND m.revision_number = b.member_revision_number
                   WHERE m.revision_id = $1 ORDER BY p.revision_id"#,
                id,
            )?,
            supersedes: self.texts(
                related,
                r#"SELECT superseded_update_id FROM supersedences WHERE revision_id = $1
                   ORDER BY superseded_update_id COLLATE "C""#,
                id,
            )?,
            superseded_by: self.texts(
                related,
                r#"SELECT DISTINCT r.update_id COLLATE "C" FROM supersedences s JOIN revisions r ON r.revision_id = s.revision_id
                   WHERE s.superseded_update_id = (SELECT update_id FROM revisions WHERE revision_id = $1) AND r.is_latest
                   ORDER BY 1"#,
                id,
            )?,
            other_revisions: self.rows(
                "listing revisions",
                "SELECT revision_id FROM revisions WHERE update_id = $1 AND revision_id <> $2 ORDER BY revision_number",
                &[&summary.update_id.as_str(), &revision_id],
                |r| r.try_get(0),
            )?,
            files: self.revision_files(revision_id)?,
            summary,
            description,
            security_bulletin,
            handler,
            core_size: core_size as u64,
            document_size: document_size as u64,
        })
    }

    fn revision_files(&self, revision_id: i32) -> StoreResult<Vec<FileSummary>> {
        let sql = format!(
            r#"SELECT {FILE_COLUMNS} FROM revision_files rf JOIN files f ON f.sha1 = rf.sha1
               WHERE rf.revision_id = $1 ORDER BY f.file_name COLLATE "C""#
        );
        let files = self.rows("listing files", &sql, &[&revision_id], file_from_row)?;
        Ok(files.into_iter().flatten().collect())
    }

    fn all_files(&self) -> StoreResult<Vec<FileSummary>> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files f ORDER BY f.sha1");
        let files = self.rows("listing files", &sql, &[], file_from_row)?;
        Ok(files.into_iter().flatten().collect())
    }

    fn fragment(&self, revision_id: i32, kind: &FragmentKind) -> StoreResult<Option<String>> {
        let Some(bytes) = self.fragment_bytes(revision_id, kind)? else { return Ok(None) };
        let bytes = match kind {
            FragmentKind::Core | FragmentKind::Extended => {
                self.decompressed(&bytes, &format!("fragment of revision #{revision_id}"))?
            }
            FragmentKind::Localized(_) => bytes,
        };
        Ok(Some(
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ))
    }

    fn revision_languages(&self, revision_id: i32) -> StoreResult<(Vec<String>, Option<String>)> {
        let languages = self.texts(
            "reading relationships",
            r#"SELECT language FROM localized_properties WHERE revision_id = $1 ORDER BY language COLLATE "C""#,
            &[&revision_id],
        )?;
        let default = self
            .rows(
                "reading a revision",
                "SELECT default_language FROM revisions WHERE revision_id = $1",
                &[&revision_id],
                |r| r.try_get::<_, Option<String>>(0),
            )?
            .pop()
            .flatten();
        Ok((languages, default))
    }

    fn document(&self, revision_id: i32) -> StoreResult<Vec<u8>> {
        let what = format!("reading the document of revision #{revision_id}");
        let sql = "SELECT document FROM revision_documents WHERE revision_id = $1";
        let stored: Vec<u8> =
            self.rows(&what, sql, &[&revision_id], |r| r.try_get(0))?.pop().ok_or_else(|| {
                StoreError::NotFound(format!("no document for revision #{revision_id}"))
            })?;
        self.decompressed(&stored, &format!("document of revision #{revision_id}"))
    }

    fn catalog_status(&self) -> StoreResult<CatalogStatus> {
        let what = "summarizing the catalog";
        let counts = self
            .rows(
                what,
                "SELECT (SELECT count(*) FROM revisions),
                        count(*) FILTER (WHERE true),
                        count(*) FILTER (WHERE is_bundle),
                        count(*) FILTER (WHERE publication_state = 'Expired'),
                        (SELECT count(*) FROM files),
                        (SELECT COALESCE(sum(size), 0)::bigint FROM files),
                        (SELECT count(*) FROM files WHERE present),
                        (SELECT COALESCE(sum(size), 0)::bigint FROM files WHERE present),
                        (SELECT COALESCE(sum(document_size), 0)::bigint FROM revisions)
                 FROM revisions WHERE is_latest",
                &[],
                |r| {
                    (0..9)
                        .map(|i| r.try_get::<_, i64>(i).map(|n| n as u64))
                        .collect::<Result<Vec<_>, _>>()
                },
            )?
            .pop()
            .unwrap_or_default();
        let pairs = |sql: &str| {
            self.rows(what, sql, &[], |r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64)))
        };
        Ok(CatalogStatus {
            revisions: counts[0],
            updates: counts[1],
            by_type: pairs(
                r#"SELECT update_type, count(*) FROM revisions WHERE is_latest GROUP BY update_type ORDER BY update_type COLLATE "C""#,
            )?,
            categories_by_kind: pairs(
                r#"SELECT COALESCE(category_kind, 'Other'), count(*) FROM revisions WHERE is_latest AND update_type = 'Category'
                   GROUP BY 1 ORDER BY COALESCE(category_kind, 'Other') COLLATE "C""#,
            )?,
            bundles: counts[2],
            expired: counts[3],
            files: counts[4],
            file_bytes: counts[5],
            files_present: counts[6],
            present_bytes: counts[7],
            document_bytes: counts[8],
            catalog_stamp: self.setting("catalog_stamp")?.and_then(|s| s.parse().ok()).unwrap_or(0),
        })
    }

    fn offerable_revisions(&self) -> StoreResult<u64> {
        let count: Vec<i64> = self.rows(
            "counting the revisions clients may be offered",
            "SELECT count(*) FROM revisions WHERE is_latest AND update_type <> 'Driver'
               AND COALESCE(publication_state, '') <> 'Expired'
               AND update_id NOT IN (SELECT update_id FROM declined_updates)
               AND update_id NOT IN (SELECT update_id FROM removed_updates)",
            &[],
            |r| r.try_get(0),
        )?;
        Ok(count.first().copied().unwrap_or(0) as u64)
    }

    fn mark_file_present(&self, sha1: &Sha1Digest, present: bool) -> StoreResult<()> {
        self.connection()?
            .execute("UPDATE files SET present = $2 WHERE sha1 = $1", &[&&sha1.0[..], &present])
            .map(|_| ())
            .map_err(self.fail(format!("marking file {sha1}")))
    }
}
