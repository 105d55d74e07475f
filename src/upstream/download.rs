//! Payload downloads into the cache's content tree: several files at once, resumable (`.part`
//! files continued with Range and If-Range), SHA-1 and SHA-256 computed while the bytes stream,
//! and a file under its final name only when both digests and the size match.
//!
//! Downloads do not wait for the disk (no fsync per file, which would make them half as fast as
//! curl): the cache is a copy of the upstream, and `export` re-hashes every payload while
//! packaging, dropping a damaged one from the cache so the next run fetches it again. A crash
//! can cost a re-download, never a bad bundle.

use super::UpstreamError;
use super::transport::{Transport, backoff};
use crate::catalog::{Sha1Digest, Sha256Digest};
use crate::store::{ContentStore, FileHasher, Store};
use serde::Serialize;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// One file to fetch.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub sha1: Sha1Digest,
    pub sha256: Option<Sha256Digest>,
    pub size: u64,
    pub extension: String,
    pub url: String,
    /// The update it belongs to, for messages.
    pub owner: String,
}

#[derive(Debug, Clone)]
pub struct DownloadOptions {
    pub parallel: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DownloadReport {
    pub files: usize,
    pub bytes: u64,
    /// Bytes that were already in `.part` files from an earlier run.
    pub resumed_bytes: u64,
    pub seconds: f64,
    pub notes: Vec<String>,
}

const BUFFER: usize = 1 << 20;

fn partial_paths(staging: &Path, w: &Wanted) -> (PathBuf, PathBuf) {
    let name = format!("{}.{}", w.sha1.to_hex_upper(), w.extension);
    (staging.join(format!("{name}.part")), staging.join(format!("{name}.part.validator")))
}

struct Shared<'a> {
    queue: Mutex<VecDeque<Wanted>>,
    done_bytes: AtomicU64,
    stop: AtomicBool,
    /// Files verified and under their final name, not yet marked present.
    finished: Mutex<Vec<[u8; 20]>>,
    errors: Mutex<Vec<UpstreamError>>,
    notes: Mutex<Vec<String>>,
    resumed: AtomicU64,
    transport: &'a Transport,
    content: &'a ContentStore,
    staging: PathBuf,
}

