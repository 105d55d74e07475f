//! The PostgreSQL side of the server: target groups, computers, approvals, declines, reported
//! events, and the batched writer of client activity.
//!
//! Text orders as in SQLite (`COLLATE "C"`: by code point, whatever the database's collation),
//! and events in the order they arrived (`seq`, SQLite's rowid).

use super::PostgresStore;
use super::deployments::{APPROVAL_COLUMNS, approval_from_row};
use crate::ids::{ComputerId, GroupId};
use crate::store::clients::*;
use crate::store::prelude::*;
use crate::store::{GroupName, StoreResult, Targeting, TargetingMode, now_rfc3339};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Row, Statement, Transaction};
use std::collections::HashMap;
use std::time::Duration;

const GROUP_COLUMNS: &str = "group_id, name, parent_id, is_builtin";

const COMPUTER_COLUMNS: &str = "computer_id, dns_name, requested_groups, os_description, registered_at IS NOT NULL, first_seen_at, last_contact_at, last_sync_at, last_report_at";

const EVENT_COLUMNS: &str = "event_instance_id, computer_id, event_id, source_id, update_id, revision_number, win32_hresult, time_at_target, app_name, replacement_strings, misc_data";

pub(super) fn group_from_row(r: &Row) -> Result<TargetGroup, postgres::Error> {
    Ok(TargetGroup {
        group_id: r.try_get(0)?,
        name: r.try_get(1)?,
        parent_id: r.try_get(2)?,
        is_builtin: r.try_get(3)?,
    })
}

/// A computer row (`COMPUTER_COLUMNS`) with the groups it is in.
fn computer_from_row(r: &Row, groups: Vec<GroupId>) -> Result<ComputerRecord, postgres::Error> {
    Ok(ComputerRecord {
        computer_id: r.try_get(0)?,
        dns_name: r.try_get(1)?,
        requested_groups: r.try_get(2)?,
        os_description: r.try_get(3)?,
        registered: r.try_get(4)?,
        groups,
        first_seen_at: r.try_get(5)?,
        last_contact_at: r.try_get(6)?,
        last_sync_at: r.try_get(7)?,
        last_report_at: r.try_get(8)?,
    })
}

/// An event row (`EVENT_COLUMNS`); the string lists are JSON arrays, unreadable ones empty (as
/// in SQLite).
fn event_from_row(r: &Row) -> Result<EventRecord, postgres::Error> {
    let list = |i: usize| -> Result<Vec<String>, postgres::Error> {
        let text: Option<String> = r.try_get(i)?;
        Ok(serde_json::from_str(&text.unwrap_or_default()).unwrap_or_default())
    };
    Ok(EventRecord {
        event_instance_id: r.try_get(0)?,
        computer_id: r.try_get(1)?,
        event_id: r.try_get(2)?,
        source_id: r.try_get(3)?,
        update_id: r.try_get(4)?,
        revision_number: r.try_get(5)?,
        win32_hresult: r.try_get(6)?,
        time_at_target: r.try_get::<_, Option<String>>(7)?.unwrap_or_default(),
        app_name: r.try_get(8)?,
        replacement_strings: list(9)?,
        misc_data: list(10)?,
    })
}

/// A group by name (case-insensitive) or GUID, through a connection or inside a transaction. A
/// group whose GUID matches wins over one whose name is that GUID's text.
pub(super) fn group_in(
    client: &mut impl postgres::GenericClient,
    name_or_id: &str,
) -> Result<Option<TargetGroup>, postgres::Error> {
    let sql = format!(
        "SELECT {GROUP_COLUMNS} FROM target_groups WHERE lower(name) = lower($1::text) OR group_id = lower($1::text)
         ORDER BY group_id = lower($1::text) DESC LIMIT 1"
    );
    client.query_opt(&sql, &[&name_or_id])?.as_ref().map(group_from_row).transpose()
}

