//! The update catalog: identities, revisions, categories, prerequisites, files and the
//! fragments clients are served.
//!
//! Invariant: pure. Nothing here reads files, opens sockets, spawns threads or looks at the
//! clock; callers hand in bytes and get values back (`tests/architecture.rs` checks the imports).

pub mod digest;
pub mod fragments;
pub mod guid;
pub mod language;
pub mod model;
pub mod parse;
pub mod xml;

pub use digest::{Sha1Digest, Sha256Digest};
pub use fragments::Fragments;
pub use guid::Guid;
pub use language::Language;
pub use model::*;
pub use parse::{DocumentError, MAX_DOCUMENT_BYTES, ParsedUpdate, parse_update};