/// Downloads `wanted` into the cache; marks each file present as it lands. Progress reports
/// (bytes done, bytes total) from the calling thread.
pub fn download(
    cache: &mut Store,
    transport: &Transport,
    wanted: Vec<Wanted>,
    options: &DownloadOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<DownloadReport, UpstreamError> {
    let started = Instant::now();
    let total: u64 = wanted.iter().map(|w| w.size).sum();
    let count = wanted.len();
    let content = cache.content().clone();
    let staging = content.staging_dir().join("downloads");
    std::fs::create_dir_all(&staging)
        .map_err(|e| UpstreamError::Download(format!("{}: {e}", staging.display())))?;
    let shared = Shared {
        queue: Mutex::new(wanted.into()),
        done_bytes: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        finished: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
        notes: Mutex::new(Vec::new()),
        resumed: AtomicU64::new(0),
        transport,
        content: &content,
        staging,
    };
    let workers = options.parallel.clamp(1, 32).min(count.max(1));
    let active = AtomicUsize::new(workers);
    std::thread::scope(|scope| -> Result<(), UpstreamError> {
        for _ in 0..workers {
            scope.spawn(|| {
                worker(&shared);
                active.fetch_sub(1, Ordering::Release);
            });
        }
        // Record what landed as it lands, so an interrupted run keeps it.
        loop {
            let finished = active.load(Ordering::Acquire) == 0;
            let landed = std::mem::take(&mut *shared.finished.lock().expect("finished lock"));
            if !landed.is_empty() {
                cache.mark_files_present(&landed)?;
            }
            progress(shared.done_bytes.load(Ordering::Relaxed), total);
            if finished {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    })?;
    // The workers have ended (scope): record the last files.
    let landed = std::mem::take(&mut *shared.finished.lock().expect("finished lock"));
    cache.mark_files_present(&landed)?;
    progress(shared.done_bytes.load(Ordering::Relaxed), total);
    let mut errors = std::mem::take(&mut *shared.errors.lock().expect("errors lock"));
    if let Some(first) = errors.drain(..).next() {
        return Err(first);
    }
    Ok(DownloadReport {
        files: count,
        bytes: total,
        resumed_bytes: shared.resumed.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        notes: std::mem::take(&mut *shared.notes.lock().expect("notes lock")),
    })
}

fn worker(shared: &Shared<'_>) {
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let Some(w) = shared.queue.lock().expect("queue lock").pop_front() else { return };
        match fetch(shared, &w) {
            Ok(()) => shared.finished.lock().expect("finished lock").push(w.sha1.0),
            Err(e) => {
                shared.errors.lock().expect("errors lock").push(e);
                // One bad file stops the run (the cache keeps what landed); a re-run resumes.
                shared.stop.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Where one file stands: the digests of the bytes in its `.part` file so far, and how many of
/// them the progress count holds.
struct State {
    hasher: FileHasher,
    counted: u64,
}

/// Hashes what an earlier run left in `part`, to continue the digests where it stopped.
fn rehash(part: &Path, limit: u64) -> std::io::Result<FileHasher> {
    let mut hasher = FileHasher::default();
    let Ok(mut file) = File::open(part) else { return Ok(hasher) };
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 || hasher.len() + n as u64 > limit {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher)
}

/// One file, with retries that continue from where the previous attempt stopped.
fn fetch(shared: &Shared<'_>, w: &Wanted) -> Result<(), UpstreamError> {
    let (part, validator_path) = partial_paths(&shared.staging, w);
    let fail = |m: String| {
        UpstreamError::Download(format!("{} ({}, {}): {m}", w.url, w.owner, w.sha1.to_hex_upper()))
    };
    let hasher = rehash(&part, w.size).map_err(|e| fail(format!("{}: {e}", part.display())))?;
    let mut state = State { counted: 0, hasher };
    let mut attempt = 0;
    loop {
        attempt += 1;
        match fetch_once(shared, w, &part, &validator_path, &mut state) {
            Ok(Done::Complete) => break,
            Ok(Done::Retry(why)) | Err(Failure::Transient(why))
                if attempt < shared.transport.attempts() =>
            {
                let wait = backoff(attempt);
                shared.notes.lock().expect("notes lock").push(format!(
                    "{}: {why}; retrying in {:.1} s",
                    w.url,
                    wait.as_secs_f64()
                ));
                std::thread::sleep(wait);
            }
            Ok(Done::Retry(why)) | Err(Failure::Transient(why)) => {
                return Err(fail(format!(
                    "{why}; gave up after {attempt} attempts (run again to resume)"
                )));
            }
            Err(Failure::Fatal(why)) => return Err(fail(why)),
        }
    }
    // Complete: both digests and the size, then the final name.
    let verified = std::mem::take(&mut state.hasher).finish();
    let expected = crate::store::ExpectedFile {
        sha1: w.sha1,
        sha256: w.sha256,
        size: w.size,
        extension: w.extension.clone(),
        file_name: w.owner.clone(),
    };
    if let Err(e) = verified.check(&expected, &part) {
        let _ = std::fs::remove_file(&part);
        let _ = std::fs::remove_file(&validator_path);
        return Err(fail(format!(
            "the downloaded file does not match its metadata ({e}); it was deleted"
        )));
    }
    let target = shared.content.path(&w.sha1, &w.extension);
    let folder = target.parent().expect("content paths have a folder");
    std::fs::create_dir_all(folder).map_err(|e| fail(format!("{}: {e}", folder.display())))?;
    std::fs::rename(&part, &target).map_err(|e| fail(format!("{}: {e}", target.display())))?;
    let _ = std::fs::remove_file(&validator_path);
    Ok(())
}

enum Done {
    Complete,
    /// Stopped early (a dropped connection): try again from where it stopped.
    Retry(String),
}

enum Failure {
    Transient(String),
    Fatal(String),
}

fn fetch_once(
    shared: &Shared<'_>,
    w: &Wanted,
    part: &Path,
    validator_path: &Path,
    state: &mut State,
) -> Result<Done, Failure> {
    let validator = std::fs::read_to_string(validator_path).ok().filter(|v| !v.is_empty());
    let mut have = state.hasher.len();
    if have > 0 && validator.is_none() {
        // Without a validator the server cannot say whether the partial bytes still belong.
        have = 0;
    }
    if have == w.size && have > 0 {
        return Ok(Done::Complete);
    }
    let range = format!("bytes={have}-");
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if have > 0 {
        headers.push(("Range", &range));
        headers.push(("If-Range", validator.as_deref().unwrap_or_default()));
    }
    let mut response = match shared.transport.get(&w.url, &headers) {
        Ok(r) => r,
        Err(ureq::Error::TooManyRedirects) => {
            return Err(Failure::Fatal("too many redirects (a redirect loop?)".into()));
        }
        Err(e) => return Err(Failure::Transient(e.to_string())),
    };
    let Some(start) = start_offset(&response, have)? else {
        // The partial file belongs to another version: start over.
        let _ = std::fs::remove_file(part);
        state.hasher = FileHasher::default();
        return Ok(Done::Retry("the server refused the range; starting over".into()));
    };
    let headers = response.headers();
    let new_validator = headers
        .get("etag")
        .or_else(|| headers.get("last-modified"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(length) = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && start.checked_add(length).is_none_or(|end| end > w.size)
    {
        return Err(Failure::Fatal(format!(
            "the server sends {} bytes, the metadata says the file has {}",
            start.saturating_add(length),
            w.size
        )));
    }
    let file = open_part(part, validator_path, start, new_validator, state)?;
    // Progress: bytes an earlier run left count once; a restart from zero takes back what it counted.
    if start > state.counted {
        shared.resumed.fetch_add(start - state.counted, Ordering::Relaxed);
        shared.done_bytes.fetch_add(start - state.counted, Ordering::Relaxed);
    } else if start < state.counted {
        shared.done_bytes.fetch_sub(state.counted - start, Ordering::Relaxed);
    }
    state.counted = start;
    copy_body(shared, w, &mut response.body_mut().as_reader(), file, part, state)
}

/// Where the response's body starts in the file, from its status: `None` when the server
/// refused the range (the partial file is of another version).
fn start_offset(
    response: &ureq::http::Response<ureq::Body>,
    have: u64,
) -> Result<Option<u64>, Failure> {
    let status = response.status().as_u16();
    match status {
        206 if have > 0 => {
            let from = response
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if from != Some(have) {
                return Err(Failure::Fatal(format!(
                    "asked for bytes from {have}, got Content-Range {from:?}"
                )));
            }
            Ok(Some(have))
        }
        200 => Ok(Some(0)),
        416 if have > 0 => Ok(None),
        500..=599 | 408 | 429 => Err(Failure::Transient(format!("HTTP {status}"))),
        404 => Err(Failure::Fatal(
            "HTTP 404: the upstream does not have this file (on a WSUS upstream, approve the update there so it downloads it)".into(),
        )),
        other => Err(Failure::Fatal(format!("HTTP {other}"))),
    }
}

/// The `.part` file, positioned at `start`: new (with the response's validator beside it) from
/// zero, else cut to `start`.
fn open_part(
    part: &Path,
    validator_path: &Path,
    start: u64,
    new_validator: Option<String>,
    state: &mut State,
) -> Result<File, Failure> {
    let io = |e: std::io::Error| Failure::Fatal(format!("{}: {e}", part.display()));
    if start == 0 {
        state.hasher = FileHasher::default();
        let f = File::create(part).map_err(io)?;
        std::fs::write(validator_path, new_validator.unwrap_or_default()).map_err(io)?;
        return Ok(f);
    }
    let mut f = OpenOptions::new().write(true).open(part).map_err(io)?;
    f.set_len(start).map_err(io)?;
    f.seek(SeekFrom::Start(start)).map_err(io)?;
    Ok(f)
}

/// The body into the `.part` file and the hasher, never past the size the metadata gives.
fn copy_body(
    shared: &Shared<'_>,
    w: &Wanted,
    body: &mut impl Read,
    mut file: File,
    part: &Path,
    state: &mut State,
) -> Result<Done, Failure> {
    let io = |e: std::io::Error| Failure::Fatal(format!("{}: {e}", part.display()));
    let mut buf = vec![0u8; BUFFER];
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return Err(Failure::Fatal("stopped: another download failed".into()));
        }
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                file.flush().map_err(io)?;
                return Ok(Done::Retry(format!(
                    "the connection broke after {} of {} bytes ({e})",
                    state.hasher.len(),
                    w.size
                )));
            }
        };
        if state.hasher.len() + n as u64 > w.size {
            return Err(Failure::Fatal(format!(
                "the server sent more than the {} bytes the metadata says",
                w.size
            )));
        }
        file.write_all(&buf[..n]).map_err(io)?;
        state.hasher.update(&buf[..n]);
        state.counted += n as u64;
        shared.done_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    file.flush().map_err(io)?;
    if state.hasher.len() < w.size {
        return Ok(Done::Retry(format!(
            "the server stopped after {} of {} bytes",
            state.hasher.len(),
            w.size
        )));
    }
    Ok(Done::Complete)
}