impl PostgresStore {
    /// Rows of `sql` mapped by `read`; `what` says what was being done.
    pub(super) fn rows<T>(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        mut read: impl FnMut(&Row) -> Result<T, postgres::Error>,
    ) -> StoreResult<Vec<T>> {
        let rows = self.connection()?.query(sql, params).map_err(self.fail(what))?;
        rows.iter().map(&mut read).collect::<Result<_, _>>().map_err(self.fail(what))
    }

    /// Each computer's groups (by GUID, as SQLite's primary key orders them).
    fn groups_of_computers(
        &self,
        computer_id: Option<&str>,
        what: &str,
    ) -> StoreResult<HashMap<String, Vec<GroupId>>> {
        let pairs = self.rows(
            what,
            r#"SELECT computer_id, group_id FROM computer_groups WHERE ($1::text IS NULL OR computer_id = $1)
               ORDER BY computer_id COLLATE "C", group_id COLLATE "C""#,
            &[&computer_id],
            |r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, GroupId>(1)?)),
        )?;
        let mut groups: HashMap<String, Vec<GroupId>> = HashMap::new();
        for (computer, group) in pairs {
            groups.entry(computer).or_default().push(group);
        }
        Ok(groups)
    }
}

impl ClientStorage for PostgresStore {
    fn groups(&self) -> StoreResult<Vec<TargetGroup>> {
        let sql = format!(
            r#"SELECT {GROUP_COLUMNS} FROM target_groups ORDER BY is_builtin DESC, name COLLATE "C""#
        );
        self.rows("listing groups", &sql, &[], group_from_row)
    }

    fn group(&self, name_or_id: &str) -> StoreResult<Option<TargetGroup>> {
        group_in(&mut *self.connection()?, name_or_id).map_err(self.fail("reading a group"))
    }

    fn computers(&self) -> StoreResult<Vec<ComputerRecord>> {
        let what = "listing computers";
        let mut groups = self.groups_of_computers(None, what)?;
        let sql = format!(
            r#"SELECT {COMPUTER_COLUMNS} FROM computers ORDER BY dns_name COLLATE "C", computer_id COLLATE "C""#
        );
        self.rows(what, &sql, &[], |r| {
            let id: &str = r.try_get(0)?;
            let of_computer = groups.remove(id).unwrap_or_default();
            computer_from_row(r, of_computer)
        })
    }

    fn computer(&self, computer_id: &str) -> StoreResult<Option<ComputerRecord>> {
        let what = "reading a computer";
        let groups = self.groups_of_computers(Some(computer_id), what)?;
        let of_computer = groups.into_values().next().unwrap_or_default();
        let sql = format!("SELECT {COMPUTER_COLUMNS} FROM computers WHERE computer_id = $1");
        let row = self.connection()?.query_opt(&sql, &[&computer_id]).map_err(self.fail(what))?;
        row.map(|r| computer_from_row(&r, of_computer)).transpose().map_err(self.fail(what))
    }

