//! A response body made of pieces, some shared with other responses: its length is known up
//! front (Content-Length, never chunked) and shared pieces are sent without being copied.

use super::budget::Held;
use crate::wsus::soap::Piece;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

struct SharedText(Arc<str>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

fn bytes_of(piece: Piece) -> Bytes {
    match piece {
        Piece::Text(t) => Bytes::from(t),
        Piece::Shared(s) => Bytes::from_owner(SharedText(s)),
    }
}

pub struct PiecesBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
    /// The bytes this answer owns (not shared), counted in the memory budget until it is sent.
    owned: usize,
    _held: Option<Held>,
}

impl PiecesBody {
    pub fn new(pieces: impl IntoIterator<Item = Piece>) -> PiecesBody {
        let mut owned = 0;
        let chunks: VecDeque<Bytes> = pieces
            .into_iter()
            .filter(|p| !p.is_empty())
            .inspect(|p| owned += if let Piece::Text(t) = p { t.len() } else { 0 })
            .map(bytes_of)
            .collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        PiecesBody { chunks, remaining, owned, _held: None }
    }

    /// An answer already in one buffer (a compressed one), all of it owned.
    pub fn owned(bytes: Vec<u8>) -> PiecesBody {
        let owned = bytes.capacity();
        let remaining = bytes.len() as u64;
        PiecesBody { chunks: VecDeque::from([Bytes::from(bytes)]), remaining, owned, _held: None }
    }

    /// An answer whose first part is shared with other answers (a cached one) and whose rest
    /// is its own.
    pub fn shared_then_owned(shared: Bytes, own: Vec<u8>) -> PiecesBody {
        let owned = own.capacity();
        let chunks: VecDeque<Bytes> =
            [shared, Bytes::from(own)].into_iter().filter(|c| !c.is_empty()).collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        PiecesBody { chunks, remaining, owned, _held: None }
    }

    /// The answer's bytes, in order (for compressing it).
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks.iter().map(|c| &c[..])
    }

    /// Bytes of the answer that no other answer shares.
    pub fn owned_bytes(&self) -> usize {
        self.owned
    }

    /// Keeps `held` (this answer's share of the memory budget) until the body is dropped.
    pub fn holding(mut self, held: Held) -> PiecesBody {
        self._held = Some(held);
        self
    }

    /// The Content-Length.
    pub fn content_length(&self) -> u64 {
        self.remaining
    }
}

impl http_body::Body for PiecesBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.chunks.pop_front() {
            Some(c) => {
                self.remaining -= c.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(c))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
