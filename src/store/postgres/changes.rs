//! Changes announced with LISTEN/NOTIFY: every transaction that advances the catalog stamp or
//! the deployment stamp also notifies [`CHANNEL`] (PostgreSQL delivers it when, and only if, the
//! transaction commits), and each front end listens on a connection of its own
//! ([`PgChangeFeed`]), so every front end on the database follows a change within a moment
//! instead of polling for it.
//!
//! Invariant: a transaction that advances a stamp notifies in the same transaction
//! (`deployments.rs`, `ingest.rs`), so no committed change goes unannounced to a listener that
//! was connected; one that was not reads the store again when it connects (`FeedEvent::Listening`).

use super::{DatabaseUrl, error_chain};
use crate::store::engine::{ChangeFeed, FeedEvent};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, GenericClient, NoTls};
use std::time::{Duration, Instant};

/// The notification channel of changes.
pub(super) const CHANNEL: &str = "ferry_changes";

/// What changed: the payload of the notification.
#[derive(Debug, Clone, Copy)]
pub(super) enum Change {
    Catalog,
    Deployments,
}

impl Change {
    fn payload(self) -> &'static str {
        match self {
            Change::Catalog => "catalog",
            Change::Deployments => "deployments",
        }
    }
}

/// Announces `change` to every listener when the transaction `client` is in commits.
pub(super) fn announce(
    client: &mut impl GenericClient,
    change: Change,
) -> Result<(), postgres::Error> {
    client.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &change.payload()]).map(|_| ())
}

/// The wait before the first attempt to reconnect; it doubles after each failure, up to
/// `LAST_RETRY`.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(5);
/// How long the check that a quiet connection is alive may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A front end's listener: a connection of its own (not the pool's: a `LISTEN` belongs to its
/// session) that waits for notifications on [`CHANNEL`].
pub struct PgChangeFeed {
    url: DatabaseUrl,
    client: Option<Client>,
    /// Failed attempts since the connection was last up, and when to try next.
    failures: u32,
    retry_at: Option<Instant>,
}

impl PgChangeFeed {
    /// A feed that connects on its first use.
    pub(super) fn new(url: DatabaseUrl) -> PgChangeFeed {
        PgChangeFeed { url, client: None, failures: 0, retry_at: None }
    }

    fn listen(&self) -> Result<Client, String> {
        let mut client = self.url.config.connect(NoTls).map_err(|e| error_chain(&e))?;
        client.batch_execute(&format!("LISTEN {CHANNEL}")).map_err(|e| error_chain(&e))?;
        Ok(client)
    }

    /// The connection is gone: drop it and say when the next attempt is.
    fn lost(&mut self, error: String) -> FeedEvent {
        self.client = None;
        let retry_in = FIRST_RETRY.saturating_mul(1 << self.failures.min(6)).min(LAST_RETRY);
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(Instant::now() + retry_in);
        FeedEvent::Lost {
            error: format!("listening for changes on {}: {error}", self.url),
            retry_in,
        }
    }

    fn connect(&mut self) -> FeedEvent {
        if let Some(at) = self.retry_at.take() {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
        }
        match self.listen() {
            Ok(client) => {
                self.client = Some(client);
                self.failures = 0;
                FeedEvent::Listening
            }
            Err(e) => self.lost(e),
        }
    }
}

impl ChangeFeed for PgChangeFeed {
    fn next(&mut self, timeout: Duration) -> FeedEvent {
        let Some(client) = self.client.as_mut() else { return self.connect() };
        let waited = {
            let mut notifications = client.notifications();
            let first = notifications.timeout_iter(timeout).next();
            match first {
                Ok(Some(_)) => {
                    // Take every one already here: one change or several, one reading.
                    let mut more = 0;
                    while let Ok(Some(_)) = notifications.iter().next() {
                        more += 1;
                    }
                    Ok(Some(1 + more))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(error_chain(&e)),
            }
        };
        match waited {
            Ok(Some(n)) => FeedEvent::Changed(n),
            // A connection the server closed ends the wait at once, without an error.
            Ok(None) if client.is_closed() => self.lost("the server closed the connection".into()),
            // Quiet: make sure the connection still carries something (a peer gone without a
            // word looks quiet for ever).
            Ok(None) => match client.is_valid(PROBE_TIMEOUT) {
                Ok(()) => FeedEvent::Quiet,
                Err(e) => self.lost(error_chain(&e)),
            },
            Err(e) => self.lost(e),
        }
    }
}