    fn deployment_stamp(&self) -> StoreResult<i64> {
        Ok(self.setting("deployment_stamp")?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    fn catalog_stamp(&self) -> StoreResult<i64> {
        Ok(self.setting("catalog_stamp")?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    fn approvals(&self) -> StoreResult<Vec<Approval>> {
        let sql = format!("SELECT {APPROVAL_COLUMNS} FROM approvals ORDER BY approval_id");
        self.rows("listing approvals", &sql, &[], approval_from_row)
    }

    fn declines(&self) -> StoreResult<Vec<Decline>> {
        // SQLite lists them as they were declined; the stamp says that here.
        let sql = r#"SELECT update_id, declined_at, changed_stamp FROM declined_updates
                     ORDER BY changed_stamp, update_id COLLATE "C""#;
        self.rows("listing declines", sql, &[], |r| {
            Ok(Decline {
                update_id: r.try_get(0)?,
                declined_at: r.try_get(1)?,
                changed_stamp: r.try_get(2)?,
            })
        })
    }

    fn approval_change_log(&self) -> StoreResult<Vec<(i64, String)>> {
        let sql = "SELECT changed_stamp, update_id FROM approval_changes ORDER BY changed_stamp";
        self.rows("reading approval changes", sql, &[], |r| Ok((r.try_get(0)?, r.try_get(1)?)))
    }

    fn apply_client_writes(&mut self, writes: &[ClientWrite]) -> StoreResult<()> {
        apply_writes(self, writes)
    }

    fn events(&self, computer_id: Option<&str>) -> StoreResult<Vec<EventRecord>> {
        // SQLite sorts NULL first, so last when descending.
        let sql = format!(
            r#"SELECT {EVENT_COLUMNS} FROM events WHERE ($1::text IS NULL OR computer_id = $1)
               ORDER BY time_at_target COLLATE "C" DESC NULLS LAST, seq DESC"#
        );
        self.rows("reading events", &sql, &[&computer_id], event_from_row)
    }
}

/// Attempts at one batch of client writes: PostgreSQL gives a transaction up when front ends
/// writing the same rows in another order wait on each other (a deadlock), and the batch is
/// written again.
const WRITE_ATTEMPTS: u32 = 8;

/// Held from a batch's first creation of a group until it commits, so that front ends count the
/// groups clients created and create them one at a time: the limit holds across front ends, and
/// one that waited finds the group the other created rather than making a second.
const CLIENT_GROUPS_LOCK: i64 = 0x6665_7272_7947_7270; // "ferryGrp"

const UPSERT_COMPUTER: &str = "INSERT INTO computers (computer_id, dns_name, requested_groups, first_seen_at, last_contact_at) VALUES ($1, $2, $3, $4, $4)
     ON CONFLICT (computer_id) DO UPDATE SET dns_name = excluded.dns_name, requested_groups = excluded.requested_groups,
         last_contact_at = excluded.last_contact_at";

const REGISTER: &str = "UPDATE computers SET info = $2, os_description = $3, registered_at = COALESCE(registered_at, $4), last_contact_at = $4
     WHERE computer_id = $1";

const SYNCED: &str = "UPDATE computers SET last_sync_at = $2, last_contact_at = $2 WHERE computer_id = ANY($1::text[])";

const DOWNSTREAM: &str = "INSERT INTO downstream_servers (server_id, name, first_seen_at, last_seen_at) VALUES ($1, $2, $3, $3)
     ON CONFLICT (server_id) DO UPDATE SET name = excluded.name, last_seen_at = excluded.last_seen_at";

/// Events in the order given (their `seq`), each instance once whoever stored it first; each
/// computer's count goes up by what was stored. Returns the computers that have a row and their
/// counts.
const INSERT_EVENTS: &str = "WITH inserted AS (
         INSERT INTO events (event_instance_id, computer_id, event_id, source_id, update_id, revision_number, win32_hresult,
             time_at_target, received_at, app_name, replacement_strings, misc_data)
         SELECT i, c, e, s, u, r, h, t, $9::text, a, rs, md
         FROM unnest($1::text[], $2::text[], $3::int4[], $4::int4[], $5::text[], $6::int4[], $7::int8[], $8::text[], $10::text[], $11::text[], $12::text[])
             WITH ORDINALITY AS given (i, c, e, s, u, r, h, t, a, rs, md, n)
         ORDER BY n
         ON CONFLICT (event_instance_id) DO NOTHING
         RETURNING computer_id),
     added AS (SELECT computer_id, count(*) AS n FROM inserted GROUP BY computer_id)
     UPDATE computers SET events_at_most = events_at_most + added.n
     FROM added WHERE computers.computer_id = added.computer_id
     RETURNING computers.computer_id, computers.events_at_most";

const REPORTED: &str = "UPDATE computers SET last_report_at = $2, last_contact_at = $2 WHERE computer_id = ANY($1::text[])";

/// Deletes the events of each computer in `$1` older than its newest `$2`.
const TRIM_EVENTS: &str = "DELETE FROM events e
     USING (SELECT c, (SELECT seq FROM events WHERE computer_id = c ORDER BY seq DESC OFFSET $2 LIMIT 1) AS newest_dropped
            FROM unnest($1::text[]) AS given (c)) AS cut
     WHERE e.computer_id = cut.c AND e.seq <= cut.newest_dropped";

const RECOUNT_EVENTS: &str = "UPDATE computers SET events_at_most =
         (SELECT count(*) FROM events WHERE events.computer_id = computers.computer_id)
     WHERE computer_id = ANY($1::text[])";

const MEMBERSHIPS: &str = "SELECT group_id FROM computer_groups WHERE computer_id = $1";

const CLEAR_GROUPS: &str = "DELETE FROM computer_groups WHERE computer_id = $1";

const JOIN_GROUP: &str =
    "INSERT INTO computer_groups (computer_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";

const GROUP_NAMED: &str = "SELECT group_id FROM target_groups WHERE lower(name) = lower($1::text)";

/// `apply_client_writes`: the batch in one transaction, written again when PostgreSQL gave it up
/// for another's sake.
fn apply_writes(store: &PostgresStore, writes: &[ClientWrite]) -> StoreResult<()> {
    let now = now_rfc3339();
    let mut conn = store.connection()?;
    let mut attempt = 1;
    loop {
        match apply_batch(&mut conn, writes, &now) {
            Ok(()) => return Ok(()),
            Err(e) if attempt < WRITE_ATTEMPTS && is_transient(&e) => {
                tracing::debug!("recording client activity (attempt {attempt}) gave way: {e}");
                std::thread::sleep(Duration::from_millis(5 * u64::from(attempt)));
                attempt += 1;
            }
            Err(e) => return Err(store.fail("recording client activity")(e)),
        }
    }
}

/// A failure that another transaction caused and that writing the batch again gets past: a
/// deadlock, or a group removed between reading it and joining it.
fn is_transient(e: &postgres::Error) -> bool {
    let transient = [
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::FOREIGN_KEY_VIOLATION,
    ];
    e.code().is_some_and(|code| transient.contains(code))
}

fn apply_batch(
    conn: &mut postgres::Client,
    writes: &[ClientWrite],
    now: &str,
) -> Result<(), postgres::Error> {
    let mut tx = conn.transaction()?;
    // Read once per batch, as in SQLite.
    let targeting = targeting_in(&mut tx)?;
    let mut batch = Batch {
        tx,
        now,
        targeting,
        statements: HashMap::new(),
        creating_groups: false,
        regrouped: Vec::new(),
    };
    let plan = WritePlan::new(writes);
    for write in &plan.in_order {
        batch.apply(write)?;
    }
    batch.activity(&plan)?;
    super::changes::announce_regrouped(&mut batch.tx, &batch.regrouped)?;
    batch.tx.commit()
}

/// The targeting settings, read inside the batch's transaction.
fn targeting_in(tx: &mut Transaction<'_>) -> Result<Targeting, postgres::Error> {
    let rows = tx.query("SELECT key, value FROM settings WHERE key LIKE 'targeting.%'", &[])?;
    let mut values = HashMap::new();
    for r in rows {
        values.insert(r.try_get::<_, String>(0)?, r.try_get::<_, String>(1)?);
    }
    Targeting::from_settings(|key| Ok::<_, postgres::Error>(values.get(key).cloned()))
}

/// One batch of client writes in its transaction.
struct Batch<'c, 'n> {
    tx: Transaction<'c>,
    now: &'n str,
    targeting: Targeting,
    /// Prepared once per batch: a batch repeats a few statements many times.
    statements: HashMap<&'static str, Statement>,
    /// `CLIENT_GROUPS_LOCK` is held.
    creating_groups: bool,
    /// Computers whose group memberships the batch changed.
    regrouped: Vec<ComputerId>,
}

type Params<'p> = [&'p (dyn ToSql + Sync)];

impl Batch<'_, '_> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(prepared) = self.statements.get(sql) {
            return Ok(prepared.clone());
        }
        let prepared = self.tx.prepare(sql)?;
        self.statements.insert(sql, prepared.clone());
        Ok(prepared)
    }

