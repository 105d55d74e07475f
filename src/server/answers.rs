//! Rendered answers that clients in the same state share. On the morning after an import a
//! fleet's machines sit in the same groups with the same installed and cached updates, so they
//! send identical SyncUpdates and GetExtendedUpdateInfo requests; the first renders the answer
//! (and compresses it), the others get the same bytes, as if from a static file.
//!
//! An answer is stored in two parts around the one thing in it that belongs to a single client,
//! its cookie: the client's part is made for every request and never stored.
//!
//! Invariant: a key is the SHA-256 of the exact encoding of everything an answer depends on
//! besides the client's part (the snapshots' stamps, the groups, the SOAP version, the encoding,
//! the whole request): only a SHA-256 collision could hand one client another's answer.
//! Invariant: the cache never holds more than its byte limit (answers, keys, bookkeeping and the
//! keys seen once); entries not used for longest go first, entries of older snapshots go as soon
//! as a request sees newer ones, and an answer is kept only when its key comes a second time, so
//! one-off requests cannot push out what a fleet shares.

use super::body::PiecesBody;
use crate::wsus::soap::{self, EnvelopeStyle, Piece, SoapVersion};
use crate::wsus::xpress;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// What the cache may hold: room for the answers of a few dozen scans in flight (a first scan of
/// a 30,000-revision catalog is about 5 MB of answers, a third of that compressed).
pub const DEFAULT_ANSWER_CACHE_BYTES: usize = 64 << 20;

/// Bookkeeping per entry beyond its answer bytes (key, map and age-order slots, the `Arc`s).
const ENTRY_OVERHEAD: usize = 192;

/// What a key seen once costs (digest and set slot), and the share of the limit they may take.
const SEEN_ONCE_BYTES: usize = 64;
const SEEN_ONCE_SHARE: usize = 64;

/// An answer larger than this share of the limit is not stored (a page that carries a
/// multi-megabyte Core fragment, which is shared without copying when rendered fresh).
const LARGEST_SHARE: usize = 8;

/// The snapshots an answer was rendered from: the catalog's and the deployments' stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamps {
    pub catalog: i64,
    pub deployments: i64,
}

/// The digest of what an answer depends on (see the module's invariant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnswerKey([u8; 32]);

impl AnswerKey {
    /// The key of `what`: the SHA-256 of its `Hash` encoding. Derived `Hash` writes every field,
    /// with lengths before sequences and a terminator after strings, so two different values
    /// give two different encodings.
    pub fn of(what: &impl Hash) -> AnswerKey {
        let mut digest = KeyDigest(Sha256::new());
        what.hash(&mut digest);
        AnswerKey(digest.0.finalize().into())
    }
}

struct KeyDigest(Sha256);

impl Hasher for KeyDigest {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        unreachable!("an answer key is a SHA-256, never a 64-bit hash")
    }
}

/// An answer ready to send to any client in the same state, with its SOAP envelope.
#[derive(Debug)]
pub struct Rendered {
    /// The answer up to the client's part; an xpress stream when `xpress`.
    head: Bytes,
    /// The answer after the client's part, not compressed: it is compressed with that part.
    tail: Bytes,
    xpress: bool,
    /// Bytes of `head` and `tail` before compression.
    plain_len: usize,
    /// This SyncUpdates page ends a scan's software pass (for the scans counter).
    pub ends_scan: bool,
}

/// The answer as the operation rendered it, before its envelope: what comes before the
/// client's part and what comes after it.
pub struct Parts {
    pub head: Vec<Piece>,
    pub tail: String,
    /// A SyncUpdates page that ends a scan's software pass (for the scans counter).
    pub ends_scan: bool,
}

/// How a rendered answer is wrapped and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Form {
    pub version: SoapVersion,
    pub style: EnvelopeStyle,
    pub xpress: bool,
}

impl Rendered {
    /// Wraps `parts` in the envelope of `form` and compresses the head when asked (CPU work:
    /// call it on the blocking pool). `TooLarge` when the answer is too large to keep.
    pub fn keep(parts: Parts, form: Form, largest: usize) -> Kept {
        match Rendered::new(&parts, form, largest) {
            Some(r) => Kept::Shared(Arc::new(r)),
            None => Kept::TooLarge(Arc::new(parts)),
        }
    }

    fn new(parts: &Parts, form: Form, largest: usize) -> Option<Rendered> {
        let (before, after) = soap::envelope_parts(form.version, form.style);
        let head_len = before.len() + parts.head.iter().map(Piece::len).sum::<usize>();
        if head_len + parts.tail.len() + after.len() > largest {
            return None;
        }
        let pieces =
            std::iter::once(before.as_bytes()).chain(parts.head.iter().map(Piece::as_bytes));
        let head = if form.xpress {
            xpress::Encoder::new().frame(pieces)
        } else {
            pieces.collect::<Vec<_>>().concat()
        };
        let tail = Bytes::from(format!("{}{after}", parts.tail));
        Some(Rendered {
            head: Bytes::from(head),
            plain_len: head_len + tail.len(),
            tail,
            xpress: form.xpress,
            ends_scan: parts.ends_scan,
        })
    }

