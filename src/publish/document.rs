//! See `publish/mod.rs`.
