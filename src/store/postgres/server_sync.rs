//! The PostgreSQL side of server-server sync: what an upstream tells its downstream servers
//! (revision lists by anchor and filter, files, deployments), and what a downstream keeps of its
//! upstream (where files come from). Lists come in SQLite's order.

use super::PostgresStore;
use crate::store::StoreResult;
use crate::store::server_sync::*;
use postgres::Row;
use std::collections::{HashMap, HashSet};

const CANDIDATE_COLUMNS: &str =
    "revision_id, update_id, revision_number, changed_stamp, is_bundle, languages";

/// A bundle member: UpdateID, revision number, and its languages if it is stored.
type Member = (String, i32, Option<String>);

fn candidate_from_row(r: &Row) -> Result<Candidate, postgres::Error> {
    Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?))
}

/// A SHA-1 column with what goes with it; digests of the wrong length are skipped.
fn digest_pairs<T>(rows: Vec<(Vec<u8>, T)>) -> impl Iterator<Item = ([u8; 20], T)> {
    rows.into_iter().filter_map(|(d, x)| <[u8; 20]>::try_from(d.as_slice()).ok().map(|d| (d, x)))
}

impl PostgresStore {
    /// The category update ids each revision names as prerequisites.
    fn category_memberships(&self) -> StoreResult<HashMap<i32, Vec<String>>> {
        let pairs = self.rows(
            "reading category memberships",
            r#"SELECT revision_id, update_id FROM prerequisites WHERE is_category
               ORDER BY revision_id, clause, update_id COLLATE "C""#,
            &[],
            |r| Ok((r.try_get::<_, i32>(0)?, r.try_get::<_, String>(1)?)),
        )?;
        let mut map: HashMap<i32, Vec<String>> = HashMap::new();
        for (id, cat) in pairs {
            map.entry(id).or_default().push(cat);
        }
        Ok(map)
    }

    /// Every bundle's members: bundle revision id to (UpdateID, revision number, languages).
    fn members_of_bundles(&self) -> StoreResult<HashMap<i32, Vec<Member>>> {
        let rows = self.rows(
            "listing bundle members",
            r#"SELECT m.revision_id, m.member_update_id, m.member_revision_number, r.languages FROM bundle_members m
               LEFT JOIN revisions r ON r.update_id = m.member_update_id AND r.revision_number = m.member_revision_number
               ORDER BY m.revision_id, m.clause, m.member_update_id COLLATE "C", m.member_revision_number"#,
            &[],
            |r| Ok((r.try_get::<_, i32>(0)?, (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))),
        )?;
        let mut map: HashMap<i32, Vec<_>> = HashMap::new();
        for (bundle, member) in rows {
            map.entry(bundle).or_default().push(member);
        }
        Ok(map)
    }

    /// Runs one statement per item in one transaction.
    fn update_each(
        &self,
        what: &str,
        sql: &str,
        items: &[(&[u8], Option<&str>)],
    ) -> StoreResult<()> {
        let mut conn = self.connection()?;
        let mut tx = conn.transaction().map_err(self.fail(what))?;
        let statement = tx.prepare(sql).map_err(self.fail(what))?;
        for (sha1, url) in items {
            match url {
                Some(url) => tx.execute(&statement, &[sha1, url]),
                None => tx.execute(&statement, &[sha1]),
            }
            .map_err(self.fail(what))?;
        }
        tx.commit().map_err(self.fail(what))
    }
}

