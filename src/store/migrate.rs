//! Moving a store from SQLite to PostgreSQL (`ferry store migrate`): which tables, in which
//! order, and their rows as values no engine owns. The SQLite backend reads them
//! (`sqlite/migrate.rs`, one read transaction: one consistent snapshot), the PostgreSQL backend
//! writes them (`postgres/migrate.rs`, one transaction: a failure leaves the target as it was).
//!
//! Invariant: nothing stored is lost: every table and every column of the source has its place
//! in the target (both backends check theirs against [`TABLES`]), every value is converted into
//! the target column's type or refused with the table, row and column named, and the ids
//! clients cache (revision ids, deployment ids) keep their values; the target's identities
//! continue past the highest id the source ever handed out, so none is reused.

use super::postgres::{DatabaseUrl, PostgresStore};
use super::sqlite::migrate::SqliteSource;
use super::{StoreError, StoreResult};
use std::path::Path;
use std::time::{Duration, Instant};

/// A table of the store, as both schemas have it.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    /// The column of the target that holds the source's `rowid` (the order events arrived in,
    /// implicit on SQLite, a column on PostgreSQL).
    pub rowid_as: Option<&'static str>,
}

const fn table(name: &'static str) -> Table {
    Table { name, rowid_as: None }
}

/// Every table of the store, each after the tables its rows refer to.
pub const TABLES: &[Table] = &[
    table("settings"),
    table("revisions"),
    table("revision_documents"),
    table("localized_properties"),
    table("prerequisites"),
    table("bundle_members"),
    table("supersedences"),
    table("files"),
    table("revision_files"),
    table("trusted_keys"),
    table("imports"),
    table("removed_updates"),
    table("export_bundles"),
    table("export_carried"),
    table("target_groups"),
    table("computers"),
    table("computer_groups"),
    table("approvals"),
    table("declined_updates"),
    table("approval_changes"),
    Table { name: "events", rowid_as: Some("seq") },
    table("downstream_servers"),
    table("approval_rules"),
    table("published_updates"),
];

/// One stored value, as the source holds it: SQLite's storage classes. Text is the bytes
/// stored (meant to be UTF-8; the target checks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

impl std::fmt::Display for Value<'_> {
    /// The value as an error message shows it: short, and no control characters.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Integer(n) => write!(f, "{n}"),
            Value::Real(x) => write!(f, "{x}"),
            Value::Text(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                let shown: String =
                    text.chars().take(60).map(|c| c.escape_debug().to_string()).collect();
                let more = if text.chars().count() > 60 { "…" } else { "" };
                write!(f, "'{shown}{more}'")
            }
            Value::Blob(bytes) if bytes.len() <= 32 => write!(f, "x'{}'", hex::encode(bytes)),
            Value::Blob(bytes) => write!(f, "a blob of {} bytes", bytes.len()),
        }
    }
}

/// Where the rows come from: a store's tables, read in one consistent snapshot.
pub trait TableSource {
    /// The store, as messages name it.
    fn name(&self) -> String;
    /// The tables the source holds (all of them, whatever [`TABLES`] says).
    fn tables(&self) -> StoreResult<Vec<String>>;
    /// How many rows `table` holds.
    fn count(&self, table: &Table) -> StoreResult<u64>;
    /// Every row of `table`, with `columns` in this order, handed to `row` one at a time. A
    /// column of the source's table that `columns` does not name is an error (its values would
    /// be lost), as is a column it names that the source does not have.
    fn read(
        &self,
        table: &Table,
        columns: &[String],
        row: &mut dyn FnMut(&[Value<'_>]) -> StoreResult<()>,
    ) -> StoreResult<()>;
    /// The highest id `table`'s identity ever handed out, when the source remembers more than
    /// the rows it holds (ids of deleted rows); `None` when it keeps no such record.
    fn highest_id(&self, table: &Table) -> StoreResult<Option<i64>>;
}

/// What a migration says while it runs.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Copying `table` began; the source holds `rows` rows of it.
    Table { table: &'a str, rows: u64 },
    /// `done` rows of the current table are copied.
    Rows { done: u64 },
    /// Everything is written; committing.
    Committing,
}

/// How many rows of one table were copied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopiedTable {
    pub table: String,
    pub rows: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationReport {
    /// The source, as messages name it.
    pub from: String,
    /// The target database, without its password.
    pub to: String,
    pub tables: Vec<CopiedTable>,
    pub elapsed: Duration,
}

impl MigrationReport {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// Copies the SQLite store in `from` (its database; the content tree stays where it is) into
/// the PostgreSQL database `to`, which must be empty (a schema without rows, as a ferry that
/// connected to it leaves it, counts as empty). The source must have the schema version this
/// ferry writes. Everything is written in one transaction: on any failure the target is left
/// as it was.
pub fn sqlite_to_postgres(
    from: &Path,
    to: &DatabaseUrl,
    progress: &mut dyn FnMut(Progress<'_>),
) -> StoreResult<MigrationReport> {
    let started = Instant::now();
    let source = SqliteSource::open(from)?;
    check_source_tables(&source)?;
    let target = PostgresStore::connect(to)?;
    let tables = target.receive(&source, progress)?;
    Ok(MigrationReport {
        from: source.name(),
        to: to.to_string(),
        tables,
        elapsed: started.elapsed(),
    })
}

/// The source holds exactly the tables of [`TABLES`]: one more would be lost, one fewer is a
/// store this ferry did not make.
fn check_source_tables(source: &dyn TableSource) -> StoreResult<()> {
    let found = source.tables()?;
    let unknown: Vec<&str> = found
        .iter()
        .map(String::as_str)
        .filter(|name| !TABLES.iter().any(|t| t.name == *name))
        .collect();
    let missing: Vec<&str> =
        TABLES.iter().map(|t| t.name).filter(|name| !found.iter().any(|f| f == name)).collect();
    if unknown.is_empty() && missing.is_empty() {
        return Ok(());
    }
    Err(StoreError::Refused(format!(
        "{} does not hold the tables of a ferry store (unknown: {}; missing: {}): nothing was copied",
        source.name(),
        list_or_none(&unknown),
        list_or_none(&missing)
    )))
}

/// Names as messages show them: a hostile source's table names may hold control characters
/// (a terminal's escape sequences), shown escaped.
fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names.iter().map(|n| n.escape_debug().to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shown_short_and_printable() {
        assert_eq!(Value::Null.to_string(), "NULL");
        assert_eq!(Value::Integer(-3).to_string(), "-3");
        assert_eq!(Value::Text(b"a\0b").to_string(), "'a\\0b'");
        assert_eq!(Value::Blob(&[0xab, 0x01]).to_string(), "x'ab01'");
        assert_eq!(Value::Blob(&[0; 40]).to_string(), "a blob of 40 bytes");
        let long = "x".repeat(100);
        assert_eq!(Value::Text(long.as_bytes()).to_string(), format!("'{}…'", "x".repeat(60)));
    }

    #[test]
    fn each_table_comes_after_those_it_refers_to() {
        let position = |name: &str| TABLES.iter().position(|t| t.name == name).unwrap();
        for (child, parent) in [
            ("revision_documents", "revisions"),
            ("localized_properties", "revisions"),
            ("prerequisites", "revisions"),
            ("bundle_members", "revisions"),
            ("supersedences", "revisions"),
            ("revision_files", "revisions"),
            ("revision_files", "files"),
            ("computer_groups", "computers"),
            ("computer_groups", "target_groups"),
            ("approvals", "target_groups"),
            ("approval_rules", "target_groups"),
        ] {
            assert!(position(parent) < position(child), "{parent} before {child}");
        }
    }
}
