//! Identities of what administrators name: updates and computer groups. Each holds its canonical
//! text (a lower-case GUID), checked when it is made, so a malformed id cannot be stored,
//! compared or sent; it reads as the text it is (`Deref<Target = str>`).

use crate::catalog::Guid;
use std::fmt;

/// Text that is not the identity it was meant to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not {what}: {text:?} (expected {expected})")]
pub struct IdError {
    pub what: &'static str,
    pub text: String,
    pub expected: &'static str,
}

/// What every identity is besides its rule: its text, compared, hashed, shown and serialized as
/// that text, and deserialized through `parse`.
macro_rules! id_text {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<$name, IdError> {
                $name::parse(text)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// An identity that is a GUID, kept as its canonical lower-case text.
macro_rules! guid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Any GUID form (braces, upper case); kept in canonical lower case.
            pub fn parse(text: &str) -> Result<$name, IdError> {
                Guid::parse(text).map($name::from_guid).map_err(|_| IdError {
                    what: $what,
                    text: text.chars().take(80).collect(),
                    expected: "a GUID, 8-4-4-4-12 hex digits",
                })
            }

            pub fn from_guid(guid: Guid) -> $name {
                $name(guid.to_string())
            }

            pub fn guid(&self) -> Guid {
                Guid::parse(&self.0).expect("checked when it was made")
            }
        }

        id_text!($name);
    };
}

guid_id!(
    /// A computer group's id (`TargetGroupID`); the built-in groups have fixed ones.
    GroupId,
    "a group id"
);

guid_id!(
    /// An update's id (`UpdateID`), whatever its revision.
    UpdateId,
    "an update id"
);

/// A computer's id as its Windows Update Agent names itself (`SusClientId`, in practice a GUID,
/// but the protocol carries any text): 1 to 256 characters, none of them a control character.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ComputerId(String);

/// The most characters a client's id or name may have.
pub const MAX_NAME_CHARS: usize = 256;

impl ComputerId {
    pub fn parse(text: &str) -> Result<ComputerId, IdError> {
        let fits = !text.is_empty() && text.chars().count() <= MAX_NAME_CHARS;
        if fits && !text.chars().any(char::is_control) {
            return Ok(ComputerId(text.to_string()));
        }
        Err(IdError {
            what: "a computer id",
            text: text.chars().take(80).collect(),
            expected: "1 to 256 characters, no control characters",
        })
    }
}

id_text!(ComputerId);

impl ComputerId {
    /// The id with ASCII letters in lower case, as the store keeps ids (agents vary the case of
    /// one GUID).
    pub fn lowercased(&self) -> ComputerId {
        ComputerId(self.0.to_ascii_lowercase())
    }
}

impl GroupId {
    /// All Computers: every computer is in it.
    pub fn all_computers() -> GroupId {
        GroupId(crate::store::ALL_COMPUTERS.to_string())
    }

    /// Unassigned Computers: where computers wait that no administrator placed.
    pub fn unassigned_computers() -> GroupId {
        GroupId(crate::store::UNASSIGNED_COMPUTERS.to_string())
    }

    /// A new group's id.
    pub fn new_random() -> GroupId {
        GroupId::from_guid(crate::random::guid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_hold_only_canonical_guids() {
        let cases: [(&str, Option<&str>); 6] = [
            ("a0a08746-4dbe-4a37-9adf-9e7652c0b421", Some("a0a08746-4dbe-4a37-9adf-9e7652c0b421")),
            (
                "{A0A08746-4DBE-4A37-9ADF-9E7652C0B421}",
                Some("a0a08746-4dbe-4a37-9adf-9e7652c0b421"),
            ),
            ("a0a08746-4dbe-4a37-9adf-9e7652c0b42", None),
            ("../../etc/passwd", None),
            ("", None),
            ("a0a08746-4dbe-4a37-9adf-9e7652c0b421\0", None),
        ];
        for (text, expected) in cases {
            assert_eq!(GroupId::parse(text).ok().as_deref(), expected, "{text:?}");
            assert_eq!(UpdateId::parse(text).ok().map(String::from).as_deref(), expected);
        }
        let id: GroupId = serde_json::from_str("\"A0A08746-4DBE-4A37-9ADF-9E7652C0B421\"").unwrap();
        assert_eq!(id, GroupId::all_computers());
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            format!("\"{}\"", crate::store::ALL_COMPUTERS)
        );
        assert!(serde_json::from_str::<UpdateId>("\"nope\"").is_err());
        assert_eq!(id, crate::store::ALL_COMPUTERS);
        let long = "x".repeat(MAX_NAME_CHARS);
        for (text, ok) in [("pc01", true), ("", false), ("a\u{7}b", false), (long.as_str(), true)] {
            assert_eq!(ComputerId::parse(text).is_ok(), ok, "{text:?}");
        }
        assert!(ComputerId::parse(&format!("{long}x")).is_err());
    }
}
