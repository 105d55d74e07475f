//! The PostgreSQL backend, for several front ends on one database: connecting, the URL that
//! names the database, the schema's migrations and version check, and every storage trait, one
//! file per topic. Every command that opens a store takes `--database URL`
//! (`FERRY_DATABASE_URL`); with it, `--data DIR` holds only the content tree
//! ([`PostgresStore::with_content_in`]). Stores opened in one process on one database share one
//! connection pool ([`PostgresStore::shared`]).
//!
//! Calls block: the `postgres` client runs each call on a runtime of its own, so it is used, and
//! dropped, on blocking threads only (as every store call is), never on an async worker.

mod bundles;
mod changes;
mod cleanup;
mod clients;
mod columns;
mod compliance_report;
mod consistency;
mod deployments;
mod ingest;
mod migrate;
mod published;
mod query;
mod rules;
mod schema;
mod server_sync;
mod settings;

use super::engine::PoolFigures;
use super::error::DatabaseError;
use super::{ContentStore, StoreError, StoreResult};
use postgres::NoTls;
use postgres::config::Host;
use r2d2_postgres::PostgresConnectionManager;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use changes::PgChangeFeed;

/// How long connecting may take when the URL does not say (`connect_timeout=`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long what was sent to the database may stay unacknowledged before the connection is
/// given up (`tcp_user_timeout=` in the URL says otherwise).
const UNACKNOWLEDGED_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections one front end keeps at most.
const POOL_SIZE: u32 = 16;
/// How long a caller waits for a connection while the database is known to be unreachable
/// (the last attempt failed): answers fail fast instead of each waiting out the connect timeout.
const WHILE_DOWN_TIMEOUT: Duration = Duration::from_millis(500);
/// Held while migrating, so that front ends started together migrate one after the other.
const MIGRATION_LOCK: i64 = 0x6665_7272_7953_6368; // "ferrySch"

/// A PostgreSQL connection URL (`postgres://user:password@host:port/database`), checked: it
/// names a database and a host. Shown (in messages, logs, `Debug`) without its password.
#[derive(Clone)]
pub struct DatabaseUrl {
    config: postgres::Config,
    shown: String,
    /// The URL as given, password included: only the key of the process's shared pools.
    text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error(
        "the database URL is not a PostgreSQL URL (its scheme is {0}): write postgres://user@host/database"
    )]
    NotPostgres(String),
    #[error("the database URL {shown} is not valid: {message}")]
    Invalid { shown: String, message: String },
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(text: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
        let scheme_ends = ["postgres://", "postgresql://"].iter().find(|s| text.starts_with(**s));
        if scheme_ends.is_none() {
            return Err(DatabaseUrlError::NotPostgres(scheme_of(text)));
        }
        let invalid =
            |message: String| DatabaseUrlError::Invalid { shown: "postgres://…".into(), message };
        // A second '@' before the host: a password with a literal '@', which would otherwise
        // be read as part of the host and shown.
        let authority = text.split_once("://").map_or("", |(_, rest)| rest);
        let authority = authority.split(['/', '?']).next().unwrap_or_default();
        if authority.matches('@').count() > 1 {
            return Err(invalid("write an '@' in the user name or password as %40".into()));
        }
        let mut config = postgres::Config::from_str(text).map_err(|e| invalid(error_chain(&e)))?;
        if config.get_hosts().is_empty() {
            return Err(invalid("it names no host".into()));
        }
        if config.get_dbname().is_none_or(str::is_empty) {
            return Err(invalid("it names no database (…/database at its end)".into()));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // A database gone without a word (a host down, a network cut) would keep a statement
        // (or a pool's check of a connection) waiting for as long as the kernel retransmits:
        // a quarter of an hour.
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(UNACKNOWLEDGED_TIMEOUT);
        }
        let shown = shown(&config);
        Ok(DatabaseUrl { config, shown, text: text.to_string() })
    }
}

/// A URL's scheme for a message (`mysql:`), or "missing": only what a scheme may hold, never
/// the rest, which may be a password or a key=value connection string.
fn scheme_of(text: &str) -> String {
    match text.split_once("://") {
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme.len() <= 32
                && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            format!("{scheme}:")
        }
        Some(_) => "not a URL scheme".into(),
        None => "missing".into(),
    }
}

/// `postgres://user@host:port,host2/database`: what identifies the database, no secret.
fn shown(config: &postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    format!("postgres://{user}{}/{}", hosts.join(","), config.get_dbname().unwrap_or_default())
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.shown)
    }
}

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
type Connection = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// What a pool went through, shared by every store on it (for `/metrics`), and whether the
/// database was unreachable at the last attempt.
#[derive(Debug, Default)]
struct PoolCounters {
    waits: AtomicU64,
    timeouts: AtomicU64,
    errors: AtomicU64,
    down: AtomicBool,
    /// The last failure, with its causes (r2d2 keeps only the outermost words).
    last_error: Mutex<Option<String>>,
}

