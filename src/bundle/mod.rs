//! Bundles: what crosses the air gap, and the security boundary of the product.
//!
//! ```text
//! <channel>-<sequence>/manifest.json          what the bundle is and the hash of every byte
//!                      manifest.json.minisig  minisign signature (trusted comment names the bundle)
//!                      vol-0001.tar ...       standalone archives of whole members
//! members: metadata/revisions-NNNN.bin (update documents), content/XX/<SHA1>.<ext> (payloads)
//! ```
//!
//! Invariant: every path read from a bundle passes `SafePath` before it touches the file system.
//! Invariant: nothing from a bundle becomes visible in a store before the signature, the trust,
//! the sequence, every volume and every member have checked out (one transaction).

pub mod approvals;
pub mod error;
pub mod export;
pub mod held;
pub mod import;
pub mod inspect;
pub mod integrity;
pub mod manifest;
pub mod metadata;
pub mod minisign;
pub mod names;
pub mod pipe;
pub mod profile;
pub mod reader;
pub mod safe_path;
pub mod select;
pub mod verify;
pub mod volumes;
pub mod zip_volume;

pub use error::{BundleError, Problem, ProblemKind};
pub use manifest::Manifest;
