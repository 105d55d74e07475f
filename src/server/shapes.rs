//! Parsed client requests kept by their shape (`wsus/shape.rs`: the request without its cookie's
//! texts). A fleet scanning at once sends the same SyncUpdates and GetExtendedUpdateInfo
//! requests but for each client's cookie: the first is parsed, the others find the parse here
//! and only their cookie is read. With the answer cache (`answers.rs`) that leaves a repeated
//! scan page the cost of reading a cookie and copying bytes.
//!
//! Invariant: an entry is found only by a request whose shape is equal to the entry's byte for
//! byte (the 64-bit hash only chooses where to look).
//! Invariant: the entries never take more than the limit (shape bytes, trees and bookkeeping).
//! Entries live in two generations: when the newer one fills, the older is dropped and the newer
//! takes its place; an entry found in the older one moves to the newer, so the shapes a fleet
//! shares stay while one-off requests pass through.

use crate::wsus::shape::Cut;
use crate::wsus::soap::Request;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use xxhash_rust::xxh3::Xxh3;

/// What the kept parses may take: about 1,000 shapes of a typical scan page request (2 KB of
/// XML, 6 KB of tree).
pub const DEFAULT_SHAPES_BYTES: usize = 8 << 20;

/// Requests with a larger shape are not kept (a client that sends tens of thousands of ids is
/// alone in its state).
pub const LARGEST_SHAPE: usize = 256 << 10;

/// The most one entry may take of a generation: one request cannot push out the others.
const LARGEST_SHARE: usize = 16;

/// Bookkeeping per entry beyond its shape and tree (map slot, `Arc`s, the entry itself).
const ENTRY_OVERHEAD: usize = 128;

/// The operations whose requests a fleet sends alike: the only ones kept.
const SHARED_OPERATIONS: [&str; 2] = ["SyncUpdates", "GetExtendedUpdateInfo"];

pub struct Shapes {
    generations: Mutex<Generations>,
    /// Each generation holds up to half of the limit.
    generation_limit: usize,
    pub hits: AtomicU64,
    /// Shapes parsed and kept: requests of a shared operation whose shape was not kept yet.
    pub misses: AtomicU64,
}

#[derive(Default)]
struct Generations {
    newer: Generation,
    older: Generation,
}

#[derive(Default)]
struct Generation {
    entries: HashMap<u64, Arc<Entry>>,
    bytes: usize,
}

struct Entry {
    /// The shape's three segments, end to end, and where the second and third begin.
    shape: Box<[u8]>,
    splits: [usize; 2],
    request: Arc<Request>,
    bytes: usize,
}

impl Entry {
    fn is(&self, cut: &Cut<'_>) -> bool {
        let [a, b] = self.splits;
        let [s0, s1, s2] = cut.segments;
        (&self.shape[..a], &self.shape[a..b], &self.shape[b..]) == (s0, s1, s2)
    }
}

/// Where a shape is looked for: its segments and their lengths.
fn slot(cut: &Cut<'_>) -> u64 {
    let mut hasher = Xxh3::new();
    for segment in cut.segments {
        hasher.update(&(segment.len() as u64).to_le_bytes());
        hasher.update(segment);
    }
    hasher.digest()
}

