//! The values a bundle names itself by, each a type that cannot hold a bad value. They come from
//! a manifest a trusted key signed, and a trusted key can still be misused: each becomes a path
//! component, a database row or a number the sequence rules compare, so each is checked where it
//! is read (deserializing refuses the manifest) rather than where it is used.
//!
//! Invariant: a `BundleId` is a GUID in canonical lower-case form, a `ChannelName` 1 to 64
//! characters of `[a-z0-9-]`: both are safe as a path component. A `Sequence` is 1 to
//! `i64::MAX`, so it survives a signed 64-bit database column without wrapping.

use crate::catalog::Guid;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value is not a valid bundle name or number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?}: {rule}")]
pub struct NameError {
    pub what: &'static str,
    pub value: String,
    pub rule: &'static str,
}

fn refuse(what: &'static str, value: &str, rule: &'static str) -> NameError {
    NameError { what, value: value.chars().take(80).collect(), rule }
}

/// A bundle's identity: the GUID `ferry export` gives it, written in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BundleId(Guid);

impl BundleId {
    pub fn new_random() -> BundleId {
        BundleId(crate::random::guid())
    }

    /// Only the canonical spelling: the signed trusted comment names the bundle by it, so a
    /// second spelling of one id would be a second bundle.
    pub fn parse(text: &str) -> Result<BundleId, NameError> {
        let rule = "a bundle id is a GUID in lower case (8-4-4-4-12 hex digits)";
        let guid = Guid::parse(text).map_err(|_| refuse("bundle id", text, rule))?;
        if guid.hyphenated() != text.as_bytes() {
            return Err(refuse("bundle id", text, rule));
        }
        Ok(BundleId(guid))
    }
}

impl fmt::Display for BundleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl TryFrom<String> for BundleId {
    type Error = NameError;
    fn try_from(s: String) -> Result<BundleId, NameError> {
        BundleId::parse(&s)
    }
}

impl From<BundleId> for String {
    fn from(id: BundleId) -> String {
        id.to_string()
    }
}

/// A channel: bundles of one channel form one sequence; its name names bundle directories.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelName(String);

pub const MAX_CHANNEL_CHARS: usize = 64;

impl ChannelName {
    pub fn parse(text: &str) -> Result<ChannelName, NameError> {
        if text.is_empty() || text.len() > MAX_CHANNEL_CHARS {
            return Err(refuse("channel", text, "a channel name has 1 to 64 characters"));
        }
        if !text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(refuse(
                "channel",
                text,
                "use lower-case letters, digits and '-' (it names bundle directories)",
            ));
        }
        Ok(ChannelName(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ChannelName {
    type Error = NameError;
    fn try_from(s: String) -> Result<ChannelName, NameError> {
        ChannelName::parse(&s)
    }
}

impl From<ChannelName> for String {
    fn from(c: ChannelName) -> String {
        c.0
    }
}

impl PartialEq<str> for ChannelName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// A bundle's place in its channel's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Sequence(u64);

impl Sequence {
    pub const FIRST: Sequence = Sequence(1);
    pub const MAX: u64 = i64::MAX as u64;

    pub fn new(n: u64) -> Result<Sequence, NameError> {
        if n == 0 || n > Sequence::MAX {
            return Err(refuse(
                "sequence",
                &n.to_string(),
                "a sequence number is between 1 and 2^63-1",
            ));
        }
        Ok(Sequence(n))
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// For a signed 64-bit database column: never negative, never wrapped.
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }

    /// The sequence after this one, while there is one.
    pub fn next(self) -> Result<Sequence, NameError> {
        Sequence::new(self.0 + 1)
    }
}

impl fmt::Display for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl TryFrom<u64> for Sequence {
    type Error = NameError;
    fn try_from(n: u64) -> Result<Sequence, NameError> {
        Sequence::new(n)
    }
}

impl From<Sequence> for u64 {
    fn from(s: Sequence) -> u64 {
        s.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_ids_are_canonical_guids_only() {
        let id = BundleId::new_random();
        assert_eq!(BundleId::parse(&id.to_string()).unwrap(), id);
        for bad in [
            "../../etc",
            "",
            "x",
            "56309036-4C77-4DD9-951A-99EE9C246A94",
            "{56309036-4c77-4dd9-951a-99ee9c246a94}",
        ] {
            assert!(BundleId::parse(bad).is_err(), "{bad:?}");
        }
        let json: Result<BundleId, _> = serde_json::from_str("\"../outside\"");
        assert!(json.is_err());
    }

    #[test]
    fn channel_names_are_path_safe() {
        assert!(ChannelName::parse("windows11-security").is_ok());
        for bad in ["", "..", "a/b", "A", "a b", "a.b", &"a".repeat(65)] {
            assert!(ChannelName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sequences_fit_a_signed_64_bit_column() {
        assert!(Sequence::new(0).is_err());
        assert_eq!(Sequence::new(i64::MAX as u64).unwrap().as_i64(), i64::MAX);
        assert!(Sequence::new(1 << 63).is_err());
        assert!(Sequence::new(u64::MAX).is_err());
        assert!(Sequence::new(i64::MAX as u64).unwrap().next().is_err());
        let json: Result<Sequence, _> = serde_json::from_str("9223372036854775808");
        assert!(json.is_err());
    }
}