/// r2d2 hands it every failure to connect or to find a pooled connection alive: counted (r2d2
/// would log each one, many times a second while the database is down), and the database marked
/// unreachable until a connection is handed out again.
#[derive(Debug)]
struct CountErrors(Arc<PoolCounters>);

impl r2d2::HandleError<postgres::Error> for CountErrors {
    fn handle_error(&self, error: postgres::Error) {
        self.0.errors.fetch_add(1, Ordering::Relaxed);
        self.0.down.store(true, Ordering::Relaxed);
        let error = error_chain(&error);
        tracing::debug!("database connection failed: {error}");
        *self.0.last_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error);
    }
}

/// A store's database on PostgreSQL: a pool of connections to a database whose schema is
/// current.
pub struct PostgresStore {
    url: DatabaseUrl,
    pool: Pool,
    counters: Arc<PoolCounters>,
    schema_version: usize,
    /// The content tree (`--data DIR` holds only it on PostgreSQL); none until given.
    content: Option<ContentStore>,
}

impl PostgresStore {
    /// Connects, then brings the schema up to date (one migrating front end at a time); a
    /// database whose schema is newer than this ferry knows is refused.
    pub fn connect(url: &DatabaseUrl) -> StoreResult<PostgresStore> {
        // One direct connection first: r2d2 would say only that it timed out, this says why.
        let mut client = url.config.connect(NoTls).map_err(|e| StoreError::Unreachable {
            database: url.to_string(),
            message: error_chain(&e),
        })?;
        let schema_version = migrate(&mut client, url)?;
        drop(client);
        let manager = PostgresConnectionManager::new(url.config.clone(), NoTls);
        let counters = Arc::new(PoolCounters::default());
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(
                url.config.get_connect_timeout().copied().unwrap_or(CONNECT_TIMEOUT),
            )
            .error_handler(Box::new(CountErrors(counters.clone())))
            .build_unchecked(manager);
        Ok(PostgresStore { url: url.clone(), pool, counters, schema_version, content: None })
    }

    /// A store on the pool this process keeps for `url`, connecting (and migrating) the first
    /// time only: the server opens a store per thread, and each must not cost a pool.
    pub fn shared(url: &DatabaseUrl) -> StoreResult<PostgresStore> {
        static SHARED: std::sync::LazyLock<Mutex<HashMap<String, PostgresStore>>> =
            std::sync::LazyLock::new(Mutex::default);
        let mut shared = SHARED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(store) = shared.get(&url.text) {
            return Ok(store.clone_without_content());
        }
        let store = PostgresStore::connect(url)?;
        shared.insert(url.text.clone(), store.clone_without_content());
        Ok(store)
    }

    fn clone_without_content(&self) -> PostgresStore {
        PostgresStore {
            url: self.url.clone(),
            pool: self.pool.clone(),
            counters: self.counters.clone(),
            schema_version: self.schema_version,
            content: None,
        }
    }

    /// The same store with its content tree in `data` (`DIR/content/...`, as beside a SQLite
    /// database).
    pub fn with_content_in(mut self, data: &std::path::Path) -> PostgresStore {
        self.content = Some(ContentStore::in_data_dir(data));
        self
    }

    /// The content tree, if one was given.
    pub fn content(&self) -> Option<&ContentStore> {
        self.content.as_ref()
    }

    /// The schema version the database has (the number of migrations applied).
    pub fn schema_version(&self) -> usize {
        self.schema_version
    }

