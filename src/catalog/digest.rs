//! File digests: SHA-1 (`Digest`, the content address) and SHA-256 (`AdditionalDigest`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a base64 {algorithm} digest: {text:?}")]
pub struct DigestError {
    pub algorithm: &'static str,
    pub text: String,
}

macro_rules! digest_type {
    ($name:ident, $len:expr, $alg:expr, $json:ident) => {
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            /// Parses standard base64 (as on the wire); embedded whitespace is tolerated.
            pub fn from_base64(text: &str) -> Result<Self, DigestError> {
                let err = || DigestError { algorithm: $alg, text: text.chars().take(80).collect() };
                let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                let bytes = BASE64.decode(compact.as_bytes()).map_err(|_| err())?;
                let arr: [u8; $len] = bytes.try_into().map_err(|_| err())?;
                Ok($name(arr))
            }

            pub fn from_hex(text: &str) -> Result<Self, DigestError> {
                let err = || DigestError { algorithm: $alg, text: text.chars().take(80).collect() };
                let bytes = hex::decode(text).map_err(|_| err())?;
                let arr: [u8; $len] = bytes.try_into().map_err(|_| err())?;
                Ok($name(arr))
            }

            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                bytes.try_into().ok().map($name)
            }

            pub fn to_base64(&self) -> String {
                BASE64.encode(self.0)
            }

            pub fn to_hex_upper(&self) -> String {
                hex::encode_upper(self.0)
            }

            pub fn to_hex_lower(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex_upper())
            }
        }

        /// JSON carries digests as hex (upper for SHA-1 as in content names, lower for SHA-256 as
        /// `sha256sum` prints it).
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.$json())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex_upper())
            }
        }
    };
}

digest_type!(Sha1Digest, 20, "SHA-1", to_hex_upper);
digest_type!(Sha256Digest, 32, "SHA-256", to_hex_lower);

impl Sha1Digest {
    /// The WSUS content folder: the last byte of the SHA-1 in upper-case hex.
    pub fn content_folder(&self) -> String {
        format!("{:02X}", self.0[19])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_folder_is_the_last_byte_in_upper_hex() {
        // The example of WSUS-PROTOCOL.md §3.8.
        let d = Sha1Digest::from_base64("h/W9BGlYUAaqXTp30cZi/SiV3c0=").unwrap();
        assert_eq!(d.to_hex_upper(), "87F5BD0469585006AA5D3A77D1C662FD2895DDCD");
        assert_eq!(d.content_folder(), "CD");
    }

    #[test]
    fn wrong_lengths_are_refused() {
        assert!(Sha1Digest::from_base64("AAAA").is_err());
        assert!(Sha256Digest::from_base64("h/W9BGlYUAaqXTp30cZi/SiV3c0=").is_err());
        assert!(Sha1Digest::from_base64("not base64!").is_err());
    }
}