impl ServerSyncStorage for PostgresStore {
    fn revisions_for_downstream(&self, f: &DownstreamFilter) -> StoreResult<Vec<(String, i32)>> {
        let what = "listing revisions for a downstream";
        if f.get_config {
            let sql = format!(
                "SELECT {CANDIDATE_COLUMNS} FROM revisions WHERE is_latest AND update_type IN ('Category', 'Detectoid')
                 AND changed_stamp > $1 ORDER BY revision_id"
            );
            let since = f.since.unwrap_or(-1);
            let rows = self.rows(what, &sql, &[&since], candidate_from_row)?;
            return Ok(rows.into_iter().map(|(_, u, n, ..)| (u, n)).collect());
        }
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS} FROM revisions WHERE is_latest AND update_type IN ('Software', 'Driver') ORDER BY revision_id"
        );
        let mut candidates = self.rows(what, &sql, &[], candidate_from_row)?;
        candidates.retain(|c| f.wants_languages(&c.5));
        let selected = f.select(candidates, || self.category_memberships())?;
        let members =
            if selected.iter().any(|s| s.3) { self.members_of_bundles()? } else { HashMap::new() };
        let mut out: Vec<(String, i32)> = Vec::with_capacity(selected.len());
        let mut seen: HashSet<(String, i32)> = HashSet::new();
        for (id, u, n, is_bundle) in selected {
            if is_bundle {
                for (u, n, languages) in members.get(&id).into_iter().flatten() {
                    let m = (u.clone(), *n);
                    if f.wants_languages(languages) && seen.insert(m.clone()) {
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
        let found = self.rows(
            &format!("looking up {update_id}/{revision_number}"),
            "SELECT revision_id, document_size FROM revisions WHERE update_id = $1 AND revision_number = $2",
            &[&update_id, &revision_number],
            |r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64)),
        )?;
        Ok(found.into_iter().next())
    }

    fn stored_identities(&self) -> StoreResult<HashSet<(String, i32)>> {
        let sql = "SELECT update_id, revision_number FROM revisions";
        let rows =
            self.rows("listing revisions", sql, &[], |r| Ok((r.try_get(0)?, r.try_get(1)?)))?;
        Ok(rows.into_iter().collect())
    }

    fn revision_file_sources(
        &self,
        revision_id: i32,
    ) -> StoreResult<Vec<([u8; 20], Option<String>)>> {
        let rows = self.rows(
            "listing a revision's files",
            "SELECT f.sha1, f.source_url FROM revision_files rf JOIN files f ON f.sha1 = rf.sha1
             WHERE rf.revision_id = $1 ORDER BY f.sha1",
            &[&revision_id],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
        )?;
        Ok(digest_pairs(rows).collect())
    }

    fn set_file_sources(&mut self, sources: &[([u8; 20], String)]) -> StoreResult<()> {
        let items: Vec<(&[u8], Option<&str>)> =
            sources.iter().map(|(sha1, url)| (&sha1[..], Some(url.as_str()))).collect();
        let sql = "UPDATE files SET source_url = $2 WHERE sha1 = $1";
        self.update_each("recording file sources", sql, &items)
    }

    fn present_file_extension(
        &self,
        sha1: &crate::catalog::Sha1Digest,
    ) -> StoreResult<Option<String>> {
        let found = self.rows(
            "looking up a file",
            "SELECT extension FROM files WHERE sha1 = $1 AND present",
            &[&&sha1.0[..]],
            |r| r.try_get(0),
        )?;
        Ok(found.into_iter().next())
    }

    fn file_sources(&self) -> StoreResult<HashMap<[u8; 20], String>> {
        let rows = self.rows(
            "listing file sources",
            "SELECT sha1, source_url FROM files WHERE source_url IS NOT NULL",
            &[],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
        )?;
        Ok(digest_pairs(rows).collect())
    }

    fn mark_files_present(&mut self, sha1s: &[[u8; 20]]) -> StoreResult<()> {
        let items: Vec<(&[u8], Option<&str>)> = sha1s.iter().map(|s| (&s[..], None)).collect();
        let sql = "UPDATE files SET present = true WHERE sha1 = $1";
        self.update_each("marking files present", sql, &items)
    }

    fn deployments_since(
        &self,
        since: i64,
    ) -> StoreResult<(Vec<DownstreamDeployment>, Vec<String>)> {
        let deployments = self.rows(
            "listing deployments",
            "SELECT a.update_id, r.revision_number, a.action, a.deadline, a.admin, a.changed_at, a.deployment_guid, a.group_id
             FROM approvals a JOIN revisions r ON r.update_id = a.update_id AND r.is_latest
             WHERE a.changed_stamp > $1 ORDER BY a.approval_id",
            &[&since],
            |r| {
                Ok(DownstreamDeployment {
                    update_id: r.try_get(0)?,
                    revision_number: r.try_get(1)?,
                    action: r.try_get(2)?,
                    deadline: r.try_get(3)?,
                    admin: r.try_get(4)?,
                    changed_at: r.try_get(5)?,
                    deployment_guid: r.try_get(6)?,
                    group_id: r.try_get(7)?,
                })
            },
        )?;
        let dead = self.texts(
            "listing removed deployments",
            // In the order they were first removed, as SQLite reads them.
            r#"SELECT deployment_guid FROM approval_changes
               WHERE change = 'removed' AND changed_stamp > $1 AND deployment_guid <> ''
               AND deployment_guid NOT IN (SELECT deployment_guid FROM approvals)
               GROUP BY deployment_guid ORDER BY min(changed_stamp), deployment_guid COLLATE "C""#,
            &[&since],
        )?;
        Ok((deployments, dead))
    }

    fn languages(&self) -> StoreResult<Vec<String>> {
        self.texts(
            "listing languages",
            r#"SELECT DISTINCT language COLLATE "C" FROM localized_properties ORDER BY 1"#,
            &[],
        )
    }

    fn downstream_servers(&self) -> StoreResult<Vec<(String, String, String)>> {
        self.rows(
            "listing downstream servers",
            r#"SELECT server_id, name, last_seen_at FROM downstream_servers ORDER BY name COLLATE "C""#,
            &[],
            |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
        )
    }
}
