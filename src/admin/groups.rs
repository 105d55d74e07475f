//! Groups, the computers in them and how computers get their groups (targeting), as every
//! front end asks for them. The tree's own invariants (no cycles, built-in groups stay) are
//! kept by the store's transactions (`store/groups.rs`).

use super::{AdminError, AdminResult, AdminService, Refusal};
use crate::store::{GroupRemoval, TargetGroup, Targeting, TargetingMode};

/// The most groups clients may create (`--max-client-groups`): far above any site's real
/// groups, and a bound on what unauthenticated clients can add.
pub const MOST_CLIENT_GROUPS: u32 = 1000;

/// A change of the targeting settings; what is not given stays.
#[derive(Debug, Clone, Default)]
pub struct TargetingChange<'a> {
    /// `client` or `server`.
    pub mode: Option<&'a str>,
    pub create_missing_groups: Option<bool>,
    pub max_client_groups: Option<u32>,
}

impl AdminService<'_> {
    pub fn create_group(&mut self, name: &str, parent: Option<&str>) -> AdminResult<TargetGroup> {
        Ok(self.store.create_group(name, parent)?)
    }

    pub fn move_group(&mut self, name_or_id: &str, new_parent: &str) -> AdminResult<TargetGroup> {
        Ok(self.store.move_group(name_or_id, new_parent)?)
    }

    pub fn remove_group(&mut self, name_or_id: &str) -> AdminResult<GroupRemoval> {
        Ok(self.store.remove_group(name_or_id)?)
    }

    /// The SusClientIds of computers named by DNS name or id: each name exactly one computer,
    /// or nothing changes.
    pub fn computer_ids(&self, names: &[String]) -> AdminResult<Vec<String>> {
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            match self.store.find_computers(name)?.as_slice() {
                [c] => ids.push(c.computer_id.clone()),
                [] => return Err(AdminError::NoSuchComputer { name: name.clone() }),
                many => {
                    let ids = many.iter().map(|c| c.computer_id.clone()).collect();
                    return Err(Refusal::AmbiguousComputer { name: name.clone(), ids }.into());
                }
            }
        }
        Ok(ids)
    }

    /// Places computers in a group (server-side targeting), also keeping their other groups
    /// when `keep`. Returns the group and how many computers moved.
    pub fn move_computers(
        &mut self,
        names: &[String],
        group: &str,
        keep: bool,
    ) -> AdminResult<(TargetGroup, usize)> {
        let ids = self.computer_ids(names)?;
        let group = self.store.assign_computers(&ids, group, keep)?;
        Ok((group, ids.len()))
    }

    /// Forgets computers; returns how many there were.
    pub fn remove_computers(&mut self, names: &[String]) -> AdminResult<usize> {
        let ids = self.computer_ids(names)?;
        Ok(self.store.remove_computers(&ids)?)
    }

    /// Client-side targeting with group creation on: groups are rows that any client can add by
    /// naming them, so their number has a ceiling far above a site's real groups.
    pub fn set_targeting(&mut self, change: &TargetingChange<'_>) -> AdminResult<Targeting> {
        let now = self.store.targeting()?;
        let mode = match change.mode {
            None => now.mode,
            Some(m) if m.eq_ignore_ascii_case("client") => TargetingMode::Client,
            Some(m) if m.eq_ignore_ascii_case("server") => TargetingMode::Server,
            Some(other) => {
                return Err(Refusal::NotATargetingMode { given: other.to_string() }.into());
            }
        };
        let max_client_groups = change.max_client_groups.unwrap_or(now.max_client_groups);
        if max_client_groups > MOST_CLIENT_GROUPS {
            let given = max_client_groups;
            return Err(Refusal::TooManyClientGroups { given, most: MOST_CLIENT_GROUPS }.into());
        }
        let targeting = Targeting {
            mode,
            create_missing_groups: change
                .create_missing_groups
                .unwrap_or(now.create_missing_groups),
            max_client_groups,
        };
        self.store.set_targeting(targeting)?;
        Ok(targeting)
    }
}
