//! The simulated machines: which products they have, how they evaluate the categories and
//! detectoids a server sends, which updates they need.
//!
//! A real agent runs each update's applicability rules. Here categories of products the machine
//! lacks evaluate as not installed (so that product's detectoids and updates never arrive, as on a
//! real machine), and detectoids and update applicability are a fixed coin flip per machine
//! profile: machines of one profile answer alike, as a fleet of one build does.

use crate::catalog::Guid;
use crate::synth::categories as cat;
use crate::wsus::agent::UpdateInfo;
use std::collections::HashSet;

pub struct Profile {
    pub index: usize,
    pub name: &'static str,
    pub os_description: &'static str,
    pub os_build: u32,
    lacking: HashSet<Guid>,
    seed: u64,
    /// Percent of detectoids (and of unapproved updates) that apply.
    applies: u64,
}

/// Products of the profiles, in the order clients take them.
const PROFILES: &[(&str, &str, u32, &[&str])] = &[
    ("Windows 11 desktop", "Windows 11 Enterprise 24H2", 26100, &[cat::WINDOWS_11]),
    (
        "Windows 11 desktop with Office",
        "Windows 11 Pro 24H2",
        26100,
        &[cat::WINDOWS_11, cat::OFFICE_365],
    ),
    ("Windows 10 desktop", "Windows 10 Enterprise 22H2", 19045, &[cat::WINDOWS_10_1903]),
    ("Windows Server 2022", "Windows Server 2022 Datacenter", 20348, &[cat::SERVER_2022]),
];

impl Profile {
    /// The first `n` profiles (at most the number defined).
    pub fn first(n: usize) -> Vec<Profile> {
        let products: Vec<Guid> =
            cat::PRODUCT_WEIGHTS.iter().map(|(id, _)| cat::guid(id)).collect();
        PROFILES
            .iter()
            .take(n.clamp(1, PROFILES.len()))
            .enumerate()
            .map(|(index, (name, os_description, os_build, has))| {
                let has: Vec<Guid> = has.iter().map(|id| cat::guid(id)).collect();
                Profile {
                    index,
                    name,
                    os_description,
                    os_build: *os_build,
                    lacking: products.iter().copied().filter(|p| !has.contains(p)).collect(),
                    seed: 0x9e37_79b9_7f4a_7c15 ^ index as u64,
                    applies: 50,
                }
            })
            .collect()
    }

    /// A machine every product, detectoid and update applies to (shows what a server offers).
    pub fn everything() -> Profile {
        Profile {
            index: PROFILES.len(),
            name: "machine to which every update applies",
            os_description: "Windows 11 Enterprise 24H2",
            os_build: 26100,
            lacking: HashSet::new(),
            seed: 0,
            applies: 100,
        }
    }

    pub fn count() -> usize {
        PROFILES.len()
    }

    fn coin(&self, id: &Guid, percent: u64) -> bool {
        let mut bytes = [0u8; 24];
        bytes[..16].copy_from_slice(id.as_bytes());
        bytes[16..].copy_from_slice(&self.seed.to_le_bytes());
        xxhash_rust::xxh3::xxh3_64(&bytes) % 100 < percent
    }

    /// Whether a non-leaf update (category or detectoid) evaluates as installed here.
    pub fn installed(&self, info: &UpdateInfo) -> bool {
        let Some(id) = info.update_id else { return false };
        match info.update_type.as_deref() {
            Some("Category") => !self.lacking.contains(&id),
            Some("Detectoid") => self.coin(&id, self.applies),
            // Software that other updates require (a servicing stack, say).
            _ => self.coin(&id, self.applies),
        }
    }

    /// Whether the machine needs a leaf update: everything approved for install, and a quarter
    /// of the rest (which it then reports as needed, as with PreDeploymentCheck on WSUS).
    pub fn needs(&self, update_id: &Guid, action: &str) -> bool {
        action == "Install" || self.coin(update_id, self.applies / 2)
    }
}