    /// Bytes this entry keeps in memory.
    fn bytes(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    pub fn xpress(&self) -> bool {
        self.xpress
    }

    /// The answer for one client: the shared head, then `client_part` and the tail (in stored
    /// xpress blocks when the head is compressed: a cookie does not compress, and the tail is a
    /// few closing tags). Returns the body and the answer's length before compression.
    pub fn body(&self, client_part: &str) -> (PiecesBody, usize) {
        let plain_len = self.plain_len + client_part.len();
        let rest = [client_part.as_bytes(), &self.tail[..]];
        let own: Vec<u8> = match (self.xpress, client_part.is_empty() && self.tail.is_empty()) {
            (_, true) => Vec::new(),
            (true, false) => xpress::frame_stored(rest),
            (false, false) => rest.concat(),
        };
        (PiecesBody::shared_then_owned(self.head.clone(), own), plain_len)
    }
}

/// What a render gives the requests that wait for it.
#[derive(Clone)]
pub enum Kept {
    /// The answer, shared.
    Shared(Arc<Rendered>),
    /// Too large to keep: each waiting request sends these parts with its own cookie, and the
    /// entry goes.
    TooLarge(Arc<Parts>),
}

struct Slot {
    answer: OnceCell<Kept>,
}

struct Entry {
    slot: Arc<Slot>,
    used: u64,
    /// What the entry counts against the limit (key and overhead until rendered).
    bytes: usize,
}

#[derive(Default)]
struct Inner {
    stamps: Option<Stamps>,
    entries: HashMap<AnswerKey, Entry>,
    /// Keys asked for once: the second request for one keeps its answer.
    seen_once: HashSet<AnswerKey>,
    by_age: BTreeMap<u64, AnswerKey>,
    tick: u64,
    bytes: usize,
}

impl Inner {
    fn clear(&mut self) {
        self.entries.clear();
        self.seen_once.clear();
        self.by_age.clear();
        self.bytes = 0;
    }

    fn remove(&mut self, key: &AnswerKey) {
        if let Some(e) = self.entries.remove(key) {
            self.by_age.remove(&e.used);
            self.bytes -= e.bytes;
        }
    }

