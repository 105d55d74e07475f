//! One budget for the bytes the server holds on behalf of clients: request bodies while they
//! arrive and are handled, and answers until they are sent. Anyone can open connections, send
//! large bodies slowly, or ask for answers and never read them; with the budget spent, the next
//! request waits a moment and then gets `ServerBusy` (clients retry later, as they do with a
//! busy WSUS) instead of the process growing.
//!
//! One address holds at most an eighth of the budget: a client that opens connections and
//! stalls its bodies (or reads nothing) spends its own share, not everyone's.
//!
//! Invariant: a request body or an answer the server builds is in memory only with its bytes
//! counted here, from the first byte received to the last byte sent (or the connection's end).

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes held for clients at once, over all connections.
pub const DEFAULT_BUDGET_BYTES: usize = 256 << 20;
/// How long a request waits for room before it is answered `ServerBusy`.
const WAIT_FOR_ROOM: Duration = Duration::from_secs(2);
const UNIT: usize = 1024;

/// Units each address holds.
type Shares = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Bytes counted against the budget (and the address's share); given back when dropped.
pub struct Held {
    permit: Option<OwnedSemaphorePermit>,
    units: usize,
    peer: Option<(IpAddr, Shares)>,
}

impl Held {
    fn none(peer: Option<(IpAddr, Shares)>) -> Held {
        Held { permit: None, units: 0, peer }
    }

    /// Gives back at once what is held beyond `bytes` (an answer that came out smaller than
    /// the room taken for it, such as a compressed one).
    pub fn shrink_to(&mut self, bytes: usize) {
        let want = bytes.div_ceil(UNIT);
        if want >= self.units {
            return;
        }
        let less = self.units - want;
        if let Some(permit) = &mut self.permit {
            drop(permit.split(less));
        }
        self.units = want;
        if let Some((ip, shares)) = &self.peer {
            let mut shares = shares.lock().expect("budget shares lock");
            if let Some(n) = shares.get_mut(ip) {
                *n = n.saturating_sub(less);
                if *n == 0 {
                    shares.remove(ip);
                }
            }
        }
    }

    fn add(&mut self, more: OwnedSemaphorePermit, units: usize) {
        self.units += units;
        match &mut self.permit {
            Some(p) => p.merge(more),
            None => self.permit = Some(more),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some((ip, shares)) = &self.peer {
            let mut shares = shares.lock().expect("budget shares lock");
            if let Some(n) = shares.get_mut(ip) {
                *n = n.saturating_sub(self.units);
                if *n == 0 {
                    shares.remove(ip);
                }
            }
        }
    }
}

/// Why a request body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRefusal {
    TooLarge,
    TimedOut,
    Busy,
    Broken,
}

pub struct MemoryBudget {
    units: Arc<Semaphore>,
    total_units: usize,
    shares: Shares,
}

/// The most one address may hold: an eighth of the budget.
const SHARE_DIVISOR: usize = 8;

impl MemoryBudget {
    pub fn new(bytes: usize) -> MemoryBudget {
        let total_units = (bytes / UNIT).max(1);
        MemoryBudget {
            units: Arc::new(Semaphore::new(total_units)),
            total_units,
            shares: Shares::default(),
        }
    }

    fn held_for(&self, peer: Option<IpAddr>) -> Held {
        Held::none(peer.map(|ip| (ip, self.shares.clone())))
    }

    /// Bytes held right now (for `/metrics`).
    pub fn held_bytes(&self) -> u64 {
        ((self.total_units - self.units.available_permits()) * UNIT) as u64
    }

    /// Counts `held` up to `bytes`, waiting a little for room; at once `Busy` when the address
    /// would hold more than its share.
    async fn grow(&self, held: &mut Held, bytes: usize) -> Result<(), BodyRefusal> {
        let want = bytes.div_ceil(UNIT);
        if want <= held.units {
            return Ok(());
        }
        let more = want - held.units;
        if more > self.total_units {
            return Err(BodyRefusal::Busy);
        }
        if let Some((ip, shares)) = &held.peer {
            let mut shares = shares.lock().expect("budget shares lock");
            let share = shares.entry(*ip).or_default();
            if *share + more > self.total_units / SHARE_DIVISOR {
                return Err(BodyRefusal::Busy);
            }
            // Counted before the wait, so parallel requests of one address cannot all pass.
            *share += more;
        }
        // Room now (the common case) costs no timer.
        let acquired = match self.units.clone().try_acquire_many_owned(more as u32) {
            Ok(permit) => Ok(Ok(permit)),
            Err(_) => {
                tokio::time::timeout(
                    WAIT_FOR_ROOM,
                    self.units.clone().acquire_many_owned(more as u32),
                )
                .await
            }
        };
        let permit = match acquired {
            Ok(Ok(permit)) => permit,
            _ => {
                if let Some((ip, shares)) = &held.peer
                    && let Some(n) = shares.lock().expect("budget shares lock").get_mut(ip)
                {
                    *n = n.saturating_sub(more);
                }
                return Err(BodyRefusal::Busy);
            }
        };
        held.add(permit, more);
        Ok(())
    }

    /// Reads a request body of at most `limit` bytes within `timeout`, every byte counted before
    /// it is kept (against `peer`'s share too).
    pub async fn read_body(
        &self,
        body: axum::body::Body,
        limit: usize,
        timeout: Duration,
        peer: Option<IpAddr>,
    ) -> Result<(Bytes, Held), BodyRefusal> {
        let mut held = self.held_for(peer);
        let mut body = body;
        let mut out = BytesMut::new();
        let read = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|_| BodyRefusal::Broken)?;
                let Ok(data) = frame.into_data() else { continue };
                if out.len() + data.len() > limit {
                    return Err(BodyRefusal::TooLarge);
                }
                self.grow(&mut held, out.len() + data.len()).await?;
                out.extend_from_slice(&data);
            }
            Ok(())
        };
        tokio::time::timeout(timeout, read).await.map_err(|_| BodyRefusal::TimedOut)??;
        Ok((out.freeze(), held))
    }

    /// Counts `bytes` of an answer (or of the work that builds one) until it is sent; `Err` when
    /// there is no room. An answer larger than half the budget counts as half of it: two such at
    /// most are in memory at once, and a downstream whose batch holds several of the largest
    /// documents (46 MB) still gets its answer rather than `ServerBusy` for ever.
    pub async fn hold(&self, bytes: usize, peer: Option<IpAddr>) -> Result<Held, BodyRefusal> {
        let mut held = self.held_for(peer);
        self.grow(&mut held, bytes.min(self.total_units / 2 * UNIT)).await?;
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> axum::body::Body {
        axum::body::Body::from(vec![7u8; n])
    }

    #[tokio::test]
    async fn bodies_are_counted_while_held_and_refused_when_there_is_no_room() {
        let budget = MemoryBudget::new(64 * 1024);
        let wait = Duration::from_secs(5);
        let (bytes, held) = budget.read_body(body(40 * 1024), 1 << 20, wait, None).await.unwrap();
        assert_eq!(bytes.len(), 40 * 1024);
        assert_eq!(budget.held_bytes(), 40 * 1024);
        // 40 KiB held: another 40 KiB does not fit, and waits, then is refused.
        assert_eq!(
            budget.read_body(body(40 * 1024), 1 << 20, wait, None).await.err(),
            Some(BodyRefusal::Busy)
        );
        drop(held);
        assert_eq!(budget.held_bytes(), 0);
        assert_eq!(
            budget.read_body(body(10), 5, wait, None).await.err(),
            Some(BodyRefusal::TooLarge)
        );
        let answer = budget.hold(10_000, None).await.unwrap();
        assert_eq!(budget.held_bytes(), 10 * 1024);
        drop(answer);
        let mut shrunk = budget.hold(40_000, None).await.unwrap();
        shrunk.shrink_to(5000);
        assert_eq!(budget.held_bytes(), 5 * 1024);
        shrunk.shrink_to(50_000);
        assert_eq!(budget.held_bytes(), 5 * 1024, "shrinking never grows");
        drop(shrunk);
        assert_eq!(budget.held_bytes(), 0);
        let huge = budget
            .hold(1 << 30, None)
            .await
            .expect("an answer larger than the budget counts as half of it");
        assert_eq!(budget.held_bytes(), 32 * 1024);
        let second = budget.hold(1 << 30, None).await.unwrap();
        assert!(budget.hold(1 << 30, None).await.is_err(), "two such at most");
        drop((huge, second));
    }

    /// Found by attack: 34 connections that each sent 8 MiB less a byte and stopped spent the
    /// whole budget, and every other client got ServerBusy until their bodies timed out.
    #[tokio::test]
    async fn one_address_holds_at_most_its_share() {
        let budget = MemoryBudget::new(800 * 1024);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let wait = Duration::from_secs(5);
        let first = budget.read_body(body(60 * 1024), 1 << 20, wait, Some(a)).await.unwrap();
        assert_eq!(
            budget.read_body(body(60 * 1024), 1 << 20, wait, Some(a)).await.err(),
            Some(BodyRefusal::Busy)
        );
        let other = budget
            .read_body(body(60 * 1024), 1 << 20, wait, Some(b))
            .await
            .expect("another address has its own share");
        drop(first);
        let mut again = budget
            .read_body(body(60 * 1024), 1 << 20, wait, Some(a))
            .await
            .expect("the share comes back");
        again.1.shrink_to(10 * 1024);
        let more = budget
            .hold(40 * 1024, Some(a))
            .await
            .expect("what shrinking gave back counts for the address too");
        drop((other, again, more));
        assert_eq!(budget.held_bytes(), 0);
        assert!(budget.shares.lock().unwrap().is_empty());
    }
}
