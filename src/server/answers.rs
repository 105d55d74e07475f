//! Rendered answers that clients in the same state share. On the morning after an import a
//! fleet's machines sit in the same groups with the same installed and cached updates, so they
//! send identical SyncUpdates and GetExtendedUpdateInfo requests; the first renders the answer
//! (and compresses it), the others get the same bytes, as if from a static file.
//!
//! An answer is stored in two parts around the one thing in it that belongs to a single client,
//! its cookie: the client's part is made for every request and never stored.
//!
//! Invariant: a key is the exact encoding of everything an answer depends on besides the
//! client's part (the snapshots' stamps, the groups, the SOAP version, the encoding, the whole
//! request), compared byte for byte: no hash collision can hand one client another's answer.
//! Invariant: the cache never holds more than its byte limit; entries not used for longest go
//! first, and entries of older snapshots go as soon as a request sees newer ones.

use super::body::PiecesBody;
use crate::wsus::soap::{self, EnvelopeStyle, Piece, SoapVersion};
use crate::wsus::xpress;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// What the cache may hold: room for the answers of a few dozen scans in flight (a first scan of
/// a 30,000-revision catalog is about 5 MB of answers, a third of that compressed).
pub const DEFAULT_ANSWER_CACHE_BYTES: usize = 64 << 20;

/// Bookkeeping per entry beyond its key and answer bytes (map and age-order slots, the `Arc`s).
const ENTRY_OVERHEAD: usize = 160;

/// An answer larger than this share of the limit is not stored (a page that carries a
/// multi-megabyte Core fragment, which is shared without copying when rendered fresh).
const LARGEST_SHARE: usize = 8;

/// The snapshots an answer was rendered from: the catalog's and the deployments' stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamps {
    pub catalog: i64,
    pub deployments: i64,
}

/// The exact bytes of what an answer depends on (see the module's invariant).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnswerKey(Arc<[u8]>);

