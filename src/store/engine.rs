//! What an engine says about itself beyond the storage traits, in no engine's words: whether it
//! announces changes (a [`ChangeFeed`]: PostgreSQL's LISTEN/NOTIFY, so that front ends on one
//! database follow each other's changes without polling), and how its connection pool fares
//! ([`PoolFigures`], for `/metrics`).

use crate::ids::ComputerId;
use std::time::Duration;

/// Announcements that the catalog or the deployments changed, from a connection of the feed's
/// own. Blocking: a feed is driven by a thread of its own. It reconnects by itself after losing
/// its connection, waiting longer after each failure.
pub trait ChangeFeed: Send {
    /// Waits at most `timeout` (longer while it waits to reconnect) for what happens next.
    fn next(&mut self, timeout: Duration) -> FeedEvent;
}

/// What a [`ChangeFeed`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// Announcements of a change arrived.
    Changed(Announced),
    /// Nothing happened within the timeout; the connection is alive.
    Quiet,
    /// The feed (re)connected and listens: changes made while it did not were not announced to
    /// it, so whoever follows the store reads it again.
    Listening,
    /// The connection was lost or could not be made; the feed tries again after `retry_in`.
    Lost { error: String, retry_in: Duration },
}

/// What announcements that arrived together said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announced {
    /// How many arrived.
    pub count: u64,
    /// Computers whose group memberships changed (client-side targeting on another front end),
    /// in the order named; a computer may be named more than once. At most
    /// [`Announced::MAX_REGROUPED`]: past that, `every_computer` says so instead.
    pub regrouped: Vec<ComputerId>,
    /// More computers changed than are worth naming: whoever follows reads every computer.
    pub every_computer: bool,
}

impl Announced {
    /// Computers named at most: reading each again costs a query, reading them all one.
    pub const MAX_REGROUPED: usize = 4096;

    /// Adds computers named in one announcement, up to the most named.
    pub fn add_regrouped(&mut self, computers: impl IntoIterator<Item = ComputerId>) {
        for id in computers {
            if self.regrouped.len() >= Announced::MAX_REGROUPED {
                self.every_computer = true;
                self.regrouped.clear();
            }
            if !self.every_computer {
                self.regrouped.push(id);
            }
        }
    }
}

/// A snapshot of a connection pool's figures: connections now, and counters since the process
/// started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolFigures {
    /// The most connections the pool keeps.
    pub max: u64,
    /// Connections open, and of them the idle ones (the rest are in use).
    pub open: u64,
    pub idle: u64,
    /// Times a caller found no idle connection and waited for one.
    pub waits: u64,
    /// Times a caller got no connection at all (the database unreachable, or every connection
    /// busy past the timeout).
    pub timeouts: u64,
    /// Connections that failed: could not be made, or were found broken when taken.
    pub errors: u64,
}

impl PoolFigures {
    /// Connections in use.
    pub fn in_use(&self) -> u64 {
        self.open.saturating_sub(self.idle)
    }
}