    fn execute(&mut self, sql: &'static str, params: &Params<'_>) -> Result<u64, postgres::Error> {
        let prepared = self.statement(sql)?;
        self.tx.execute(&prepared, params)
    }

    fn apply(&mut self, write: &RowWrite<'_>) -> Result<(), postgres::Error> {
        let now = self.now;
        match write {
            RowWrite::Contact { computer_id, dns_name, requested_groups } => {
                self.contact(computer_id, dns_name, requested_groups)?;
            }
            RowWrite::Register { computer_id, info, os_description } => {
                // Kept as a JSON object (names sorted).
                let info = serde_json::Value::Object(
                    info.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect(),
                )
                .to_string();
                self.execute(REGISTER, &[computer_id, &info, os_description, &now])?;
            }
            RowWrite::Downstream { server_id, name } => {
                self.execute(DOWNSTREAM, &[server_id, name, &now])?;
            }
        }
        Ok(())
    }

    /// A computer made contact: its row, and its groups under client-side targeting (a
    /// computer without any waits in Unassigned Computers).
    fn contact(
        &mut self,
        computer_id: &ComputerId,
        dns_name: &str,
        requested_groups: &[GroupName],
    ) -> Result<(), postgres::Error> {
        let names: Vec<&str> = requested_groups.iter().map(GroupName::as_str).collect();
        let requested = (!names.is_empty()).then(|| names.join(";"));
        let now = self.now;
        self.execute(UPSERT_COMPUTER, &[computer_id, &dns_name, &requested, &now])?;
        // Server-side targeting keeps what administrators chose.
        let named: &[&str] =
            if self.targeting.mode == TargetingMode::Client { &names } else { &[] };
        let mut group_ids = Vec::new();
        for name in named {
            if let Some(id) = self.group_for(computer_id, name)? {
                group_ids.push(id);
            }
        }
        group_ids.sort_unstable();
        group_ids.dedup();
        let memberships = self.statement(MEMBERSHIPS)?;
        let mut current: Vec<String> = (self.tx.query(&memberships, &[computer_id])?.iter())
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        current.sort_unstable();
        let joined = if !group_ids.is_empty() && group_ids != current {
            self.execute(CLEAR_GROUPS, &[computer_id])?;
            group_ids
        } else if current.is_empty() {
            vec![UNASSIGNED_COMPUTERS.to_owned()]
        } else {
            return Ok(());
        };
        for g in &joined {
            self.execute(JOIN_GROUP, &[computer_id, g])?;
        }
        // Other front ends cache memberships: they are told which computers to read again.
        self.regrouped.push(computer_id.clone());
        Ok(())
    }