impl Shapes {
    pub fn new(limit: usize) -> Shapes {
        Shapes {
            generations: Mutex::default(),
            generation_limit: limit / 2,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The parse of a request of this shape, when one is kept.
    pub fn get(&self, cut: &Cut<'_>) -> Option<Arc<Request>> {
        let slot = slot(cut);
        let mut g = self.generations.lock().expect("shapes lock");
        let found = match g.newer.entries.get(&slot).filter(|e| e.is(cut)) {
            Some(entry) => Some(Arc::clone(&entry.request)),
            None => match g.older.entries.remove(&slot) {
                Some(entry) if entry.is(cut) => {
                    g.older.bytes -= entry.bytes;
                    let request = Arc::clone(&entry.request);
                    self.insert(&mut g, slot, entry);
                    Some(request)
                }
                Some(other) => {
                    g.older.entries.insert(slot, other);
                    None
                }
                None => None,
            },
        };
        drop(g);
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Keeps the parse of a request of this shape, when its operation is one a fleet shares and
    /// it fits. `tree_bytes`: the size of the parsed tree.
    pub fn keep(&self, cut: &Cut<'_>, request: &Arc<Request>, tree_bytes: usize) {
        let shape_len = cut.shape_len();
        let bytes = shape_len + tree_bytes + ENTRY_OVERHEAD;
        if !SHARED_OPERATIONS.contains(&request.name())
            || shape_len > LARGEST_SHAPE
            || bytes > self.generation_limit / LARGEST_SHARE
        {
            return;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let [s0, s1, s2] = cut.segments;
        let entry = Entry {
            shape: [s0, s1, s2].concat().into_boxed_slice(),
            splits: [s0.len(), s0.len() + s1.len()],
            request: Arc::clone(request),
            bytes,
        };
        let mut g = self.generations.lock().expect("shapes lock");
        self.insert(&mut g, slot(cut), Arc::new(entry));
    }

    fn insert(&self, g: &mut Generations, slot: u64, entry: Arc<Entry>) {
        if g.newer.bytes + entry.bytes > self.generation_limit {
            g.older = std::mem::take(&mut g.newer);
        }
        g.newer.bytes += entry.bytes;
        if let Some(replaced) = g.newer.entries.insert(slot, entry) {
            g.newer.bytes -= replaced.bytes;
        }
    }

    /// The bytes the kept parses take.
    pub fn bytes(&self) -> usize {
        let g = self.generations.lock().expect("shapes lock");
        g.newer.bytes + g.older.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wsus::shape::marks_hold;
    use crate::wsus::soap::parse_request;

    fn body(operation: &str, data: &str, ids: &str) -> String {
        format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><{operation} xmlns="http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService"><cookie><Expiration>2026-12-04T21:06:34Z</Expiration><EncryptedData>{data}</EncryptedData></cookie><parameters>{ids}</parameters></{operation}></s:Body></s:Envelope>"#
        )
    }

    fn kept(shapes: &Shapes, body: &str) -> Arc<Request> {
        let cut = Cut::of(body.as_bytes()).expect("cut");
        let request = Arc::new(parse_request(&cut.marked()).expect("parse"));
        assert!(marks_hold(&request));
        shapes.keep(&cut, &request, request.operation.approximate_bytes());
        request
    }

    #[test]
    fn a_request_differing_only_in_its_cookie_finds_the_parse() {
        let shapes = Shapes::new(DEFAULT_SHAPES_BYTES);
        let request = kept(&shapes, &body("SyncUpdates", "AAAA", "<int>1</int>"));
        let other_client = body("SyncUpdates", "BBBBCCCC", "<int>1</int>");
        let found = shapes.get(&Cut::of(other_client.as_bytes()).unwrap()).expect("found");
        assert!(Arc::ptr_eq(&found, &request));
        let other_ids = body("SyncUpdates", "AAAA", "<int>2</int>");
        assert!(shapes.get(&Cut::of(other_ids.as_bytes()).unwrap()).is_none());
        assert_eq!(shapes.hits.load(Ordering::Relaxed), 1);
        assert_eq!(shapes.misses.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn only_the_operations_a_fleet_shares_are_kept() {
        let shapes = Shapes::new(DEFAULT_SHAPES_BYTES);
        kept(&shapes, &body("RegisterComputer", "AAAA", ""));
        assert_eq!(shapes.bytes(), 0);
        kept(&shapes, &body("GetExtendedUpdateInfo", "AAAA", ""));
        assert!(shapes.bytes() > 0);
    }

    /// Many different shapes: the bytes stay within the limit, and a shape found again and again
    /// stays while the others pass through.
    #[test]
    fn the_limit_holds_and_shared_shapes_stay() {
        let limit = 200_000;
        let shapes = Shapes::new(limit);
        let shared = body("SyncUpdates", "AAAA", "<int>0</int>");
        kept(&shapes, &shared);
        for i in 1..2_000 {
            kept(&shapes, &body("SyncUpdates", "AAAA", &format!("<int>{i}</int>")));
            assert!(shapes.bytes() <= limit, "{} bytes after {i} shapes", shapes.bytes());
            assert!(shapes.get(&Cut::of(shared.as_bytes()).unwrap()).is_some(), "after {i}");
        }
        assert!(
            shapes
                .get(&Cut::of(body("SyncUpdates", "A", "<int>1</int>").as_bytes()).unwrap())
                .is_none()
        );
    }
}
