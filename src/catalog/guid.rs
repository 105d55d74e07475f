//! GUIDs as WSUS uses them: compared case-insensitively, printed lower-case.

use std::fmt;
use std::str::FromStr;

/// A 128-bit identifier (UpdateID, group id, client id...).
///
/// Real metadata mixes upper- and lower-case spellings of the same GUID; this type makes them
/// equal. Fragments echo the original spelling because they are derived from the raw document,
/// never from this type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid([u8; 16]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a GUID: {0:?} (expected 8-4-4-4-12 hex digits)")]
pub struct GuidError(pub String);

impl Guid {
    pub const NIL: Guid = Guid([0; 16]);

    pub const fn from_bytes(bytes: [u8; 16]) -> Guid {
        Guid(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses any case, with or without braces.
    pub fn parse(text: &str) -> Result<Guid, GuidError> {
        let err = || GuidError(text.chars().take(80).collect());
        let trimmed = text.trim();
        let inner = match trimmed.strip_prefix('{') {
            Some(rest) => rest.strip_suffix('}').ok_or_else(err)?,
            None => trimmed,
        };
        let bytes = inner.as_bytes();
        if bytes.len() != 36 {
            return Err(err());
        }
        let mut out = [0u8; 16];
        let mut nibbles = 0usize;
        for (i, &c) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(err());
                }
                continue;
            }
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(err()),
            };
            out[nibbles / 2] |= if nibbles % 2 == 0 { v << 4 } else { v };
            nibbles += 1;
        }
        Ok(Guid(out))
    }
}

impl Guid {
    /// The lower-case `8-4-4-4-12` form without allocating (hot in catalog writes).
    pub fn hyphenated(&self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut o = 0;
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                o += 1;
            }
            out[o] = HEX[(b >> 4) as usize];
            out[o + 1] = HEX[(b & 0x0f) as usize];
            o += 2;
        }
        out
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.hyphenated();
        f.write_str(std::str::from_utf8(&text).expect("hex digits and hyphens"))
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Guid {
    type Err = GuidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Guid::parse(s)
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Guid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Guid::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_and_lower_case_spellings_are_equal() {
        let a = Guid::parse("56309036-4C77-4DD9-951A-99EE9C246A94").unwrap();
        let b = Guid::parse("{56309036-4c77-4dd9-951a-99ee9c246a94}").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "56309036-4c77-4dd9-951a-99ee9c246a94");
    }

    #[test]
    fn malformed_guids_are_refused() {
        for bad in [
            "",
            "56309036-4C77-4DD9-951A-99EE9C246A9",
            "56309036x4C77-4DD9-951A-99EE9C246A94",
            "{56309036-4C77-4DD9-951A-99EE9C246A94",
        ] {
            assert!(Guid::parse(bad).is_err(), "{bad}");
        }
    }
}
