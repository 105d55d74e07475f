//! Computer groups: names, the tree, targeting. (The SQL that reads and writes them is in
//! `sqlite/groups.rs`.)

use super::*;
use serde::Serialize;

/// How computers get their groups, as WSUS's "Computers" option says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetingMode {
    /// The group names a client sends (Group Policy "Enable client-side targeting") decide.
    Client,
    /// Administrators place computers (`ferry computers move`); what clients send is kept but
    /// not applied.
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Targeting {
    pub mode: TargetingMode,
    /// Client-side targeting: create a group a client names that does not exist (otherwise the
    /// computer waits in Unassigned Computers, as on WSUS).
    pub create_missing_groups: bool,
    /// How many groups clients may create that way, in all. Clients name groups without
    /// authenticating; beyond this a computer that names a new group waits in Unassigned
    /// Computers and the server logs it.
    pub max_client_groups: u32,
}

pub const DEFAULT_MAX_CLIENT_GROUPS: u32 = 25;

/// Group names one client may ask for (Group Policy's "target group name" lists a few).
pub const MAX_GROUPS_PER_CLIENT: usize = 16;

/// A computer group's name: 1 to 256 characters once trimmed, no control characters. Every
/// name that reaches the group table passes here, whether an administrator typed it, a bundle's
/// policy names it or a client asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct GroupName(String);

/// The rule for names people read (groups, rules): trimmed, 1 to 256 characters, none of them
/// control characters or the invisible ones that reorder or hide text (bidirectional overrides
/// and isolates, zero-width characters), so a name shows as what it is. `what` names the thing
/// in the refusal.
pub fn display_name<'a>(text: &'a str, what: &str) -> Result<&'a str, StoreError> {
    let name = text.trim();
    let invisible = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    };
    if name.is_empty() || name.chars().count() > GroupName::MAX_CHARS || name.chars().any(invisible)
    {
        let shown: String = name.chars().take(40).flat_map(char::escape_default).collect();
        return Err(StoreError::Refused(format!(
            "{what} \"{shown}\": a {what} has 1 to 256 printable characters"
        )));
    }
    Ok(name)
}

impl GroupName {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(text: &str) -> Result<GroupName, StoreError> {
        display_name(text, "group name").map(|n| GroupName(n.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GroupName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What removing a group did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupRemoval {
    pub group: String,
    /// Computers that were only in that group and now wait in Unassigned Computers.
    pub computers_unassigned: usize,
    pub approvals_removed: usize,
    /// Auto-approval rules that targeted it.
    pub rules_removed: usize,
}

/// A group with its place in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInTree {
    #[serde(flatten)]
    pub group: TargetGroup,
    /// `All Computers/Servers/Domain Controllers`.
    pub path: String,
    pub depth: usize,
}

const MODE_KEY: &str = "targeting.mode";
const CREATE_KEY: &str = "targeting.create_missing_groups";
const MAX_CLIENT_GROUPS_KEY: &str = "targeting.max_client_groups";

impl Targeting {
    /// The targeting settings from the store's settings (`get` reads one by key; a backend may
    /// read them inside a transaction); what is not set has WSUS's default.
    pub fn from_settings<E>(get: impl Fn(&str) -> Result<Option<String>, E>) -> Result<Self, E> {
        Ok(Targeting {
            mode: if get(MODE_KEY)?.as_deref() == Some("server") {
                TargetingMode::Server
            } else {
                TargetingMode::Client
            },
            create_missing_groups: get(CREATE_KEY)?.as_deref() != Some("false"),
            max_client_groups: get(MAX_CLIENT_GROUPS_KEY)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_MAX_CLIENT_GROUPS),
        })
    }
}

/// How computers get their groups, kept as settings: every backend has it through its
/// settings.
pub trait TargetingStorage {
    fn targeting(&self) -> StoreResult<Targeting>;

    fn set_targeting(&mut self, targeting: Targeting) -> StoreResult<()>;
}

impl<S: SettingStorage + ?Sized> TargetingStorage for S {
    fn targeting(&self) -> StoreResult<Targeting> {
        Targeting::from_settings(|key| self.setting(key))
    }

    fn set_targeting(&mut self, targeting: Targeting) -> StoreResult<()> {
        let mode = if targeting.mode == TargetingMode::Server { "server" } else { "client" };
        self.set_setting(MODE_KEY, mode)?;
        let create = if targeting.create_missing_groups { "true" } else { "false" };
        self.set_setting(CREATE_KEY, create)?;
        self.set_setting(MAX_CLIENT_GROUPS_KEY, &targeting.max_client_groups.to_string())
    }
}