    /// The schema version this ferry writes.
    pub fn known_schema_version() -> usize {
        schema::MIGRATIONS.len()
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A connection from the pool; waits up to the connect timeout for one, or only
    /// `WHILE_DOWN_TIMEOUT` while the database is unreachable (r2d2 keeps trying to connect
    /// behind the scenes, so the first call after it came back gets a connection).
    fn connection(&self) -> StoreResult<Connection> {
        let counters = &self.counters;
        let taken = match self.pool.try_get() {
            Some(c) => Ok(c),
            None => {
                counters.waits.fetch_add(1, Ordering::Relaxed);
                match counters.down.load(Ordering::Relaxed) {
                    true => self.pool.get_timeout(WHILE_DOWN_TIMEOUT),
                    false => self.pool.get(),
                }
            }
        };
        match taken {
            Ok(c) => {
                counters.down.store(false, Ordering::Relaxed);
                Ok(c)
            }
            Err(e) => {
                counters.timeouts.fetch_add(1, Ordering::Relaxed);
                let last = counters.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let message = match last {
                    Some(cause) => format!("no connection became free or could be made: {cause}"),
                    None => e.to_string(),
                };
                Err(StoreError::Unreachable { database: self.url.to_string(), message })
            }
        }
    }

    /// The pool's connections and what it went through.
    pub fn pool_figures(&self) -> PoolFigures {
        let state = self.pool.state();
        let c = &self.counters;
        PoolFigures {
            max: u64::from(self.pool.max_size()),
            open: u64::from(state.connections),
            idle: u64::from(state.idle_connections),
            waits: c.waits.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    /// A listener for the changes front ends announce (`changes.rs`), on a connection of its
    /// own.
    pub fn change_feed(&self) -> PgChangeFeed {
        PgChangeFeed::new(self.url.clone())
    }

    /// Turns a `postgres` error into the store's, saying what was being done.
    fn fail(&self, context: impl Into<String>) -> impl FnOnce(postgres::Error) -> StoreError {
        let context = context.into();
        move |e| database_error(&self.url.to_string(), &context, &e)
    }
}

/// Applies the migrations the database lacks, in one transaction under `MIGRATION_LOCK`;
/// returns the version the schema has afterwards.
fn migrate(client: &mut postgres::Client, url: &DatabaseUrl) -> StoreResult<usize> {
    let fail = |context: &str| {
        let database = url.to_string();
        let context = context.to_string();
        move |e: postgres::Error| database_error(&database, &context, &e)
    };
    let known = schema::MIGRATIONS.len();
    let mut tx = client.transaction().map_err(fail("starting the migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(fail("waiting for another front end's migration"))?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        .map_err(fail("reading the schema version"))?;
    let found: Option<i32> = tx
        .query_opt("SELECT max(version) FROM schema_version", &[])
        .map_err(fail("reading the schema version"))?
        .and_then(|row| row.get(0));
    let found = usize::try_from(found.unwrap_or(0)).unwrap_or(0);
    if found > known {
        return Err(StoreError::TooNew { database: url.to_string(), found, known });
    }
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(found) {
        tx.batch_execute(sql).map_err(fail(&format!("applying schema migration {}", i + 1)))?;
    }
    if found < known {
        let version = i32::try_from(known).expect("a few migrations");
        tx.execute("DELETE FROM schema_version", &[]).map_err(fail("recording the version"))?;
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&version])
            .map_err(fail("recording the schema version"))?;
    }
    tx.commit().map_err(fail("committing the migration"))?;
    Ok(known)
}

/// The error and its causes in one line: the `postgres` error alone says only "db error" or
/// "error connecting to server".
fn error_chain(e: &postgres::Error) -> String {
    let mut message = e.to_string();
    if let Some(db) = e.as_db_error() {
        message = format!("{} ({})", db.message(), db.code().code());
    } else {
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
    }
    message
}

/// Whether `e` says the connection is gone (closed, broken, the server shutting down) rather
/// than that the statement failed: the same work succeeds once the database is back.
fn connection_lost(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    let shutting_down =
        [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW];
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    e.is_closed()
        || io
        || e.code().is_some_and(|c| c.code().starts_with("08") || shutting_down.contains(c))
}

/// The store's error for a failed statement: `Unreachable` when the connection was lost (so the
/// caller may try again later), else the engine's words with the context.
fn database_error(database: &str, context: &str, e: &postgres::Error) -> StoreError {
    if connection_lost(e) {
        return StoreError::Unreachable {
            database: database.to_string(),
            message: format!("{context}: {}", error_chain(e)),
        };
    }
    StoreError::Database {
        database: database.to_string(),
        context: context.to_string(),
        source: DatabaseError { message: error_chain(e), busy: false },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_shown_without_their_password() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("postgres://ferry:pw@db1:5433/wsus", Ok("postgres://ferry@db1:5433/wsus")),
            ("postgresql://db1/wsus", Ok("postgres://db1:5432/wsus")),
            (
                "postgres://ferry:pw@db1:5433,db2:5434/wsus",
                Ok("postgres://ferry@db1:5433,db2:5434/wsus"),
            ),
            ("mysql://ferry:pw@db1/wsus", Err("not a PostgreSQL URL (its scheme is mysql:)")),
            ("db1/wsus", Err("not a PostgreSQL URL (its scheme is missing)")),
            ("postgres://ferry:pw@db1:5433", Err("names no database")),
            ("postgres://ferry:pw@db1/wsus?sslmode=sometimes", Err("option `sslmode`")),
            ("postgres://ferry:p@w@db1/wsus", Err("as %40")),
            ("postgres://ferry:p%40w@db1/wsus", Ok("postgres://ferry@db1:5432/wsus")),
            ("host=db1 password=pw@x dbname=a://b", Err("its scheme is not a URL scheme")),
        ];
        for (text, expected) in cases {
            let parsed = text.parse::<DatabaseUrl>();
            match (parsed, expected) {
                (Ok(url), Ok(shown)) => {
                    assert_eq!(url.to_string(), *shown, "{text}");
                    assert!(!format!("{url:?}").contains("pw"), "{text}");
                }
                (Err(e), Err(words)) => {
                    let message = e.to_string();
                    assert!(message.contains(words), "{text}: {message}");
                    assert!(!message.contains("pw"), "{text}: {message}");
                }
                (got, _) => panic!("{text}: got {got:?}, expected {expected:?}"),
            }
        }
    }
}