    fn group_named(&mut self, name: &str) -> Result<Option<String>, postgres::Error> {
        let prepared = self.statement(GROUP_NAMED)?;
        self.tx.query_opt(&prepared, &[&name])?.map(|r| r.try_get(0)).transpose()
    }

    /// The group a client names; one that does not exist is created if targeting allows it and
    /// clients have not created the most allowed yet.
    fn group_for(
        &mut self,
        computer_id: &str,
        name: &str,
    ) -> Result<Option<String>, postgres::Error> {
        if let Some(id) = self.group_named(name)? {
            return Ok(Some(id));
        }
        if !self.targeting.create_missing_groups {
            tracing::info!("{computer_id} asks for group {name:?}, which does not exist");
            return Ok(None);
        }
        if !self.creating_groups {
            self.tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CLIENT_GROUPS_LOCK])?;
            self.creating_groups = true;
            // Another front end may have created it while this one waited.
            if let Some(id) = self.group_named(name)? {
                return Ok(Some(id));
            }
        }
        let client_groups: i64 = self
            .tx
            .query_one("SELECT count(*) FROM target_groups WHERE created_by_client", &[])?
            .try_get(0)?;
        if client_groups >= i64::from(self.targeting.max_client_groups) {
            tracing::warn!(
                "{computer_id} asks for group {name:?}, which does not exist; clients have created {client_groups} groups, \
                 the most allowed (`ferry groups targeting --max-client-groups`), so it is not created"
            );
            return Ok(None);
        }
        let id = crate::random::guid().to_string();
        let created = self.tx.query_opt(
            "INSERT INTO target_groups (group_id, name, parent_id, is_builtin, created_at, created_by_client)
             VALUES ($1, $2, $3, false, $4, true) ON CONFLICT ((lower(name))) DO NOTHING RETURNING group_id",
            &[&id, &name, &ALL_COMPUTERS, &self.now],
        )?;
        match created {
            Some(_) => Ok(Some(id)),
            // An administrator created it meanwhile.
            None => self.group_named(name),
        }
    }

    /// What the batch's syncs and reports add, one statement each: sync and report times, the
    /// events, and each reporting computer's newest events kept.
    fn activity(&mut self, plan: &WritePlan<'_>) -> Result<(), postgres::Error> {
        let now = self.now;
        if !plan.synced.is_empty() {
            self.execute(SYNCED, &[&plan.synced, &now])?;
        }
        if !plan.reported.is_empty() {
            self.execute(REPORTED, &[&plan.reported, &now])?;
        }
        if plan.events.is_empty() {
            return Ok(());
        }
        let counts: HashMap<String, i64> = (self.insert_events(&plan.events)?.iter())
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, postgres::Error>>()?;
        let over: Vec<&ComputerId> = (plan.trimmed.iter().copied())
            .filter(|c| over_the_event_limit(counts.get(c.as_str()).copied()))
            .collect();
        if !over.is_empty() {
            // A client reports a few events a day; one that sends a flood of made-up events
            // cannot grow the store for ever.
            self.execute(TRIM_EVENTS, &[&over, &(MAX_EVENTS_PER_COMPUTER as i64)])?;
            self.execute(RECOUNT_EVENTS, &[&over])?;
        }
        Ok(())
    }

    /// Events, column by column, in the order given.
    fn insert_events(&mut self, events: &[&EventRecord]) -> Result<Vec<Row>, postgres::Error> {
        let column =
            |f: fn(&EventRecord) -> &str| events.iter().map(|e| f(e)).collect::<Vec<&str>>();
        let number = |f: fn(&EventRecord) -> i32| events.iter().map(|e| f(e)).collect::<Vec<i32>>();
        let list = |f: fn(&EventRecord) -> &Vec<String>| {
            events.iter().map(|e| serde_json::to_string(f(e)).unwrap_or_default()).collect()
        };
        let hresults: Vec<i64> = events.iter().map(|e| e.win32_hresult).collect();
        let app_names: Vec<Option<&str>> = events.iter().map(|e| e.app_name.as_deref()).collect();
        let (replacements, misc): (Vec<String>, Vec<String>) =
            (list(|e| &e.replacement_strings), list(|e| &e.misc_data));
        let now = self.now;
        let prepared = self.statement(INSERT_EVENTS)?;
        self.tx.query(
            &prepared,
            &[
                &column(|e| &e.event_instance_id),
                &column(|e| e.computer_id.as_str()),
                &number(|e| e.event_id),
                &number(|e| e.source_id),
                &column(|e| &e.update_id),
                &number(|e| e.revision_number),
                &hresults,
                &column(|e| &e.time_at_target),
                &now,
                &app_names,
                &replacements,
                &misc,
            ],
        )
    }
}
