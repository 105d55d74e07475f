//! `/Content/<XX>/<SHA1>.<ext>`: payloads with HTTP ranges, as Delivery Optimization and BITS
//! fetch them. Only files the catalog knows and holds are served; never chunked, never compressed.

use super::mapped::MappedFile;
use super::state::AppState;
use crate::bundle::safe_path::SafePath;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64, // inclusive
}

/// What a `Range` header asks of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: serve the whole file (RFC 9110 says to ignore what cannot be parsed).
    Whole,
    Ranges(Vec<ByteRange>),
    /// No range overlaps the file: 416.
    Unsatisfiable,
}

/// Parses a `Range` header against a file of `size` bytes. A header that does not parse is
/// ignored, as RFC 9110 §14.2 says.
pub fn parse_ranges(value: &str, size: u64) -> RangeRequest {
    match parse_ranges_inner(value, size) {
        Ok(None) => RangeRequest::Whole,
        Ok(Some(r)) => RangeRequest::Ranges(r),
        Err(Unsatisfiable) => RangeRequest::Unsatisfiable,
    }
}

struct Unsatisfiable;

fn parse_ranges_inner(value: &str, size: u64) -> Result<Option<Vec<ByteRange>>, Unsatisfiable> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return Ok(None) };
    let mut out = Vec::new();
    for part in spec.split(',') {
        let part = part.trim();
        let Some((a, b)) = part.split_once('-') else { return Ok(None) };
        let range = match (a.trim(), b.trim()) {
            ("", "") => return Ok(None),
            ("", n) => {
                let Ok(n) = n.parse::<u64>() else { return Ok(None) };
                if n == 0 || size == 0 {
                    continue;
                }
                ByteRange { start: size.saturating_sub(n), end: size - 1 }
            }
            (a, "") => {
                let Ok(a) = a.parse::<u64>() else { return Ok(None) };
                if a >= size {
                    continue;
                }
                ByteRange { start: a, end: size - 1 }
            }
            (a, b) => {
                let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) else { return Ok(None) };
                if a > b {
                    return Ok(None);
                }
                if a >= size {
                    continue;
                }
                ByteRange { start: a, end: b.min(size - 1) }
            }
        };
        out.push(range);
    }
    if out.is_empty() { Err(Unsatisfiable) } else { Ok(Some(out)) }
}

fn status(code: StatusCode) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_LENGTH, "0")
        .body(Body::empty())
        .expect("static response")
}

/// Real WSUS sends `application/octet-stream` for content (content-headers captures); `.wim` is
/// registered as `application/x-ms-wim` by the UUP servicing update.
fn mime(extension: &str) -> &'static str {
    if extension.eq_ignore_ascii_case("wim") {
        "application/x-ms-wim"
    } else {
        "application/octet-stream"
    }
}

/// Bodies up to this size go in one piece; larger ones (whole multi-GB files) in pieces of it,
/// each read ahead just before it is sent.
const PIECE: u64 = 4 << 20;

/// A range as bytes of the mapping; read ahead on the blocking pool first unless it is all in
/// the page cache already.
async fn fetched(file: Arc<MappedFile>, offset: u64, len: u64) -> std::io::Result<bytes::Bytes> {
    if !file.resident(offset, len) {
        let f = file.clone();
        tokio::task::spawn_blocking(move || f.prefetch(offset, len))
            .await
            .map_err(std::io::Error::other)?;
    }
    Ok(file.bytes(offset, len))
}

/// A body of `len` bytes from `offset`.
async fn body_of(
    state: &Arc<AppState>,
    file: &Arc<MappedFile>,
    offset: u64,
    len: u64,
) -> std::io::Result<Body> {
    state.metrics.content_bytes.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
    if len <= PIECE {
        return Ok(Body::from(fetched(file.clone(), offset, len).await?));
    }
    let stream = futures_util::stream::unfold(
        (file.clone(), offset, offset + len),
        |(file, pos, end)| async move {
            if pos >= end {
                return None;
            }
            let n = (end - pos).min(PIECE);
            Some((fetched(file.clone(), pos, n).await, (file, pos + n, end)))
        },
    );
    Ok(Body::from_stream(stream))
}

/// Multi-range requests beyond these limits get the whole file (200), as RFC 9110 allows: many
/// small or overlapping ranges are an amplification trick.
const MAX_PARTS: usize = 16;
const MAX_MULTIPART_BYTES: u64 = 64 << 20;

