//! A store moved into PostgreSQL (`ferry store migrate`): every table of a [`TableSource`]
//! copied into an empty database in one transaction, with `COPY ... (FORMAT binary)`. Each
//! value is converted into the type the column has in PostgreSQL's catalog, or refused naming
//! the table, row and column; identity columns get the source's ids (COPY writes what it is
//! given) and their sequences move past the highest id the source ever handed out.

use super::{PostgresStore, error_chain};
use crate::store::migrate::{CopiedTable, Progress, TABLES, Table, TableSource, Value};
use crate::store::{StoreError, StoreResult};
use bytes::BytesMut;
use postgres::Transaction;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::error::SqlState;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// How long the migration waits for a table another session holds (a ferry still running on
/// the database) before it gives up.
const LOCK_TIMEOUT: &str = "10s";
/// Rows between two progress reports.
const PROGRESS_EVERY: u64 = 500;

/// A column of a target table, as PostgreSQL's catalog describes it.
struct Column {
    name: String,
    ty: Type,
    kind: Kind,
    not_null: bool,
    identity: bool,
    /// Part of the primary key: what names a row in messages.
    key: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float8,
    Text,
    Bytea,
}

impl Kind {
    fn of(ty: &Type) -> Option<Kind> {
        Some(match *ty {
            Type::BOOL => Kind::Bool,
            Type::INT2 => Kind::Int2,
            Type::INT4 => Kind::Int4,
            Type::INT8 => Kind::Int8,
            Type::FLOAT8 => Kind::Float8,
            Type::TEXT | Type::VARCHAR => Kind::Text,
            Type::BYTEA => Kind::Bytea,
            _ => return None,
        })
    }

    fn described(self) -> &'static str {
        match self {
            Kind::Bool => "a boolean (0 or 1)",
            Kind::Int2 => "a 16-bit integer",
            Kind::Int4 => "a 32-bit integer",
            Kind::Int8 => "a 64-bit integer",
            Kind::Float8 => "a number",
            Kind::Text => "text",
            Kind::Bytea => "a blob",
        }
    }
}

/// One value in the type of its column, for the binary COPY.
#[derive(Debug)]
enum Cell<'a> {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F64(f64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

impl ToSql for Cell<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Bool(v) => v.to_sql(ty, out),
            Cell::I16(v) => v.to_sql(ty, out),
            Cell::I32(v) => v.to_sql(ty, out),
            Cell::I64(v) => v.to_sql(ty, out),
            Cell::F64(v) => v.to_sql(ty, out),
            Cell::Text(v) => v.to_sql(ty, out),
            Cell::Bytes(v) => v.to_sql(ty, out),
        }
    }

    /// Every cell was made for its column's type (`cell`).
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// `value` in the type of `column`, or why it does not fit.
fn cell<'a>(column: &Column, value: Value<'a>) -> Result<Cell<'a>, String> {
    let doesnt_fit = |what: &str| format!("{value} does not fit in {what}");
    Ok(match (column.kind, value) {
        (_, Value::Null) if column.not_null => return Err("NULL, but a value is required".into()),
        (_, Value::Null) => Cell::Null,
        (Kind::Bool, Value::Integer(0)) => Cell::Bool(false),
        (Kind::Bool, Value::Integer(1)) => Cell::Bool(true),
        (Kind::Int2, Value::Integer(n)) => {
            Cell::I16(i16::try_from(n).map_err(|_| doesnt_fit("a 16-bit integer"))?)
        }
        (Kind::Int4, Value::Integer(n)) => {
            Cell::I32(i32::try_from(n).map_err(|_| doesnt_fit("a 32-bit integer"))?)
        }
        (Kind::Int8, Value::Integer(n)) => Cell::I64(n),
        (Kind::Float8, Value::Real(x)) => Cell::F64(x),
        (Kind::Float8, Value::Integer(n)) => Cell::F64(n as f64),
        (Kind::Text, Value::Text(bytes)) => {
            let text = std::str::from_utf8(bytes).map_err(|_| format!("{value} is not UTF-8"))?;
            if text.contains('\0') {
                return Err(format!(
                    "{value} holds a NUL character, which PostgreSQL's text cannot"
                ));
            }
            Cell::Text(text)
        }
        (Kind::Bytea, Value::Blob(bytes)) => Cell::Bytes(bytes),
        (kind, _) => return Err(format!("{value} is not {}", kind.described())),
    })
}

