//! Changes announced with LISTEN/NOTIFY: every transaction that advances the catalog stamp or
//! the deployment stamp also notifies [`CHANNEL`] (PostgreSQL delivers it when, and only if, the
//! transaction commits), and each front end listens on a connection of its own
//! ([`PgChangeFeed`]), so every front end on the database follows a change within a moment
//! instead of polling for it.
//!
//! Invariant: a transaction that advances a stamp notifies in the same transaction
//! (`deployments.rs`, `ingest.rs`), so no committed change goes unannounced to a listener that
//! was connected; one that was not reads the store again when it connects (`FeedEvent::Listening`).
//! So does a batch of client writes that changes computers' group memberships (client-side
//! targeting, `clients.rs`): it names the computers, which every front end reads again.

use super::{DatabaseUrl, error_chain};
use crate::ids::ComputerId;
use crate::store::engine::{Announced, ChangeFeed, FeedEvent};
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

/// What starts the payload that names computers whose memberships changed, one per line.
const REGROUPED: &str = "computers";

/// Notifications read into one [`FeedEvent::Changed`] at most.
const MAX_AT_ONCE: u64 = 10_000;

/// PostgreSQL refuses a payload of 8000 bytes or more.
const PAYLOAD_BYTES: usize = 7999;

/// Announces, when the transaction `client` is in commits, that these computers' group
/// memberships changed: as few notifications as their names fit in.
pub(super) fn announce_regrouped(
    client: &mut impl GenericClient,
    computers: &[ComputerId],
) -> Result<(), postgres::Error> {
    for payload in regrouped_payloads(computers) {
        client.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])?;
    }
    Ok(())
}

fn regrouped_payloads(computers: &[ComputerId]) -> Vec<String> {
    let mut payloads: Vec<String> = Vec::new();
    for id in computers {
        match payloads.last_mut() {
            Some(p) if p.len() + 1 + id.as_str().len() <= PAYLOAD_BYTES => {}
            _ => payloads.push(REGROUPED.to_owned()),
        }
        let payload = payloads.last_mut().expect("one was pushed");
        payload.push('\n');
        payload.push_str(id.as_str());
    }
    payloads
}

/// Adds what one notification's payload says to `announced`. Anyone who can connect can
/// notify: a name that is not a computer id is passed over.
fn read_payload(payload: &str, announced: &mut Announced) {
    announced.count += 1;
    let mut lines = payload.split('\n');
    if lines.next() == Some(REGROUPED) {
        announced.add_regrouped(lines.filter_map(|l| ComputerId::parse(l).ok()));
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
                Ok(Some(n)) => {
                    // Take every one already here: one change or several, one reading.
                    let mut announced = Announced::default();
                    read_payload(n.payload(), &mut announced);
                    // A flood of them is read in turns, not in one unending drain.
                    while announced.count < MAX_AT_ONCE {
                        let Ok(Some(n)) = notifications.iter().next() else { break };
                        read_payload(n.payload(), &mut announced);
                    }
                    Ok(Some(announced))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(error_chain(&e)),
            }
        };
        match waited {
            Ok(Some(announced)) => FeedEvent::Changed(announced),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<ComputerId> {
        (0..n).map(|i| ComputerId::parse(&format!("{i:0>200}")).unwrap()).collect()
    }

    #[test]
    fn regrouped_computers_travel_in_payloads_postgresql_takes_and_come_back_whole() {
        let computers = ids(100);
        let payloads = regrouped_payloads(&computers);
        assert!(payloads.len() > 1 && payloads.iter().all(|p| p.len() <= PAYLOAD_BYTES));
        let mut announced = Announced::default();
        for p in &payloads {
            read_payload(p, &mut announced);
        }
        assert_eq!(announced.count, payloads.len() as u64);
        assert_eq!(announced.regrouped, computers);
        assert!(regrouped_payloads(&[]).is_empty(), "nothing changed, nothing announced");
    }

    #[test]
    fn a_payload_from_anyone_names_only_valid_computers() {
        let mut announced = Announced::default();
        for payload in ["deployments", "catalog", "computers\n\u{7}\n\nok-pc", "computersx\npc"] {
            read_payload(payload, &mut announced);
        }
        assert_eq!(announced.count, 4);
        assert_eq!(announced.regrouped, [ComputerId::parse("ok-pc").unwrap()]);
    }

    #[test]
    fn too_many_computers_named_read_as_every_computer() {
        let mut announced = Announced::default();
        for p in regrouped_payloads(&ids(Announced::MAX_REGROUPED + 1)) {
            read_payload(&p, &mut announced);
        }
        assert!(announced.every_computer && announced.regrouped.is_empty());
        read_payload("computers\npc", &mut announced);
        assert!(announced.regrouped.is_empty(), "still every computer");
    }
}
