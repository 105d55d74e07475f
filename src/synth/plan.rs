//! Planning a synthetic catalog: which revision comes at which position, and how it relates to
//! the ones before it. Item `i` depends only on the seed and on items `< i`, never on how many
//! items are asked for, so a larger run extends a smaller one (the way an upstream grows).

use super::categories::{self as cat, PRODUCT_WEIGHTS, REAL_CATEGORIES};
use super::rng::Rng;
use crate::catalog::{Guid, UpdateIdentity};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The item that carries the 46 MB Core fragment (the largest one in a real Windows 11 sync):
/// the first standalone position at or after this index.
pub const GIANT_FROM_INDEX: u64 = 10_000;
pub const GIANT_CORE_BYTES: usize = 46_887_043;

const PURPOSE_PLAN: u64 = 1;
const PURPOSE_ID: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handler {
    Category,
    Detectoid,
    CommandLine,
    Cbs,
    OsInstaller,
    WindowsInstaller,
    Driver,
    /// A bundle parent: no files, no handler data.
    Bundle,
}

impl Handler {
    pub fn uri(self) -> Option<&'static str> {
        Some(match self {
            Handler::Category => "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category",
            Handler::CommandLine => "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CommandLineInstallation",
            Handler::Cbs => "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Cbs",
            Handler::OsInstaller => "http://schemas.microsoft.com/msus/2016/01/UpdateHandlers/OSInstaller",
            Handler::WindowsInstaller => "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsInstaller",
            Handler::Driver => "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsDriver",
            Handler::Detectoid | Handler::Bundle => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub enum Clause {
    /// A bare `<UpdateIdentity>`: one update that must be installed.
    One(Guid),
    /// `<AtLeastOne [IsCategory="true"]>`.
    AnyOf(Vec<Guid>, bool),
}

#[derive(Debug, Clone)]
pub struct PlannedFile {
    /// Seeds the payload bytes.
    pub content_key: u64,
    pub file_name: String,
    pub size: u64,
    pub patching_type: Option<&'static str>,
    pub preferred: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct Planned {
    pub index: u64,
    pub identity: UpdateIdentity,
    pub update_type: &'static str,
    pub handler: Handler,
    pub category_kind: Option<&'static str>,
    pub product: Option<&'static str>,
    pub classification: Option<&'static str>,
    pub title: String,
    pub description: String,
    pub kb: Option<u32>,
    pub msrc_severity: Option<&'static str>,
    /// Seconds since the Unix epoch.
    pub created: i64,
    pub explicitly_deployable: bool,
    pub expired: bool,
    pub prerequisites: Vec<Clause>,
    pub bundled: Vec<Vec<UpdateIdentity>>,
    pub superseded: Vec<Guid>,
    pub files: Vec<PlannedFile>,
    /// Bytes of applicability rules to aim for (the Core fragment's heavy tail).
    pub core_target: usize,
    pub rules_seed: u64,
}

#[derive(Debug)]
struct PendingBundle {
    children_left: u32,
    children: Vec<UpdateIdentity>,
    product: &'static str,
    classification: &'static str,
    child_handler: Handler,
    kb: u32,
}

pub struct Planner {
    seed: u64,
    payload_bytes: u64,
    next_index: u64,
    arch_detectoids: Vec<Guid>,
    product_detectoids: HashMap<&'static str, Vec<Guid>>,
    streams: HashMap<(&'static str, &'static str, Handler), Vec<Guid>>,
    pending: Option<PendingBundle>,
    /// Top-level software updates that may get a newer revision later.
    bumpable: Vec<Planned>,
    subcategories: u32,
    giant_done: bool,
}

const ARCH_DETECTOIDS: [&str; 4] = ["x64-based systems", "x86-based systems", "ARM64-based systems", "Windows 10 and later"];
const SUBCATEGORY_NAMES: [&str; 6] =
    ["Dynamic Update", "GDR-DU", "Language Packs", "Feature On Demand", "Security-only Update", "Servicing Stack"];
const MAX_SUBCATEGORIES: u32 = 120;
const BASE_TIME: i64 = 1_704_067_200; // 2024-01-01T00:00:00Z

impl Planner {
    pub fn new(seed: u64, payload_bytes: u64) -> Planner {
        Planner {
            seed,
            payload_bytes: payload_bytes.max(1),
            next_index: 0,
            arch_detectoids: Vec::new(),
            product_detectoids: HashMap::new(),
            streams: HashMap::new(),
            pending: None,
            bumpable: Vec::new(),
            subcategories: 0,
            giant_done: false,
        }
    }

    /// A GUID that depends only on the seed and what it names.
    fn guid(&self, what: &str, index: u64) -> Guid {
        let mut h = Sha256::new();
        h.update(self.seed.to_le_bytes());
        h.update(PURPOSE_ID.to_le_bytes());
        h.update(what.as_bytes());
        h.update(index.to_le_bytes());
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Guid::from_bytes(b)
    }

    fn base(&self, index: u64, update_id: Guid, update_type: &'static str, handler: Handler) -> Planned {
        Planned {
            index,
            identity: UpdateIdentity { update_id, revision_number: if update_type == "Category" { 100 } else { 200 } },
            update_type,
            handler,
            category_kind: None,
            product: None,
            classification: None,
            title: String::new(),
            description: String::new(),
            kb: None,
            msrc_severity: None,
            created: BASE_TIME + index as i64 * 37 * 60 + (index as i64 * 7919) % 60,
            explicitly_deployable: false,
            expired: false,
            prerequisites: Vec::new(),
            bundled: Vec::new(),
            superseded: Vec::new(),
            files: Vec::new(),
            core_target: 0,
            rules_seed: self.seed ^ index.wrapping_mul(0x2545_F491_4F6C_DD1D),
        }
    }

    /// Plans the next item.
    pub fn next_item(&mut self) -> Planned {
        let index = self.next_index;
        self.next_index += 1;
        let mut rng = Rng::new(self.seed, PURPOSE_PLAN, index);
        let real = REAL_CATEGORIES.len() as u64;
        if index < real {
            return self.real_category(index);
        }
        if index < real + ARCH_DETECTOIDS.len() as u64 {
            return self.arch_detectoid(index, (index - real) as usize);
        }
        if self.pending.is_some() {
            return self.bundle_step(index, &mut rng);
        }
        if index >= GIANT_FROM_INDEX && !self.giant_done {
            self.giant_done = true;
            let mut p = self.standalone(index, &mut rng, Some(Handler::Cbs));
            p.core_target = GIANT_CORE_BYTES;
            p.title = format!("{} (servicing manifest of every component)", p.title);
            return p;
        }
        let can_bump = self.bumpable.len() > 20;
        let can_sub = self.subcategories < MAX_SUBCATEGORIES;
        let weights = [110, 7, 29, if can_bump { 2 } else { 0 }, if can_sub { 1 } else { 0 }, 1];
        match rng.weighted(&weights) {
            0 => self.detectoid(index, &mut rng),
            1 => self.standalone(index, &mut rng, None),
            2 => self.start_bundle(index, &mut rng),
            3 => self.bump(index, &mut rng),
            4 => self.subcategory(index, &mut rng),
            _ => self.driver(index, &mut rng),
        }
    }

    fn real_category(&mut self, index: u64) -> Planned {
        let c = &REAL_CATEGORIES[index as usize];
        let mut p = self.base(index, cat::guid(c.id), "Category", Handler::Category);
        p.created = BASE_TIME - 86_400 * 365 * 5 + index as i64 * 86_400;
        p.category_kind = Some(c.kind);
        p.title = c.title.to_string();
        p.description = c.title.to_string();
        if let Some(parent) = c.parent {
            p.prerequisites.push(Clause::AnyOf(vec![cat::guid(parent)], true));
        }
        p
    }

    fn arch_detectoid(&mut self, index: u64, which: usize) -> Planned {
        let id = self.guid("arch-detectoid", which as u64);
        let mut p = self.base(index, id, "Detectoid", Handler::Detectoid);
        p.title = format!("Windows {} (detectoid)", ARCH_DETECTOIDS[which]);
        p.description = p.title.clone();
        self.arch_detectoids.push(id);
        p
    }

    fn pick_product(rng: &mut Rng) -> &'static str {
        let weights: Vec<u32> = PRODUCT_WEIGHTS.iter().map(|(_, w)| *w).collect();
        PRODUCT_WEIGHTS[rng.weighted(&weights)].0
    }

    fn pick_classification(rng: &mut Rng, product: &str, handler: Handler) -> &'static str {
        use cat::*;
        if handler == Handler::OsInstaller {
            return if rng.chance(0.5) { UPGRADES } else { SECURITY };
        }
        let table: &[(&'static str, u32)] = match product {
            DEFENDER => &[(DEFINITIONS, 90), (SECURITY, 5), (UPDATES, 5)],
            OFFICE_2016 | OFFICE_365 => &[(SECURITY, 55), (UPDATES, 30), (CRITICAL, 15)],
            _ => &[(SECURITY, 45), (UPDATES, 20), (CRITICAL, 10), (ROLLUPS, 8), (FEATURE_PACKS, 4), (TOOLS, 3), (SERVICE_PACKS, 1)],
        };
        let weights: Vec<u32> = table.iter().map(|(_, w)| *w).collect();
        table[rng.weighted(&weights)].0
    }

    fn detectoid(&mut self, index: u64, rng: &mut Rng) -> Planned {
        let product = Self::pick_product(rng);
        let mut p = self.base(index, self.guid("detectoid", index), "Detectoid", Handler::Detectoid);
        p.product = Some(product);
        p.title = format!("{} applicability check {}", cat::category(product).title, index);
        p.description = p.title.clone();
        // Product → detectoid: the detectoid is evaluated only on machines with the product.
        p.prerequisites.push(Clause::AnyOf(vec![cat::guid(product)], true));
        if rng.chance(0.5) {
            p.prerequisites.push(Clause::One(*rng.pick(&self.arch_detectoids)));
        }
        self.product_detectoids.entry(product).or_default().push(p.identity.update_id);
        p
    }

    fn software_prerequisites(
        &self,
        rng: &mut Rng,
        product: &'static str,
        classification: Option<&'static str>,
        plain: bool,
    ) -> Vec<Clause> {
        let mut clauses = vec![Clause::One(*rng.pick(&self.arch_detectoids))];
        if let Some(list) = self.product_detectoids.get(product)
            && !list.is_empty()
        {
            // Recent detectoids of the product, so chains product → detectoid → update form.
            let recent = &list[list.len().saturating_sub(40)..];
            clauses.push(Clause::One(*rng.pick(recent)));
        }
        if let Some(class) = classification {
            clauses.push(Clause::AnyOf(vec![cat::guid(class)], !plain));
        }
        clauses.push(Clause::AnyOf(vec![cat::guid(product)], !plain));
        clauses
    }

    fn handler_for(rng: &mut Rng, product: &str, bundle_child: bool) -> Handler {
        match product {
            cat::DEFENDER => Handler::CommandLine,
            cat::OFFICE_2016 | cat::OFFICE_365 => Handler::WindowsInstaller,
            _ if bundle_child => [Handler::OsInstaller, Handler::Cbs, Handler::CommandLine][rng.weighted(&[45, 20, 35])],
            _ => [Handler::Cbs, Handler::CommandLine][rng.weighted(&[40, 60])],
        }
    }

    /// Size to aim for in the applicability rules: the heavy tail of real Core fragments
    /// (CBS manifests: median 167 KB, a quarter over 1 MB) and small ones for the rest.
    fn core_target(rng: &mut Rng, handler: Handler) -> usize {
        let lognormal =
            |rng: &mut Rng, median: f64, sigma: f64, lo: f64, hi: f64| (median * (sigma * rng.normal()).exp()).clamp(lo, hi) as usize;
        match handler {
            Handler::Cbs => lognormal(rng, 167_000.0, 1.2, 50_000.0, 4_000_000.0),
            Handler::CommandLine => lognormal(rng, 4_000.0, 0.6, 800.0, 20_000.0),
            Handler::WindowsInstaller => lognormal(rng, 2_500.0, 0.5, 600.0, 12_000.0),
            Handler::Bundle => lognormal(rng, 1_500.0, 0.8, 200.0, 14_000.0),
            _ => 0,
        }
    }

    fn files_for(&self, rng: &mut Rng, index: u64, handler: Handler, kb: u32, arch: &str) -> Vec<PlannedFile> {
        let size = |rng: &mut Rng, scale: f64| ((self.payload_bytes as f64 * scale * (0.5 + rng.unit())) as u64).max(1);
        let mut key = 0u64;
        let mut file = |rng: &mut Rng, name: String, scale: f64, patching: Option<&'static str>, preferred: Option<&'static str>| {
            key += 1;
            PlannedFile { content_key: index << 8 | key, file_name: name, size: size(rng, scale), patching_type: patching, preferred }
        };
        match handler {
            Handler::Cbs => vec![file(rng, format!("Windows11.0-KB{kb}-{arch}.cab"), 1.0, Some("SelfContained"), None)],
            Handler::CommandLine => {
                let name = if rng.chance(0.5) { "AM_Delta.exe".into() } else { format!("windows-kb{kb}-{arch}.exe") };
                vec![file(rng, name, 1.0, None, None)]
            }
            Handler::WindowsInstaller => vec![file(rng, format!("office2016-kb{kb}-fullfile-{arch}-glb.cab"), 1.0, None, None)],
            Handler::Driver => vec![file(rng, format!("driver-{index}-{arch}.cab"), 0.5, None, None)],
            Handler::OsInstaller => {
                let hex = format!("{:040X}", rng.next_u64() as u128 * 0x1_0000_0001);
                let mut v = vec![
                    file(rng, format!("{hex}_Wsus.AggregatedMetadata.cab"), 0.2, None, Some("Metadata")),
                    file(rng, "DesktopDeployment.cab".into(), 0.3, None, Some("ServicingStack")),
                    file(rng, format!("SSU-{}-{arch}.cab", 22000 + index % 5000), 0.5, Some("SelfContained"), None),
                    file(rng, format!("Windows11.0-KB{kb}-{arch}.psf"), 2.0, Some("SelfContained"), None),
                ];
                if rng.chance(0.6) {
                    v.push(file(rng, format!("{hex}_LanguagePackClient.wim"), 3.0, Some("SelfContained"), None));
                }
                if rng.chance(0.4) {
                    v.push(file(rng, format!("Windows11.0-KB{kb}-{arch}.msu"), 1.0, Some("SelfContained"), None));
                }
                v
            }
            Handler::Category | Handler::Detectoid | Handler::Bundle => Vec::new(),
        }
    }

    fn title(product: &str, classification: &str, handler: Handler, kb: u32, created: i64, arch: &str) -> String {
        let month = chrono::DateTime::from_timestamp(created, 0).map(|d| d.format("%Y-%m").to_string()).unwrap_or_default();
        let p = cat::category(product).title;
        match (handler, classification) {
            (_, cat::DEFINITIONS) => format!(
                "Security Intelligence Update for Microsoft Defender Antivirus - KB{kb} (Version 1.{}.{}.0)",
                400 + kb % 100,
                kb % 1000
            ),
            (Handler::OsInstaller, cat::UPGRADES) => format!("{p}, version 24H2 {arch} {month} (feature update, KB{kb})"),
            (Handler::WindowsInstaller, _) => format!("{month} Security Update for Microsoft {p} (KB{kb}) 64-Bit Edition"),
            (_, cat::SECURITY) => format!("{month} Cumulative Update for {p} for {arch}-based Systems (KB{kb})"),
            (_, c) => format!("{month} {} for {p} for {arch}-based Systems (KB{kb})", cat::category(c).title.trim_end_matches('s')),
        }
    }

    fn severity(rng: &mut Rng, classification: &str) -> Option<&'static str> {
        (classification == cat::SECURITY).then(|| *rng.pick(&["Critical", "Important", "Important", "Moderate", "Low"]))
    }

    fn standalone(&mut self, index: u64, rng: &mut Rng, force: Option<Handler>) -> Planned {
        let product = if force == Some(Handler::Cbs) { cat::WINDOWS_11 } else { Self::pick_product(rng) };
        let handler = force.unwrap_or_else(|| Self::handler_for(rng, product, false));
        let classification = Self::pick_classification(rng, product, handler);
        let kb = 5_000_000 + index as u32;
        let arch = *rng.pick(&["x64", "x64", "arm64", "x86"]);
        let mut p = self.base(index, self.guid("update", index), "Software", handler);
        p.product = Some(product);
        p.classification = Some(classification);
        p.kb = Some(kb);
        p.title = Self::title(product, classification, handler, kb, p.created, arch);
        p.description = format!(
            "Install this update to resolve issues in {}. For a complete listing of the issues that are included in this update, see the associated Microsoft Knowledge Base article.",
            cat::category(product).title
        );
        p.msrc_severity = Self::severity(rng, classification);
        p.explicitly_deployable = true;
        p.prerequisites = self.software_prerequisites(rng, product, Some(classification), false);
        p.superseded = self.supersede(rng, product, classification, handler, p.identity.update_id);
        p.files = self.files_for(rng, index, handler, kb, arch);
        p.core_target = Self::core_target(rng, handler);
        self.bumpable.push(p.clone());
        p
    }

    /// Newer updates of a stream supersede the ones before them (real density: 6 in 10 software updates
    /// supersede something, 26 updates on average; here nearly every top-level update does).
    fn supersede(&mut self, rng: &mut Rng, product: &'static str, classification: &'static str, handler: Handler, id: Guid) -> Vec<Guid> {
        let stream = self.streams.entry((product, classification, handler)).or_default();
        let superseded = if rng.chance(0.9) && !stream.is_empty() {
            let n = rng.range(10, 45).min(stream.len() as u64) as usize;
            stream[stream.len() - n..].to_vec()
        } else {
            Vec::new()
        };
        stream.push(id);
        superseded
    }

    fn start_bundle(&mut self, index: u64, rng: &mut Rng) -> Planned {
        let product = Self::pick_product(rng);
        let child_handler = Self::handler_for(rng, product, true);
        let classification = Self::pick_classification(rng, product, child_handler);
        self.pending = Some(PendingBundle {
            // Real bundles mostly carry one child (561 children for 525 bundles).
            children_left: 1 + rng.weighted(&[80, 15, 5]) as u32,
            children: Vec::new(),
            product,
            classification,
            child_handler,
            kb: 5_000_000 + index as u32,
        });
        self.bundle_step(index, rng)
    }

    /// Children come first (a bundle names exact revisions of updates that already exist).
    fn bundle_step(&mut self, index: u64, rng: &mut Rng) -> Planned {
        let pending = self.pending.as_mut().expect("called with a bundle in progress");
        let (product, classification, handler, kb) = (pending.product, pending.classification, pending.child_handler, pending.kb);
        if pending.children_left > 0 {
            pending.children_left -= 1;
            let arch = ["x64", "arm64", "x86", "x64"][pending.children.len() % 4];
            let mut p = self.base(index, self.guid("bundle-child", index), "Software", handler);
            p.product = Some(product);
            p.classification = Some(classification);
            p.title = format!("HIDDEN: {}", Self::title(product, classification, handler, kb, p.created, arch));
            p.description = p.title.clone();
            p.prerequisites = self.software_prerequisites(rng, product, None, true);
            p.prerequisites.retain(|c| matches!(c, Clause::One(_)));
            p.files = self.files_for(rng, index, handler, kb, arch);
            p.core_target = Self::core_target(rng, handler);
            self.pending.as_mut().expect("still pending").children.push(p.identity);
            return p;
        }
        let pending = self.pending.take().expect("still pending");
        let mut p = self.base(index, self.guid("bundle", index), "Software", Handler::Bundle);
        p.product = Some(product);
        p.classification = Some(classification);
        p.kb = Some(kb);
        p.title = Self::title(product, classification, handler, kb, p.created, "x64");
        p.description = format!("Install this update to resolve issues in {}.", cat::category(product).title);
        p.msrc_severity = Self::severity(rng, classification);
        p.explicitly_deployable = true;
        p.prerequisites = self.software_prerequisites(rng, product, Some(classification), false);
        // One AtLeastOne per architecture group, as real bundles do.
        p.bundled = pending.children.chunks(2).map(|c| c.to_vec()).collect();
        p.superseded = self.supersede(rng, product, classification, Handler::Bundle, p.identity.update_id);
        p.core_target = Self::core_target(rng, Handler::Bundle);
        self.bumpable.push(p.clone());
        p
    }

    /// A newer revision of an update published earlier (metadata changes, or expiry).
    fn bump(&mut self, index: u64, rng: &mut Rng) -> Planned {
        let at = rng.below(self.bumpable.len() as u64) as usize;
        let previous = &mut self.bumpable[at];
        if previous.expired {
            return self.detectoid(index, rng);
        }
        let mut p = previous.clone();
        p.index = index;
        p.identity.revision_number += 1;
        p.created = BASE_TIME + index as i64 * 37 * 60;
        p.expired = rng.chance(0.3);
        p.description = format!("{} Revised: metadata was updated.", p.description);
        *previous = p.clone();
        p
    }

    fn subcategory(&mut self, index: u64, rng: &mut Rng) -> Planned {
        self.subcategories += 1;
        let product = Self::pick_product(rng);
        let mut p = self.base(index, self.guid("subcategory", index), "Category", Handler::Category);
        p.category_kind = Some("Product");
        p.title = format!("{} {} {}", cat::category(product).title, SUBCATEGORY_NAMES[(index % 6) as usize], self.subcategories);
        p.description = p.title.clone();
        p.prerequisites.push(Clause::AnyOf(vec![cat::guid(cat::category(product).parent.unwrap_or(cat::WINDOWS))], true));
        p
    }

    fn driver(&mut self, index: u64, rng: &mut Rng) -> Planned {
        let product = *rng.pick(&[cat::WINDOWS_11, cat::WINDOWS_10_1903]);
        let mut p = self.base(index, self.guid("driver", index), "Driver", Handler::Driver);
        p.product = Some(product);
        p.classification = Some(cat::DRIVERS);
        p.title = format!("Contoso Ltd. - System - {}.{}.{}.0", 10 + index % 20, index % 1000, index % 97);
        p.description = p.title.clone();
        p.explicitly_deployable = true;
        p.prerequisites = vec![Clause::AnyOf(vec![cat::guid(cat::DRIVERS)], true), Clause::AnyOf(vec![cat::guid(product)], true)];
        p.files = self.files_for(rng, index, Handler::Driver, 0, "x64");
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_do_not_depend_on_how_many_items_are_asked_for() {
        let mut a = Planner::new(42, 1000);
        let mut b = Planner::new(42, 1000);
        let first: Vec<_> = (0..300).map(|_| a.next_item().identity).collect();
        let again: Vec<_> = (0..300).map(|_| b.next_item().identity).collect();
        assert_eq!(first, again);
        assert_ne!(Planner::new(43, 1000).next_item().title, String::new());
    }

    #[test]
    fn bundles_name_children_that_come_before_them() {
        let mut p = Planner::new(7, 100);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let item = p.next_item();
            for member in item.bundled.iter().flatten() {
                assert!(seen.contains(member), "bundle member {member} planned after its bundle");
            }
            seen.insert(item.identity);
        }
    }
}
