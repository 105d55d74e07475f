//! One budget for the bytes the server holds on behalf of clients: request bodies while they
//! arrive and are handled, and answers until they are sent. Anyone can open connections, send
//! large bodies slowly, or ask for answers and never read them; with the budget spent, the next
//! request waits a moment and then gets `ServerBusy` (clients retry later, as they do with a
//! busy WSUS) instead of the process growing.
//!
//! Invariant: a request body or an answer the server builds is in memory only with its bytes
//! counted here, from the first byte received to the last byte sent (or the connection's end).

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes held for clients at once, over all connections.
pub const DEFAULT_BUDGET_BYTES: usize = 256 << 20;
/// How long a request waits for room before it is answered `ServerBusy`.
const WAIT_FOR_ROOM: Duration = Duration::from_secs(2);
const UNIT: usize = 1024;

/// Bytes counted against the budget; given back when dropped.
pub struct Held {
    permit: Option<OwnedSemaphorePermit>,
    units: usize,
}

impl Held {
    fn none() -> Held {
        Held { permit: None, units: 0 }
    }

    fn add(&mut self, more: OwnedSemaphorePermit, units: usize) {
        self.units += units;
        match &mut self.permit {
            Some(p) => p.merge(more),
            None => self.permit = Some(more),
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
}

impl MemoryBudget {
    pub fn new(bytes: usize) -> MemoryBudget {
        let total_units = (bytes / UNIT).max(1);
        MemoryBudget { units: Arc::new(Semaphore::new(total_units)), total_units }
    }

    /// Bytes held right now (for `/metrics`).
    pub fn held_bytes(&self) -> u64 {
        ((self.total_units - self.units.available_permits()) * UNIT) as u64
    }

    /// Counts `held` up to `bytes`, waiting a little for room.
    async fn grow(&self, held: &mut Held, bytes: usize) -> Result<(), BodyRefusal> {
        let want = bytes.div_ceil(UNIT);
        if want <= held.units {
            return Ok(());
        }
        let more = want - held.units;
        if more > self.total_units {
            return Err(BodyRefusal::Busy);
        }
        let permit = tokio::time::timeout(WAIT_FOR_ROOM, self.units.clone().acquire_many_owned(more as u32))
            .await
            .map_err(|_| BodyRefusal::Busy)?
            .map_err(|_| BodyRefusal::Busy)?;
        held.add(permit, more);
        Ok(())
    }

    /// Reads a request body of at most `limit` bytes within `timeout`, every byte counted before
    /// it is kept.
    pub async fn read_body(&self, body: axum::body::Body, limit: usize, timeout: Duration) -> Result<(Bytes, Held), BodyRefusal> {
        let mut held = Held::none();
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

    /// Counts an answer of `bytes` owned bytes until it is sent; `Err` when there is no room.
    pub async fn hold(&self, bytes: usize) -> Result<Held, BodyRefusal> {
        let mut held = Held::none();
        self.grow(&mut held, bytes).await?;
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_are_counted_while_held_and_refused_when_there_is_no_room() {
        let budget = MemoryBudget::new(64 * 1024);
        let (bytes, held) = budget.read_body(axum::body::Body::from(vec![7u8; 40 * 1024]), 1 << 20, Duration::from_secs(5)).await.unwrap();
        assert_eq!(bytes.len(), 40 * 1024);
        assert_eq!(budget.held_bytes(), 40 * 1024);
        // 40 KiB held: another 40 KiB does not fit, and waits, then is refused.
        let second = budget.read_body(axum::body::Body::from(vec![7u8; 40 * 1024]), 1 << 20, Duration::from_secs(5)).await;
        assert_eq!(second.err(), Some(BodyRefusal::Busy));
        drop(held);
        assert_eq!(budget.held_bytes(), 0);
        let too_large = budget.read_body(axum::body::Body::from(vec![7u8; 10]), 5, Duration::from_secs(5)).await;
        assert_eq!(too_large.err(), Some(BodyRefusal::TooLarge));
        let answer = budget.hold(10_000).await.unwrap();
        assert_eq!(budget.held_bytes(), 10 * 1024);
        drop(answer);
        assert!(budget.hold(1 << 30).await.is_err(), "more than the whole budget never fits");
    }
}