impl PostgresStore {
    /// Copies every table of `source` into this database, which must hold no rows, in one
    /// transaction; returns the rows copied per table.
    pub(in crate::store) fn receive(
        &self,
        source: &dyn TableSource,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> StoreResult<Vec<CopiedTable>> {
        let mut conn = self.connection()?;
        let mut tx = conn.transaction().map_err(self.fail("starting the migration"))?;
        self.lock_empty_target(&mut tx)?;
        let mut copied = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            let rows = self.copy_table(&mut tx, table, source, progress)?;
            copied.push(CopiedTable { table: table.name.to_string(), rows });
        }
        progress(Progress::Committing);
        tx.commit().map_err(self.fail("committing the migration"))?;
        Ok(copied)
    }

    /// Locks every table (a front end still running on the database waits, or the migration
    /// gives up), checks that the schema has the tables of [`TABLES`] and that none holds a
    /// row, then removes the built-in groups the schema made: the source brings its own.
    fn lock_empty_target(&self, tx: &mut Transaction<'_>) -> StoreResult<()> {
        let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        let present: Vec<String> = tx
            .query(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'schema_version'",
                &[],
            )
            .and_then(|rows| rows.iter().map(|r| r.try_get(0)).collect())
            .map_err(self.fail("listing the tables"))?;
        if present.len() != names.len() || !present.iter().all(|p| names.contains(&p.as_str())) {
            return Err(StoreError::Refused(format!(
                "database {}: its tables ({}) are not those of this ferry's schema; nothing was changed",
                self.url,
                present.join(", ")
            )));
        }
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            names.join(", ")
        ))
        .map_err(|e| match e.code() {
            Some(code) if *code == SqlState::LOCK_NOT_AVAILABLE => StoreError::Refused(format!(
                "database {}: another session holds its tables (a ferry still running on it?): stop every \
                 ferry on the database, then migrate; nothing was changed",
                self.url
            )),
            _ => self.fail("locking the tables")(e),
        })?;
        let mut holding = Vec::new();
        for name in &names {
            // The schema makes the two built-in groups: a database holding only them is empty.
            let only_others = if *name == "target_groups" { " WHERE NOT is_builtin" } else { "" };
            let any: bool = tx
                .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {name}{only_others})"), &[])
                .and_then(|r| r.try_get(0))
                .map_err(self.fail(format!("looking for rows in {name}")))?;
            if any {
                holding.push(*name);
            }
        }
        if !holding.is_empty() {
            return Err(StoreError::NotEmpty {
                database: self.url.to_string(),
                tables: holding.join(", "),
            });
        }
        tx.batch_execute("DELETE FROM target_groups").map_err(self.fail("clearing target_groups"))
    }

    /// The columns of `table` in the order of the catalog.
    fn columns(&self, tx: &mut Transaction<'_>, table: &Table) -> StoreResult<Vec<Column>> {
        let rows = tx
            .query(
                "SELECT a.attname::text, a.atttypid, a.attnotnull, a.attidentity <> '',
                        coalesce(a.attnum = ANY (i.indkey), false)
                 FROM pg_attribute a
                 LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
                 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum",
                &[&table.name],
            )
            .map_err(self.fail(format!("reading the columns of {}", table.name)))?;
        let mut columns = Vec::with_capacity(rows.len());
        for row in rows {
            let read = || -> Result<_, postgres::Error> {
                Ok((
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                    row.try_get(4)?,
                ))
            };
            let (name, oid, not_null, identity, key): (String, u32, bool, bool, bool) =
                read().map_err(self.fail(format!("reading the columns of {}", table.name)))?;
            let ty = Type::from_oid(oid).unwrap_or(Type::UNKNOWN);
            let Some(kind) = Kind::of(&ty) else {
                return Err(StoreError::Refused(format!(
                    "{}.{name} has type {ty}, which store migrate does not write",
                    table.name
                )));
            };
            columns.push(Column { name, ty, kind, not_null, identity, key });
        }
        Ok(columns)
    }

    /// Copies one table; returns the rows copied.
    fn copy_table(
        &self,
        tx: &mut Transaction<'_>,
        table: &Table,
        source: &dyn TableSource,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> StoreResult<u64> {
        let columns = self.columns(tx, table)?;
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        progress(Progress::Table { table: table.name, rows: source.count(table)? });
        let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        let copy =
            format!("COPY {} ({}) FROM STDIN (FORMAT binary)", table.name, quoted.join(", "));
        let sink = tx.copy_in(&copy).map_err(|e| self.copy_failed(table, &e))?;
        let types: Vec<Type> = columns.iter().map(|c| c.ty.clone()).collect();
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        let identity = columns.iter().position(|c| c.identity);
        let (mut done, mut highest) = (0u64, None::<i64>);
        source.read(table, &names, &mut |values| {
            done += 1;
            let cells = row_cells(table, &columns, values, done)?;
            if let Some(Cell::I32(id)) = identity.map(|i| &cells[i]) {
                highest = highest.max(Some(i64::from(*id)));
            } else if let Some(Cell::I64(id)) = identity.map(|i| &cells[i]) {
                highest = highest.max(Some(*id));
            }
            let refs: Vec<&(dyn ToSql + Sync)> =
                cells.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
            writer.write(&refs).map_err(|e| self.copy_failed(table, &e))?;
            if done % PROGRESS_EVERY == 0 {
                progress(Progress::Rows { done });
            }
            Ok(())
        })?;
        let written = writer.finish().map_err(|e| self.copy_failed(table, &e))?;
        progress(Progress::Rows { done });
        if let Some(i) = identity {
            let highest = highest.max(source.highest_id(table)?);
            self.continue_identity(tx, table, &columns[i], highest)?;
        }
        Ok(written)
    }

    /// The identity of `table.column` hands out ids after `highest` from now on; refused when
    /// no id is left after it (SQLite picks an unused rowid then, PostgreSQL's identity fails
    /// every insert).
    fn continue_identity(
        &self,
        tx: &mut Transaction<'_>,
        table: &Table,
        column: &Column,
        highest: Option<i64>,
    ) -> StoreResult<()> {
        let Some(highest) = highest.filter(|h| *h >= 1) else { return Ok(()) };
        let top = if column.kind == Kind::Int4 { i64::from(i32::MAX) } else { i64::MAX };
        if highest >= top {
            return Err(StoreError::Refused(format!(
                "{}.{}: the source handed out id {highest}, and the column holds no id above {top}: none is left for new rows; nothing was copied",
                table.name, column.name
            )));
        }
        let column = column.name.as_str();
        tx.query_one(
            "SELECT setval(pg_get_serial_sequence($1, $2), $3)",
            &[&table.name, &column, &highest],
        )
        .map(|_| ())
        .map_err(
            self.fail(format!("moving the identity of {}.{column} past {highest}", table.name)),
        )
    }

    /// A failed COPY, with what PostgreSQL says about the row (the detail names the key).
    fn copy_failed(&self, table: &Table, e: &postgres::Error) -> StoreError {
        let mut message = error_chain(e);
        if let Some(db) = e.as_db_error() {
            for more in [db.detail(), db.where_()].into_iter().flatten() {
                message.push_str(&format!("; {more}"));
            }
        }
        StoreError::Database {
            database: self.url.to_string(),
            context: format!("copying {}; nothing was copied", table.name),
            source: crate::store::DatabaseError { message, busy: false },
        }
    }
}

/// A source row as cells of the target's types, or the error that names its table, row and
/// column.
fn row_cells<'a>(
    table: &Table,
    columns: &[Column],
    values: &[Value<'a>],
    ordinal: u64,
) -> StoreResult<Vec<Cell<'a>>> {
    columns
        .iter()
        .zip(values)
        .map(|(column, value)| {
            cell(column, *value).map_err(|problem| StoreError::DoesNotFit {
                table: table.name.to_string(),
                row: row_name(columns, values, ordinal),
                column: column.name.clone(),
                problem,
            })
        })
        .collect()
}

/// A row as messages name it: its primary key, or its place in the table.
fn row_name(columns: &[Column], values: &[Value<'_>], ordinal: u64) -> String {
    let key: Vec<String> = columns
        .iter()
        .zip(values)
        .filter(|(c, _)| c.key)
        .map(|(c, v)| format!("{}={v}", c.name))
        .collect();
    if key.is_empty() { format!("#{ordinal}") } else { key.join(" ") }
}