impl AnswerKey {
    /// The key of `what`: its `Hash` encoding, kept whole. Derived `Hash` writes every field
    /// with lengths before sequences and a terminator after strings, so two different values
    /// give two different keys.
    pub fn of(what: &impl Hash) -> AnswerKey {
        let mut bytes = KeyBytes(Vec::with_capacity(256));
        what.hash(&mut bytes);
        AnswerKey(bytes.0.into())
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

struct KeyBytes(Vec<u8>);

impl Hasher for KeyBytes {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
    fn finish(&self) -> u64 {
        unreachable!("an answer key is its bytes, never a hash")
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
    /// Wraps `parts` in the envelope of `form` and compresses the head when asked. `None` when
    /// the answer is too large to share (the caller sends `parts` fresh).
    pub fn new(parts: &Parts, form: Form, largest: usize) -> Option<Rendered> {
        let (before, after) = soap::envelope_parts(form.version, form.style);
        let head_len = before.len() + parts.head.iter().map(Piece::len).sum::<usize>();
        if head_len + parts.tail.len() + after.len() > largest {
            return None;
        }
        let mut head = Vec::with_capacity(head_len);
        head.extend_from_slice(before.as_bytes());
        for piece in &parts.head {
            head.extend_from_slice(piece.as_bytes());
        }
        let tail = Bytes::from(format!("{}{after}", parts.tail));
        let plain_len = head.len() + tail.len();
        let head = if form.xpress { xpress::Encoder::new().frame([&head[..]]) } else { head };
        Some(Rendered { head: Bytes::from(head), tail, xpress: form.xpress, plain_len, ends_scan: parts.ends_scan })
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

/// Why a render gave no shared answer.
pub enum NotShared<E> {
    /// The operation failed: the caller answers with the error.
    Failed(E),
    /// Too large to keep: the caller sends these parts fresh.
    TooLarge(Parts),
}

struct Slot {
    answer: OnceCell<Arc<Rendered>>,
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
    by_age: BTreeMap<u64, AnswerKey>,
    tick: u64,
    bytes: usize,
}

impl Inner {
    fn clear(&mut self) {
        self.entries.clear();
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
        AnswerCache { limit, inner: Mutex::default(), hits: AtomicU64::new(0), misses: AtomicU64::new(0), evictions: AtomicU64::new(0) }
    }

    /// Bytes held now (answers, keys and bookkeeping).
    pub fn bytes(&self) -> usize {
        self.inner.lock().expect("answer cache lock").bytes
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

    /// The answer stored under `key`, or the one `render` makes (once, however many identical
    /// requests arrive while it runs). Requests that read older snapshots than the cache holds
    /// render without it.
    pub async fn get_or_render<E, F, Fut>(&self, stamps: Stamps, key: AnswerKey, render: F) -> Result<Arc<Rendered>, NotShared<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Rendered, NotShared<E>>>,
    {
        let Some(slot) = self.slot(stamps, &key) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return render().await.map(Arc::new);
        };
        let mut rendered_here = false;
        let answer = slot
            .answer
            .get_or_try_init(|| {
                rendered_here = true;
                async { render().await.map(Arc::new) }
            })
            .await;
        if rendered_here {
            self.misses.fetch_add(1, Ordering::Relaxed);
        } else {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        let mut inner = self.inner.lock().expect("answer cache lock");
        match &answer {
            Ok(a) if rendered_here => self.account(&mut inner, &key, &slot, a.bytes()),
            Err(NotShared::TooLarge(_)) => inner.remove(&key),
            _ => {}
        }
        answer.map(Arc::clone)
    }

    /// The slot of `key` (a new, empty one if there is none), marked as used now.
    fn slot(&self, stamps: Stamps, key: &AnswerKey) -> Option<Arc<Slot>> {
        let mut inner = self.inner.lock().expect("answer cache lock");
        match inner.stamps {
            Some(held) if held == stamps => {}
            Some(held) if held.catalog > stamps.catalog || held.deployments > stamps.deployments => return None,
            _ => {
                inner.clear();
                inner.stamps = Some(stamps);
            }
        }
        inner.tick += 1;
        let tick = inner.tick;
        let slot = match inner.entries.get_mut(key) {
            Some(e) => {
                let old = std::mem::replace(&mut e.used, tick);
                let slot = e.slot.clone();
                inner.by_age.remove(&old);
                slot
            }
            None => {
                let slot = Arc::new(Slot { answer: OnceCell::new() });
                let bytes = key.len() + ENTRY_OVERHEAD;
                inner.entries.insert(key.clone(), Entry { slot: slot.clone(), used: tick, bytes });
                inner.bytes += bytes;
                slot
            }
        };
        inner.by_age.insert(tick, key.clone());
        inner.evict_to(self.limit, &self.evictions);
        Some(slot)
    }

    /// Counts a freshly rendered answer against the limit (if its entry is still there).
    fn account(&self, inner: &mut Inner, key: &AnswerKey, slot: &Arc<Slot>, answer_bytes: usize) {
        let Some(e) = inner.entries.get_mut(key).filter(|e| Arc::ptr_eq(&e.slot, slot)) else { return };
        e.bytes += answer_bytes;
        inner.bytes += answer_bytes;
        inner.evict_to(self.limit, &self.evictions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Form = Form { version: SoapVersion::V11, style: EnvelopeStyle::Client, xpress: false };
    const STAMPS: Stamps = Stamps { catalog: 1, deployments: 1 };

    fn parts(text: &str) -> Parts {
        Parts { head: vec![Piece::Text(format!("<A>{text}")), Piece::Shared(Arc::from("<core/>"))], tail: "</A>".into(), ends_scan: false }
    }

    async fn render(cache: &AnswerCache, stamps: Stamps, key: &str, text: &str) -> Arc<Rendered> {
        let parts = parts(text);
        let answer = cache
            .get_or_render::<(), _, _>(stamps, AnswerKey::of(&key), || async {
                Ok(Rendered::new(&parts, FORM, usize::MAX).expect("small"))
            })
            .await;
        answer.ok().expect("rendered")
    }

    fn text_of(r: &Rendered, client: &str) -> String {
        let (body, plain_len) = r.body(client);
        let text: Vec<u8> = body.chunks().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(text.len(), plain_len);
        String::from_utf8(text).unwrap()
    }

    #[tokio::test]
    async fn the_client_part_sits_between_head_and_tail_and_is_never_stored() {
        let cache = AnswerCache::new(1 << 20);
        let a = render(&cache, STAMPS, "k", "one").await;
        let b = render(&cache, STAMPS, "k", "two").await;
        assert!(Arc::ptr_eq(&a, &b), "the second identical request is served from the cache");
        assert_eq!((cache.hits.load(Ordering::Relaxed), cache.misses.load(Ordering::Relaxed)), (1, 1));
        let (before, after) = soap::envelope_parts(FORM.version, FORM.style);
        assert_eq!(text_of(&a, "<C>mine</C>"), format!("{before}<A>one<core/><C>mine</C></A>{after}"));
        assert!(!String::from_utf8_lossy(&a.head).contains("mine") && !String::from_utf8_lossy(&a.tail).contains("mine"));
    }

    #[tokio::test]
    async fn an_xpress_answer_decodes_to_the_plain_one() {
        let parts = parts(&"x".repeat(200_000));
        let plain = Rendered::new(&parts, FORM, usize::MAX).unwrap();
        let packed = Rendered::new(&parts, Form { xpress: true, ..FORM }, usize::MAX).unwrap();
        let (body, plain_len) = packed.body("<C>cookie</C>");
        let stream: Vec<u8> = body.chunks().flat_map(|c| c.iter().copied()).collect();
        assert!(stream.len() < plain_len / 10);
        assert_eq!(xpress::unframe(&stream, plain_len).unwrap(), text_of(&plain, "<C>cookie</C>").into_bytes());
    }

    #[tokio::test]
    async fn keys_are_exact_and_newer_snapshots_drop_older_answers() {
        let cache = AnswerCache::new(1 << 20);
        render(&cache, STAMPS, "k", "one").await;
        let other = render(&cache, STAMPS, "k2", "two").await;
        assert!(text_of(&other, "").contains("two"));
        let newer = Stamps { catalog: 1, deployments: 2 };
        let fresh = render(&cache, newer, "k", "three").await;
        assert!(text_of(&fresh, "").contains("three"), "a new deployment stamp renders again");
        assert_eq!(cache.entries(), 1, "the older snapshot's entries are gone");
        let stale = render(&cache, STAMPS, "k", "four").await;
        assert!(text_of(&stale, "").contains("four"), "an older snapshot is rendered, not stored");
        assert_eq!(cache.entries(), 1);
        assert_ne!(AnswerKey::of(&("ab", "c")), AnswerKey::of(&("a", "bc")));
        assert_ne!(AnswerKey::of(&(vec![1u32, 2], vec![3u32])), AnswerKey::of(&(vec![1u32], vec![2u32, 3])));
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_limit_and_drops_the_least_recently_used() {
        let limit = 64 << 10;
        let cache = AnswerCache::new(limit);
        let big = "y".repeat(5000);
        for i in 0..100 {
            render(&cache, STAMPS, &format!("key {i}"), &format!("{i}{big}")).await;
            render(&cache, STAMPS, "key 0", &format!("0{big}")).await;
            assert!(cache.bytes() <= limit, "{} bytes after {i}", cache.bytes());
        }
        assert!(cache.evictions.load(Ordering::Relaxed) > 80);
        let kept = render(&cache, STAMPS, "key 0", "not rendered again").await;
        assert!(
            text_of(&kept, "").starts_with(&soap::envelope_parts(FORM.version, FORM.style).0)
                && !text_of(&kept, "").contains("not rendered")
        );
    }

    #[tokio::test]
    async fn identical_requests_render_once_and_too_large_answers_are_not_kept() {
        let cache = Arc::new(AnswerCache::new(1 << 20));
        let renders = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, renders) = (cache.clone(), renders.clone());
            tasks.push(tokio::spawn(async move {
                let key = AnswerKey::of(&"same");
                cache
                    .get_or_render::<(), _, _>(STAMPS, key, || async {
                        renders.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        Ok(Rendered::new(&parts("p"), FORM, usize::MAX).unwrap())
                    })
                    .await
                    .ok()
                    .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(renders.load(Ordering::Relaxed), 1);
        let large = parts(&"z".repeat(200_000));
        let answer = cache
            .get_or_render::<(), _, _>(STAMPS, AnswerKey::of(&"large"), || async {
                Rendered::new(&large, FORM, cache.largest()).ok_or(NotShared::TooLarge(parts("z")))
            })
            .await;
        assert!(matches!(answer, Err(NotShared::TooLarge(_))));
        assert_eq!(cache.entries(), 1, "the too-large answer left no entry");
    }
}