    fn evict_to(&mut self, limit: usize, evictions: &AtomicU64) {
        while self.bytes > limit {
            let Some((_, key)) = self.by_age.pop_first() else { break };
            if let Some(e) = self.entries.remove(&key) {
                self.bytes -= e.bytes;
                evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The bounded cache of rendered answers, with its figures for `/metrics`.
pub struct AnswerCache {
    limit: usize,
    inner: Mutex<Inner>,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
}

impl AnswerCache {
    pub fn new(limit: usize) -> AnswerCache {
        AnswerCache {
            limit,
            inner: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// Bytes held now (answers, keys and bookkeeping).
    pub fn bytes(&self) -> usize {
        let inner = self.inner.lock().expect("answer cache lock");
        inner.bytes + inner.seen_once.len() * SEEN_ONCE_BYTES
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn entries(&self) -> usize {
        self.inner.lock().expect("answer cache lock").entries.len()
    }

    /// Answers larger than this are not kept.
    pub fn largest(&self) -> usize {
        self.limit / LARGEST_SHARE
    }

    /// The room for entries: the limit less what the keys seen once may take.
    fn entries_limit(&self) -> usize {
        self.limit - self.limit / SEEN_ONCE_SHARE
    }

    /// The answer kept under `key`, or the one `render` makes (once, however many identical
    /// requests arrive while it runs). A key's first request, and requests that read older
    /// snapshots than the cache holds, render without the cache.
    pub async fn get_or_render<E, F, Fut>(
        &self,
        stamps: Stamps,
        key: AnswerKey,
        render: F,
    ) -> Result<Kept, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Kept, E>>,
    {
        let Some(slot) = self.slot(stamps, key) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return render().await;
        };
        let mut rendered_here = false;
        let answer = slot
            .answer
            .get_or_try_init(|| {
                rendered_here = true;
                render()
            })
            .await
            .cloned();
        let counter = if rendered_here { &self.misses } else { &self.hits };
        counter.fetch_add(1, Ordering::Relaxed);
        // A hit changes nothing more: the lock is taken again only after a render.
        match &answer {
            Ok(Kept::Shared(a)) if rendered_here => self.account(key, &slot, a.bytes()),
            Ok(Kept::TooLarge(_)) => self.inner.lock().expect("answer cache lock").remove(&key),
            _ => {}
        }
        answer
    }

    /// The slot of `key`, marked as used now: a new, empty one when the key was seen once
    /// before; `None` the first time, or for older snapshots.
    fn slot(&self, stamps: Stamps, key: AnswerKey) -> Option<Arc<Slot>> {
        let mut inner = self.inner.lock().expect("answer cache lock");
        match inner.stamps {
            Some(held) if held == stamps => {}
            Some(held)
                if held.catalog > stamps.catalog || held.deployments > stamps.deployments =>
            {
                return None;
            }
            _ => {
                inner.clear();
                inner.stamps = Some(stamps);
            }
        }
        inner.tick += 1;
        let tick = inner.tick;
        let inner = &mut *inner;
        let slot = if let Some(e) = inner.entries.get_mut(&key) {
            let old = std::mem::replace(&mut e.used, tick);
            inner.by_age.remove(&old);
            e.slot.clone()
        } else if inner.seen_once.remove(&key) {
            let slot = Arc::new(Slot { answer: OnceCell::new() });
            inner
                .entries
                .insert(key, Entry { slot: slot.clone(), used: tick, bytes: ENTRY_OVERHEAD });
            inner.bytes += ENTRY_OVERHEAD;
            slot
        } else {
            if (inner.seen_once.len() + 1) * SEEN_ONCE_BYTES > self.limit / SEEN_ONCE_SHARE {
                inner.seen_once.clear();
            }
            inner.seen_once.insert(key);
            return None;
        };
        inner.by_age.insert(tick, key);
        inner.evict_to(self.entries_limit(), &self.evictions);
        Some(slot)
    }

    /// Counts a freshly rendered answer against the limit (if its entry is still there).
    fn account(&self, key: AnswerKey, slot: &Arc<Slot>, answer_bytes: usize) {
        let mut inner = self.inner.lock().expect("answer cache lock");
        let Some(e) = inner.entries.get_mut(&key).filter(|e| Arc::ptr_eq(&e.slot, slot)) else {
            return;
        };
        e.bytes += answer_bytes;
        inner.bytes += answer_bytes;
        inner.evict_to(self.entries_limit(), &self.evictions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Form =
        Form { version: SoapVersion::V11, style: EnvelopeStyle::Client, xpress: false };
    const STAMPS: Stamps = Stamps { catalog: 1, deployments: 1 };

    fn parts(text: &str) -> Parts {
        Parts {
            head: vec![Piece::Text(format!("<A>{text}")), Piece::Shared(Arc::from("<core/>"))],
            tail: "</A>".into(),
            ends_scan: false,
        }
    }

    fn shared(kept: Kept) -> Arc<Rendered> {
        match kept {
            Kept::Shared(r) => r,
            Kept::TooLarge(_) => panic!("too large"),
        }
    }

    async fn render(cache: &AnswerCache, stamps: Stamps, key: &str, text: &str) -> Arc<Rendered> {
        let answer = cache
            .get_or_render::<(), _, _>(stamps, AnswerKey::of(&key), || async {
                Ok(Rendered::keep(parts(text), FORM, usize::MAX))
            })
            .await;
        shared(answer.expect("rendered"))
    }

    fn text_of(r: &Rendered, client: &str) -> String {
        let (body, plain_len) = r.body(client);
        let text: Vec<u8> = body.chunks().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(text.len(), plain_len);
        String::from_utf8(text).unwrap()
    }

    fn counts(cache: &AnswerCache) -> (u64, u64) {
        (cache.hits.load(Ordering::Relaxed), cache.misses.load(Ordering::Relaxed))
    }

    #[tokio::test]
    async fn the_second_request_keeps_the_answer_and_the_client_part_is_never_stored() {
        let cache = AnswerCache::new(1 << 20);
        let first = render(&cache, STAMPS, "k", "one").await;
        assert_eq!(cache.entries(), 0, "a key seen once is not kept");
        let second = render(&cache, STAMPS, "k", "two").await;
        let third = render(&cache, STAMPS, "k", "three").await;
        assert!(
            !Arc::ptr_eq(&first, &second) && Arc::ptr_eq(&second, &third),
            "the third request is served what the second kept"
        );
        assert_eq!(counts(&cache), (1, 2));
        let (before, after) = soap::envelope_parts(FORM.version, FORM.style);
        assert_eq!(
            text_of(&third, "<C>mine</C>"),
            format!("{before}<A>two<core/><C>mine</C></A>{after}")
        );
        assert!(
            !String::from_utf8_lossy(&third.head).contains("mine")
                && !String::from_utf8_lossy(&third.tail).contains("mine")
        );
    }

    #[tokio::test]
    async fn an_xpress_answer_decodes_to_the_plain_one() {
        let parts = parts(&"x".repeat(200_000));
        let plain = Rendered::new(&parts, FORM, usize::MAX).unwrap();
        let packed = Rendered::new(&parts, Form { xpress: true, ..FORM }, usize::MAX).unwrap();
        let (body, plain_len) = packed.body("<C>cookie</C>");
        let stream: Vec<u8> = body.chunks().flat_map(|c| c.iter().copied()).collect();
        assert!(stream.len() < plain_len / 10);
        assert_eq!(
            xpress::unframe(&stream, plain_len).unwrap(),
            text_of(&plain, "<C>cookie</C>").into_bytes()
        );
    }

    #[tokio::test]
    async fn keys_are_exact_and_newer_snapshots_drop_older_answers() {
        let cache = AnswerCache::new(1 << 20);
        for key in ["k", "k", "k2", "k2"] {
            render(&cache, STAMPS, key, key).await;
        }
        assert_eq!(cache.entries(), 2);
        assert!(text_of(&*render(&cache, STAMPS, "k2", "other").await, "").contains("k2"));
        let newer = Stamps { catalog: 1, deployments: 2 };
        for text in ["three", "four"] {
            assert!(
                text_of(&*render(&cache, newer, "k", text).await, "").contains(text),
                "a new deployment stamp renders again"
            );
        }
        assert_eq!(cache.entries(), 1, "the older snapshot's entries are gone");
        for text in ["five", "six"] {
            assert!(
                text_of(&*render(&cache, STAMPS, "k", text).await, "").contains(text),
                "an older snapshot is rendered, not kept"
            );
        }
        assert_eq!(cache.entries(), 1);
        assert_ne!(AnswerKey::of(&("ab", "c")), AnswerKey::of(&("a", "bc")));
        assert_ne!(
            AnswerKey::of(&(vec![1u32, 2], vec![3u32])),
            AnswerKey::of(&(vec![1u32], vec![2u32, 3]))
        );
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_limit_and_drops_the_least_recently_used() {
        let limit = 64 << 10;
        let cache = AnswerCache::new(limit);
        let big = "y".repeat(5000);
        for i in 0..100 {
            for _ in 0..2 {
                render(&cache, STAMPS, &format!("key {i}"), &format!("{i}{big}")).await;
            }
            render(&cache, STAMPS, "key 0", &format!("0{big}")).await;
            assert!(cache.bytes() <= limit, "{} bytes after {i}", cache.bytes());
        }
        assert!(cache.evictions.load(Ordering::Relaxed) > 80);
        let kept = render(&cache, STAMPS, "key 0", "not rendered again").await;
        assert!(!text_of(&kept, "").contains("not rendered"), "the most used entry stayed");
        // One-off keys (each asked once) take no room beyond their share and push nothing out.
        let entries = cache.entries();
        for i in 0..10_000 {
            render(&cache, STAMPS, &format!("once {i}"), "x").await;
            assert!(cache.bytes() <= limit);
        }
        assert_eq!(cache.entries(), entries);
    }

    #[tokio::test]
    async fn identical_requests_render_once_even_when_too_large_to_keep() {
        let cache = Arc::new(AnswerCache::new(1 << 20));
        for text in ["p", &"z".repeat(200_000)] {
            let key = format!("same {}", text.len());
            render_with(&cache, &key, text).await; // seen once
            let renders = Arc::new(AtomicU64::new(0));
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let (cache, renders, key, text) =
                    (cache.clone(), renders.clone(), key.clone(), text.to_string());
                tasks.push(tokio::spawn(async move {
                    cache
                        .get_or_render::<(), _, _>(STAMPS, AnswerKey::of(&key), || async {
                            renders.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            Ok(Rendered::keep(parts(&text), FORM, cache.largest()))
                        })
                        .await
                        .ok()
                        .unwrap()
                }));
            }
            let mut too_large = 0;
            for t in tasks {
                too_large += usize::from(matches!(t.await.unwrap(), Kept::TooLarge(_)));
            }
            assert_eq!(renders.load(Ordering::Relaxed), 1, "{key}");
            assert_eq!(too_large, if text.len() > 1000 { 8 } else { 0 });
        }
        assert_eq!(cache.entries(), 1, "the too-large answer left no entry");
    }

    async fn render_with(cache: &AnswerCache, key: &str, text: &str) {
        let _ = cache
            .get_or_render::<(), _, _>(STAMPS, AnswerKey::of(&key), || async {
                Ok(Rendered::keep(parts(text), FORM, cache.largest()))
            })
            .await;
    }
}
