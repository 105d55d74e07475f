//! A response body made of pieces, some shared with other responses: its length is known up
//! front (Content-Length, never chunked) and shared pieces are sent without being copied.

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
}

impl PiecesBody {
    pub fn new(pieces: impl IntoIterator<Item = Piece>) -> PiecesBody {
        let chunks: VecDeque<Bytes> = pieces.into_iter().filter(|p| !p.is_empty()).map(bytes_of).collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        PiecesBody { chunks, remaining }
    }

    /// The Content-Length.
    pub fn content_length(&self) -> u64 {
        self.remaining
    }
}

impl http_body::Body for PiecesBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
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
