//! A SQLite store read for `ferry store migrate`: its tables, row by row, in one read
//! transaction (one consistent snapshot, even while a server still writes), on a connection
//! that writes nothing (`query_only`) and migrates nothing: a store whose schema is not the one
//! this ferry writes is refused, not upgraded behind its owner's back.

use super::schema;
use crate::store::migrate::{Table, TableSource, Value};
use crate::store::{DATABASE_FILE, StoreError, StoreResult};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(in crate::store) struct SqliteSource {
    path: PathBuf,
    conn: Connection,
}

impl SqliteSource {
    /// Opens the store in `dir` for reading and starts the snapshot every table is read in.
    pub(in crate::store) fn open(dir: &Path) -> StoreResult<SqliteSource> {
        let path = dir.join(DATABASE_FILE);
        if !path.is_file() {
            return Err(StoreError::NoSourceStore(dir.to_path_buf()));
        }
        let conn = Connection::open(&path)
            .map_err(|e| StoreError::sqlite(&path, "opening the database", e))?;
        let source = SqliteSource { path, conn };
        source
            .conn
            .busy_timeout(Duration::from_secs(30))
            .map_err(|e| source.err("setting the busy timeout", e))?;
        source
            .conn
            .execute_batch("PRAGMA query_only = ON; BEGIN")
            .map_err(|e| source.err("starting a read transaction", e))?;
        let found: usize = source
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| source.err("reading the schema version", e))?;
        let known = schema::MIGRATIONS.len();
        let database = source.path.display().to_string();
        if found > known {
            return Err(StoreError::TooNew { database, found, known });
        }
        if found < known {
            return Err(StoreError::Outdated { database, found, known });
        }
        Ok(source)
    }

    fn err(&self, context: impl Into<String>, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, context, e)
    }

    fn columns_of(&self, table: &str) -> StoreResult<Vec<String>> {
        let context = || format!("reading the columns of {table}");
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"))
            .map_err(|e| self.err(context(), e))?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(context(), e))
    }

    /// The `SELECT` that reads `columns` of `table`: each source column must be asked for, and
    /// each column asked for must be the source's (or the rowid, where the target keeps it).
    fn select(&self, table: &Table, columns: &[String]) -> StoreResult<String> {
        let have = self.columns_of(table.name)?;
        let refuse = |problem: String| {
            StoreError::Refused(format!(
                "{}: {}: {problem}; nothing was copied",
                self.name(),
                table.name
            ))
        };
        if let Some(lost) = have.iter().find(|c| !columns.contains(c)) {
            return Err(refuse(format!(
                "column {} has no place in the target",
                lost.escape_debug()
            )));
        }
        let mut selected = Vec::with_capacity(columns.len());
        for column in columns {
            if table.rowid_as == Some(column.as_str()) {
                selected.push("rowid".to_string());
            } else if have.contains(column) {
                selected.push(format!("\"{column}\""));
            } else {
                return Err(refuse(format!("the target's column {column} is not in the source")));
            }
        }
        Ok(format!("SELECT {} FROM \"{}\"", selected.join(", "), table.name))
    }
}

impl TableSource for SqliteSource {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn tables(&self) -> StoreResult<Vec<String>> {
        let context = "listing the tables";
        let mut stmt = self
            .conn
            .prepare(
                r"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name",
            )
            .map_err(|e| self.err(context, e))?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(context, e))
    }

    fn count(&self, table: &Table) -> StoreResult<u64> {
        self.conn
            .query_row(&format!("SELECT count(*) FROM \"{}\"", table.name), [], |r| r.get(0))
            .map_err(|e| self.err(format!("counting the rows of {}", table.name), e))
    }

    fn read(
        &self,
        table: &Table,
        columns: &[String],
        row: &mut dyn FnMut(&[Value<'_>]) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let sql = self.select(table, columns)?;
        let context = || format!("reading {}", table.name);
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(context(), e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(context(), e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(context(), e))? {
            let values = (0..columns.len())
                .map(|i| r.get_ref(i).map(value))
                .collect::<Result<Vec<Value<'_>>, _>>()
                .map_err(|e| self.err(context(), e))?;
            row(&values)?;
        }
        Ok(())
    }

    fn highest_id(&self, table: &Table) -> StoreResult<Option<i64>> {
        // `sqlite_sequence` exists once a table with AUTOINCREMENT was created.
        let context = || format!("reading the highest id of {}", table.name);
        let has_sequences: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(context(), e))?;
        if !has_sequences {
            return Ok(None);
        }
        self.conn
            .query_row("SELECT seq FROM sqlite_sequence WHERE name = ?1", [table.name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(context(), e))
    }
}

fn value(v: ValueRef<'_>) -> Value<'_> {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Integer(n),
        ValueRef::Real(x) => Value::Real(x),
        ValueRef::Text(bytes) => Value::Text(bytes),
        ValueRef::Blob(bytes) => Value::Blob(bytes),
    }
}