/// `GET|HEAD /Content/<XX>/<SHA1>.<ext>` (path already lower-cased).
pub async fn serve(
    state: Arc<AppState>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Response<Body> {
    state.metrics.content_requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if method != Method::GET && method != Method::HEAD {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let rest = &path["/content/".len()..];
    let Some((folder, name)) = rest.split_once('/') else { return status(StatusCode::NOT_FOUND) };
    let Some((hex_name, extension)) = name.split_once('.') else {
        // IIS answers a missing extension with 403.
        return status(StatusCode::FORBIDDEN);
    };
    let Ok(sha1) = crate::catalog::Sha1Digest::from_hex(hex_name) else {
        return status(StatusCode::NOT_FOUND);
    };
    if !folder.eq_ignore_ascii_case(&sha1.content_folder()) {
        return status(StatusCode::NOT_FOUND);
    }
    let catalog = state.catalog();
    let known = catalog
        .files
        .get(&sha1.0)
        .filter(|f| f.present && f.extension.eq_ignore_ascii_case(extension))
        .map(|f| f.extension.clone());
    drop(catalog);
    let extension_on_disk = match known {
        Some(e) => e,
        // Stored after the snapshot was taken (an import or sync a moment ago): ask the store.
        None => match file_in_store(&state, sha1).await {
            Some(e) if e.eq_ignore_ascii_case(extension) => e,
            _ => return status(StatusCode::NOT_FOUND),
        },
    };
    let path = state.content.path(&sha1, &extension_on_disk);
    let tag = sha1.to_hex_lower()[..16].to_string();
    serve_file(&state, method, headers, &path, &tag, mime(extension)).await
}

/// The extension of a file the store holds (present), by SHA-1.
async fn file_in_store(state: &Arc<AppState>, sha1: crate::catalog::Sha1Digest) -> Option<String> {
    let s = state.clone();
    tokio::task::spawn_blocking(move || {
        s.pool.with(|store| store.present_file_extension(&sha1)).ok().flatten()
    })
    .await
    .ok()
    .flatten()
}

/// `GET|HEAD /selfupdate/...`: files an administrator copied from a WSUS `SelfUpdate` folder
/// into `<data>/selfupdate/` (WSUS-PROTOCOL.md §3.9); only old agents ask for them.
pub async fn serve_selfupdate(
    state: Arc<AppState>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let relative = &path["/selfupdate/".len()..];
    let (Ok(safe), Ok(lower)) =
        (SafePath::new(relative), SafePath::new(&relative.to_ascii_lowercase()))
    else {
        return status(StatusCode::NOT_FOUND);
    };
    let root = state.location.data().join("selfupdate");
    // IIS matches case-insensitively; try the path as sent, then in lower case.
    let exact = safe.under(&root);
    let file = if exact.is_file() { exact } else { lower.under(&root) };
    let tag =
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(relative.to_ascii_lowercase().as_bytes()));
    let extension = relative.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    serve_file(&state, method, headers, &file, &tag, mime(extension)).await
}

fn unsatisfiable(size: u64) -> Response<Body> {
    Response::builder()
        .status(StatusCode::RANGE_NOT_SATISFIABLE)
        .header(header::CONTENT_RANGE, format!("bytes */{size}"))
        .header(header::CONTENT_LENGTH, "0")
        .body(Body::empty())
        .expect("static response")
}

/// A file with the headers and range handling real WSUS (IIS) gives its content.
async fn serve_file(
    state: &Arc<AppState>,
    method: &Method,
    headers: &HeaderMap,
    path: &std::path::Path,
    tag: &str,
    content_type: &'static str,
) -> Response<Body> {
    let file = match state.mapped.get(path) {
        Ok(f) => f,
        Err(_) => return status(StatusCode::NOT_FOUND),
    };
    let size = file.size;
    let etag = format!("\"{tag}:0\"");
    let modified = file.modified.clone();
    let head = method == Method::HEAD;

    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // If-Range: ranges only while the entity is the one the client started with.
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == etag || v == modified);
    let ranges = match range_header.filter(|_| if_range_ok) {
        None => None,
        // Real WSUS (IIS) answers HEAD with a Range by 416.
        Some(_) if head => return unsatisfiable(size),
        Some(v) => match parse_ranges(v, size) {
            RangeRequest::Whole => None,
            RangeRequest::Ranges(r) => Some(r),
            RangeRequest::Unsatisfiable => return unsatisfiable(size),
        },
    };
    let ranges = ranges.filter(|r| {
        r.len() == 1
            || (r.len() <= MAX_PARTS
                && r.iter().map(|r| r.end - r.start + 1).sum::<u64>() <= MAX_MULTIPART_BYTES)
    });
    let builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, HeaderValue::from_str(&etag).expect("hex"))
        .header(header::LAST_MODIFIED, modified.as_str());
    let result = match ranges.as_deref() {
        None => {
            let builder = builder
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, content_type)
                .header(header::CONTENT_LENGTH, size);
            if head {
                Ok(builder.body(Body::empty()))
            } else {
                body_of(state, &file, 0, size).await.map(|b| builder.body(b))
            }
        }
        Some([r]) => {
            let len = r.end - r.start + 1;
            let builder = builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_TYPE, content_type)
                .header(header::CONTENT_LENGTH, len)
                .header(header::CONTENT_RANGE, format!("bytes {}-{}/{size}", r.start, r.end));
            body_of(state, &file, r.start, len).await.map(|b| builder.body(b))
        }
        Some(many) => multipart(state, builder, &file, many, size, tag, content_type).await,
    };
    match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::error!("building a content response failed: {e}");
            status(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Err(e) => {
            tracing::error!("reading {} failed: {e}", path.display());
            status(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// `multipart/byteranges` (RFC 9110 §14.6), with its length known up front. Streamed: part
/// headers and the ranges (straight from the mapping, a piece at a time) are produced as the
/// client reads, so an answer nobody reads holds no copy of its bytes.
async fn multipart(
    state: &Arc<AppState>,
    builder: axum::http::response::Builder,
    file: &Arc<MappedFile>,
    ranges: &[ByteRange],
    size: u64,
    tag: &str,
    content_type: &str,
) -> std::io::Result<Result<Response<Body>, axum::http::Error>> {
    let boundary = format!("ferry{tag}");
    let mut parts: std::collections::VecDeque<Part> =
        std::collections::VecDeque::with_capacity(ranges.len() * 2 + 1);
    for r in ranges {
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {}-{}/{size}\r\n\r\n",
            r.start, r.end
        );
        parts.push_back(Part::Text(bytes::Bytes::from(head)));
        parts.push_back(Part::Range(r.start, r.end - r.start + 1));
    }
    parts.push_back(Part::Text(bytes::Bytes::from(format!("\r\n--{boundary}--\r\n"))));
    let total: u64 = parts.iter().map(Part::len).sum();
    state.metrics.content_bytes.fetch_add(total, std::sync::atomic::Ordering::Relaxed);
    let stream =
        futures_util::stream::unfold((file.clone(), parts), |(file, mut parts)| async move {
            let next = match parts.pop_front()? {
                Part::Text(t) => Ok(t),
                Part::Range(offset, len) => {
                    let n = len.min(PIECE);
                    if n < len {
                        parts.push_front(Part::Range(offset + n, len - n));
                    }
                    fetched(file.clone(), offset, n).await
                }
            };
            Some((next, (file, parts)))
        });
    Ok(builder
        .status(StatusCode::PARTIAL_CONTENT)
        .header(header::CONTENT_TYPE, format!("multipart/byteranges; boundary={boundary}"))
        .header(header::CONTENT_LENGTH, total)
        .body(Body::from_stream(stream)))
}

/// A piece of a multipart answer still to send.
enum Part {
    Text(bytes::Bytes),
    /// (offset, length) in the file.
    Range(u64, u64),
}

impl Part {
    fn len(&self) -> u64 {
        match self {
            Part::Text(t) => t.len() as u64,
            Part::Range(_, len) => *len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        let r = |a, b| ByteRange { start: a, end: b };
        use RangeRequest::*;
        assert_eq!(parse_ranges("bytes=0-1048575", 204745168), Ranges(vec![r(0, 1048575)]));
        assert_eq!(
            parse_ranges("bytes=204472320-204745167", 204745168),
            Ranges(vec![r(204472320, 204745167)])
        );
        assert_eq!(parse_ranges("bytes=-500", 1000), Ranges(vec![r(500, 999)]));
        assert_eq!(parse_ranges("bytes=-5000", 1000), Ranges(vec![r(0, 999)]));
        assert_eq!(parse_ranges("bytes=900-", 1000), Ranges(vec![r(900, 999)]));
        assert_eq!(parse_ranges("bytes=0-5000", 1000), Ranges(vec![r(0, 999)]));
        assert_eq!(parse_ranges("bytes=0-1,5-6", 1000), Ranges(vec![r(0, 1), r(5, 6)]));
        assert_eq!(parse_ranges("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_ranges("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_ranges("bytes=x-1", 1000), Whole);
        assert_eq!(parse_ranges("bytes=5-2", 1000), Whole);
        assert_eq!(parse_ranges("items=0-1", 1000), Whole);
    }
}
