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

/// Express files of a cumulative update, against the typical payload size (the full `.cab` is
/// about 1): a `.psf` several times the full file (users report 6 GB of express files against
/// 1 GB of full update), and a delta-manifest `.cab` under a hundredth of it. The real Windows 11
/// sync in `conformance/cbs/` declares every file `SelfContained` (UUP carries its `.psf` files
/// that way); `PatchingType="Express"` follows WSUS-PROTOCOL.md §3.8 and the WSUS option; the
/// names and proportions follow the real UUP `.psf` / `-express.cab` pair.
pub const EXPRESS_PSF_SCALE: f64 = 4.0;
pub const EXPRESS_CAB_SCALE: f64 = 0.006;

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
            Handler::Category => {
                "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category"
            }
            Handler::CommandLine => {
                "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CommandLineInstallation"
            }
            Handler::Cbs => "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Cbs",
            Handler::OsInstaller => {
                "http://schemas.microsoft.com/msus/2016/01/UpdateHandlers/OSInstaller"
            }
            Handler::WindowsInstaller => {
                "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsInstaller"
            }
            Handler::Driver => {
                "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsDriver"
            }
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

/// What shapes an update's files beyond its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant<'a> {
    Plain,
    /// An OS cumulative update: express files beside the full one.
    Cumulative,
    /// A language child: files of this culture (`de-de`).
    Culture(&'a str),
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
    /// `Properties/Language`: a WSUS short language (`de`, `pt-br`) for language-specific
    /// updates (Office language children, language packs), `all` for UUP updates, none for
    /// the other language-neutral ones.
    pub language: Option<&'static str>,
    /// LocalizedProperties in every language the catalog is generated with; otherwise only the
    /// default language (`en`), as detectoids and drivers have them. UUP updates have one
    /// LocalizedProperties in the neutral language `all` either way.
    pub translated: bool,
    /// Bytes of applicability rules to aim for (the Core fragment's heavy tail).
    pub core_target: usize,
    pub rules_seed: u64,
}

#[derive(Debug)]
struct PendingBundle {
    /// Languages of the children still to plan, last first (`None`: a language-neutral child).
    children_left: Vec<Option<&'static str>>,
    /// Office bundles: a language-neutral child and one child per language.
    by_language: bool,
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
    /// Language packs of a series still to plan (language, product, architecture), last first.
    pending_language_packs: Vec<(&'static str, &'static str, &'static str)>,
    /// Top-level software updates that may get a newer revision later.
    bumpable: Vec<Planned>,
    subcategories: u32,
    giant_done: bool,
}

const ARCH_DETECTOIDS: [&str; 4] =
    ["x64-based systems", "x86-based systems", "ARM64-based systems", "Windows 10 and later"];
const SUBCATEGORY_NAMES: [&str; 6] = [
    "Dynamic Update",
    "GDR-DU",
    "Language Packs",
    "Feature On Demand",
    "Security-only Update",
    "Servicing Stack",
];
const MAX_SUBCATEGORIES: u32 = 120;

/// Languages of language-specific updates, as WSUS short languages (`ShortLanguage` in
/// GetConfigData), with the culture their file names use. The upstream publishes them whatever
/// languages a downstream asks for.
pub const UPDATE_LANGUAGES: [(&str, &str); 7] = [
    ("en", "en-us"),
    ("de", "de-de"),
    ("fr", "fr-fr"),
    ("ja", "ja-jp"),
    ("es", "es-es"),
    ("pt-br", "pt-br"),
    ("zh-cn", "zh-cn"),
];

fn culture(language: &str) -> &'static str {
    UPDATE_LANGUAGES.iter().find(|(l, _)| *l == language).map(|(_, c)| *c).unwrap_or("en-us")
}

/// A few languages of the pool, in pool order: English always, then each other one by chance.
fn pick_languages(rng: &mut Rng, at_least: usize) -> Vec<&'static str> {
    loop {
        let picked: Vec<&'static str> = UPDATE_LANGUAGES
            .iter()
            .enumerate()
            .filter(|(i, _)| *i == 0 || rng.chance(0.6))
            .map(|(_, (l, _))| *l)
            .collect();
        if picked.len() >= at_least {
            return picked;
        }
    }
}
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
            pending_language_packs: Vec::new(),
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

    fn base(
        &self,
        index: u64,
        update_id: Guid,
        update_type: &'static str,
        handler: Handler,
    ) -> Planned {
        Planned {
            index,
            identity: UpdateIdentity {
                update_id,
                revision_number: if update_type == "Category" { 100 } else { 200 },
            },
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
            language: None,
            translated: !matches!(update_type, "Detectoid" | "Driver"),
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
        if let Some((language, product, arch)) = self.pending_language_packs.pop() {
            return self.language_pack(index, &mut rng, language, product, arch);
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
        let weights = [110, 7, 29, if can_bump { 2 } else { 0 }, if can_sub { 1 } else { 0 }, 1, 1];
        match rng.weighted(&weights) {
            0 => self.detectoid(index, &mut rng),
            1 => self.standalone(index, &mut rng, None),
            2 => self.start_bundle(index, &mut rng),
            3 => self.bump(index, &mut rng),
            4 => self.subcategory(index, &mut rng),
            5 => self.driver(index, &mut rng),
            _ => self.start_language_packs(index, &mut rng),
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
            _ => &[
                (SECURITY, 45),
                (UPDATES, 20),
                (CRITICAL, 10),
                (ROLLUPS, 8),
                (FEATURE_PACKS, 4),
                (TOOLS, 3),
                (SERVICE_PACKS, 1),
            ],
        };
        let weights: Vec<u32> = table.iter().map(|(_, w)| *w).collect();
        table[rng.weighted(&weights)].0
    }

    fn detectoid(&mut self, index: u64, rng: &mut Rng) -> Planned {
        let product = Self::pick_product(rng);
        let mut p =
            self.base(index, self.guid("detectoid", index), "Detectoid", Handler::Detectoid);
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
            _ if bundle_child => [Handler::OsInstaller, Handler::Cbs, Handler::CommandLine]
                [rng.weighted(&[45, 20, 35])],
            _ => [Handler::Cbs, Handler::CommandLine][rng.weighted(&[40, 60])],
        }
    }

    /// Size to aim for in the applicability rules: the heavy tail of real Core fragments
    /// (CBS manifests: median 167 KB, a quarter over 1 MB) and small ones for the rest.
    fn core_target(rng: &mut Rng, handler: Handler) -> usize {
        let lognormal = |rng: &mut Rng, median: f64, sigma: f64, lo: f64, hi: f64| {
            (median * (sigma * rng.normal()).exp()).clamp(lo, hi) as usize
        };
        match handler {
            Handler::Cbs => lognormal(rng, 167_000.0, 1.2, 50_000.0, 4_000_000.0),
            Handler::CommandLine => lognormal(rng, 4_000.0, 0.6, 800.0, 20_000.0),
            Handler::WindowsInstaller => lognormal(rng, 2_500.0, 0.5, 600.0, 12_000.0),
            Handler::Bundle => lognormal(rng, 1_500.0, 0.8, 200.0, 14_000.0),
            _ => 0,
        }
    }

    /// Payload files. An OS cumulative update's full `.cab` comes with express files
    /// (`PatchingType="Express"`): the `.psf` that clients take byte ranges of, several times the
    /// full file's size, and a small `-express.cab` of delta manifests (as the real SSU pair in
    /// the UUP sample: 23 MB `.psf`, 103 KB express `.cab` beside a 17 MB full `.cab`).
    fn files_for(
        &self,
        rng: &mut Rng,
        index: u64,
        handler: Handler,
        kb: u32,
        arch: &str,
        variant: Variant<'_>,
    ) -> Vec<PlannedFile> {
        let mut out = Payloads { index, payload_bytes: self.payload_bytes, files: Vec::new() };
        match handler {
            Handler::Cbs => {
                let name = format!("Windows11.0-KB{kb}-{arch}");
                out.add(rng, format!("{name}.cab"), 1.0, SELF_CONTAINED, None);
                if variant == Variant::Cumulative {
                    out.add(rng, format!("{name}.psf"), EXPRESS_PSF_SCALE, EXPRESS, None);
                    out.add(rng, format!("{name}-express.cab"), EXPRESS_CAB_SCALE, EXPRESS, None);
                }
            }
            Handler::CommandLine => {
                let name = if rng.chance(0.5) {
                    "AM_Delta.exe".into()
                } else {
                    format!("windows-kb{kb}-{arch}.exe")
                };
                out.add(rng, name, 1.0, None, None);
            }
            // Office names its language-neutral payloads `glb` and the others by culture.
            Handler::WindowsInstaller => {
                let (culture, scale) = match variant {
                    Variant::Culture(c) => (c, 0.4),
                    _ => ("glb", 1.0),
                };
                let name = format!("office2016-kb{kb}-fullfile-{arch}-{culture}.cab");
                out.add(rng, name, scale, None, None);
            }
            Handler::Driver => out.add(rng, format!("driver-{index}-{arch}.cab"), 0.5, None, None),
            Handler::OsInstaller => os_installer_files(&mut out, rng, kb, arch, index),
            Handler::Category | Handler::Detectoid | Handler::Bundle => {}
        }
        out.files
    }

    fn title(
        product: &str,
        classification: &str,
        handler: Handler,
        kb: u32,
        created: i64,
        arch: &str,
    ) -> String {
        let month = chrono::DateTime::from_timestamp(created, 0)
            .map(|d| d.format("%Y-%m").to_string())
            .unwrap_or_default();
        let p = cat::category(product).title;
        match (handler, classification) {
            (_, cat::DEFINITIONS) => format!(
                "Security Intelligence Update for Microsoft Defender Antivirus - KB{kb} (Version 1.{}.{}.0)",
                400 + kb % 100,
                kb % 1000
            ),
            (Handler::OsInstaller, cat::UPGRADES) => {
                format!("{p}, version 24H2 {arch} {month} (feature update, KB{kb})")
            }
            (Handler::WindowsInstaller, _) => {
                format!("{month} Security Update for Microsoft {p} (KB{kb}) 64-Bit Edition")
            }
            (_, cat::SECURITY) => {
                format!("{month} Cumulative Update for {p} for {arch}-based Systems (KB{kb})")
            }
            (_, c) => format!(
                "{month} {} for {p} for {arch}-based Systems (KB{kb})",
                cat::category(c).title.trim_end_matches('s')
            ),
        }
    }

    fn severity(rng: &mut Rng, classification: &str) -> Option<&'static str> {
        (classification == cat::SECURITY)
            .then(|| *rng.pick(&["Critical", "Important", "Important", "Moderate", "Low"]))
    }

    fn standalone(&mut self, index: u64, rng: &mut Rng, force: Option<Handler>) -> Planned {
        let product =
            if force == Some(Handler::Cbs) { cat::WINDOWS_11 } else { Self::pick_product(rng) };
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
        p.files = self.files_for(
            rng,
            index,
            handler,
            kb,
            arch,
            Self::variant(handler, classification, None),
        );
        p.core_target = Self::core_target(rng, handler);
        self.bumpable.push(p.clone());
        p
    }

    /// OS cumulative updates (CBS security updates and rollups) come with express files;
    /// language children have files of their culture.
    fn variant(handler: Handler, classification: &str, language: Option<&str>) -> Variant<'static> {
        match language {
            Some(l) => Variant::Culture(culture(l)),
            None if handler == Handler::Cbs
                && matches!(classification, cat::SECURITY | cat::ROLLUPS) =>
            {
                Variant::Cumulative
            }
            None => Variant::Plain,
        }
    }

    /// Newer updates of a stream supersede the ones before them (real density: 6 in 10 software updates
    /// supersede something, 26 updates on average; here nearly every top-level update does).
    fn supersede(
        &mut self,
        rng: &mut Rng,
        product: &'static str,
        classification: &'static str,
        handler: Handler,
        id: Guid,
    ) -> Vec<Guid> {
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
        // Office updates with language resources: a language-neutral child and one child per
        // language, each with its own files and `Properties/Language`.
        let by_language = child_handler == Handler::WindowsInstaller && rng.chance(0.5);
        let mut children_left: Vec<Option<&'static str>> = if by_language {
            std::iter::once(None).chain(pick_languages(rng, 3).into_iter().map(Some)).collect()
        } else {
            // Real bundles mostly carry one child (561 children for 525 bundles).
            vec![None; 1 + rng.weighted(&[80, 15, 5])]
        };
        children_left.reverse();
        self.pending = Some(PendingBundle {
            children_left,
            by_language,
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
        let (product, classification, handler, kb) =
            (pending.product, pending.classification, pending.child_handler, pending.kb);
        if let Some(language) = pending.children_left.pop() {
            // Language children of one update share its architecture.
            let arch = if pending.by_language {
                "x64"
            } else {
                ["x64", "arm64", "x86", "x64"][pending.children.len() % 4]
            };
            let mut p = self.base(index, self.guid("bundle-child", index), "Software", handler);
            p.product = Some(product);
            p.classification = Some(classification);
            p.title = format!(
                "HIDDEN: {}",
                Self::title(product, classification, handler, kb, p.created, arch)
            );
            if let Some(l) = language {
                p.title = format!("{} ({})", p.title, culture(l));
            }
            p.description = p.title.clone();
            p.language = if handler == Handler::OsInstaller { Some("all") } else { language };
            p.prerequisites = self.software_prerequisites(rng, product, None, true);
            p.prerequisites.retain(|c| matches!(c, Clause::One(_)));
            p.files = self.files_for(
                rng,
                index,
                handler,
                kb,
                arch,
                Self::variant(handler, classification, language),
            );
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
        p.description =
            format!("Install this update to resolve issues in {}.", cat::category(product).title);
        p.msrc_severity = Self::severity(rng, classification);
        p.explicitly_deployable = true;
        p.prerequisites = self.software_prerequisites(rng, product, Some(classification), false);
        p.bundled = if pending.by_language {
            // The language-neutral child, and the language children of which a machine takes
            // those of its Office languages.
            vec![pending.children[..1].to_vec(), pending.children[1..].to_vec()]
        } else {
            // One AtLeastOne per architecture group, as real bundles do.
            pending.children.chunks(2).map(|c| c.to_vec()).collect()
        };
        p.superseded =
            self.supersede(rng, product, classification, Handler::Bundle, p.identity.update_id);
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
        let mut p =
            self.base(index, self.guid("subcategory", index), "Category", Handler::Category);
        p.category_kind = Some("Product");
        p.title = format!(
            "{} {} {}",
            cat::category(product).title,
            SUBCATEGORY_NAMES[(index % 6) as usize],
            self.subcategories
        );
        p.description = p.title.clone();
        p.prerequisites.push(Clause::AnyOf(
            vec![cat::guid(cat::category(product).parent.unwrap_or(cat::WINDOWS))],
            true,
        ));
        p
    }

    fn driver(&mut self, index: u64, rng: &mut Rng) -> Planned {
        let product = *rng.pick(&[cat::WINDOWS_11, cat::WINDOWS_10_1903]);
        let mut p = self.base(index, self.guid("driver", index), "Driver", Handler::Driver);
        p.product = Some(product);
        p.classification = Some(cat::DRIVERS);
        p.title = format!(
            "Contoso Ltd. - System - {}.{}.{}.0",
            10 + index % 20,
            index % 1000,
            index % 97
        );
        p.description = p.title.clone();
        p.explicitly_deployable = true;
        p.prerequisites = vec![
            Clause::AnyOf(vec![cat::guid(cat::DRIVERS)], true),
            Clause::AnyOf(vec![cat::guid(product)], true),
        ];
        p.files = self.files_for(rng, index, Handler::Driver, 0, "x64", Variant::Plain);
        p
    }

    /// A series of language packs, one standalone update per language, as Windows publishes
    /// them (`Properties/Language` names the language, the files its culture).
    fn start_language_packs(&mut self, index: u64, rng: &mut Rng) -> Planned {
        let product =
            *rng.pick(&[cat::WINDOWS_11, cat::WINDOWS_11, cat::WINDOWS_10_1903, cat::SERVER_2025]);
        let arch = *rng.pick(&["x64", "x64", "arm64"]);
        let languages = pick_languages(rng, 2);
        self.pending_language_packs = languages.iter().rev().map(|l| (*l, product, arch)).collect();
        let (language, product, arch) =
            self.pending_language_packs.pop().expect("at least two languages");
        self.language_pack(index, rng, language, product, arch)
    }

    fn language_pack(
        &mut self,
        index: u64,
        rng: &mut Rng,
        language: &'static str,
        product: &'static str,
        arch: &'static str,
    ) -> Planned {
        let culture = culture(language);
        let mut p = self.base(index, self.guid("language-pack", index), "Software", Handler::Cbs);
        p.product = Some(product);
        p.classification = Some(cat::UPDATES);
        p.language = Some(language);
        p.title = format!(
            "{} Language Pack {culture} for {arch}-based Systems",
            cat::category(product).title
        );
        p.description = format!(
            "Install this language pack to show {} in {culture}. After it is installed, the language can be chosen in Settings.",
            cat::category(product).title
        );
        p.explicitly_deployable = true;
        p.prerequisites = self.software_prerequisites(rng, product, Some(cat::UPDATES), false);
        let package_arch = if arch == "x64" { "amd64" } else { arch };
        let mut out = Payloads { index, payload_bytes: self.payload_bytes, files: Vec::new() };
        let name = format!("Microsoft-Windows-Client-Language-Pack_{arch}_{culture}.cab");
        out.add(rng, name, 0.8, SELF_CONTAINED, None);
        let name = format!(
            "Microsoft-Windows-LanguageFeatures-Basic-{culture}-Package~31bf3856ad364e35~{package_arch}~~.cab"
        );
        out.add(rng, name, 0.2, SELF_CONTAINED, None);
        p.files = out.files;
        p.core_target = Self::core_target(rng, Handler::Cbs);
        self.bumpable.push(p.clone());
        p
    }
}

const SELF_CONTAINED: Option<&str> = Some("SelfContained");
const EXPRESS: Option<&str> = Some("Express");

/// An update's payload files as they are planned: numbered (`content_key`) in order and sized
/// around the planner's payload size.
struct Payloads {
    index: u64,
    payload_bytes: u64,
    files: Vec<PlannedFile>,
}

impl Payloads {
    fn add(
        &mut self,
        rng: &mut Rng,
        file_name: String,
        scale: f64,
        patching_type: Option<&'static str>,
        preferred: Option<&'static str>,
    ) {
        let size = ((self.payload_bytes as f64 * scale * (0.5 + rng.unit())) as u64).max(1);
        let key = self.files.len() as u64 + 1;
        self.files.push(PlannedFile {
            content_key: self.index << 8 | key,
            file_name,
            size,
            patching_type,
            preferred,
        });
    }
}

/// A feature update's files: metadata, the servicing stack, the `.psf`, and sometimes a
/// language pack image and an `.msu`.
fn os_installer_files(out: &mut Payloads, rng: &mut Rng, kb: u32, arch: &str, index: u64) {
    let hex = format!("{:040X}", rng.next_u64() as u128 * 0x1_0000_0001);
    out.add(rng, format!("{hex}_Wsus.AggregatedMetadata.cab"), 0.2, None, Some("Metadata"));
    out.add(rng, "DesktopDeployment.cab".into(), 0.3, None, Some("ServicingStack"));
    let ssu = format!("SSU-{}-{arch}.cab", 22000 + index % 5000);
    out.add(rng, ssu, 0.5, SELF_CONTAINED, None);
    out.add(rng, format!("Windows11.0-KB{kb}-{arch}.psf"), 2.0, SELF_CONTAINED, None);
    if rng.chance(0.6) {
        out.add(rng, format!("{hex}_LanguagePackClient.wim"), 3.0, SELF_CONTAINED, None);
    }
    if rng.chance(0.4) {
        out.add(rng, format!("Windows11.0-KB{kb}-{arch}.msu"), 1.0, SELF_CONTAINED, None);
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
    fn language_specific_updates_come_in_several_languages_beside_neutral_ones() {
        let mut planner = Planner::new(3, 1024);
        let items: Vec<Planned> = (0..4000).map(|_| planner.next_item()).collect();
        let by_id: HashMap<UpdateIdentity, &Planned> =
            items.iter().map(|p| (p.identity, p)).collect();
        // Office bundles: a neutral child (`glb` files, no Language) and language children.
        let mut office_languages = std::collections::BTreeSet::new();
        let mut office_bundles = 0;
        for bundle in items.iter().filter(|p| p.handler == Handler::Bundle) {
            let members: Vec<&Planned> =
                bundle.bundled.iter().flatten().map(|m| by_id[m]).collect();
            if !members
                .iter()
                .any(|m| m.language.is_some() && m.handler == Handler::WindowsInstaller)
            {
                continue;
            }
            office_bundles += 1;
            assert!(
                matches!(bundle.product, Some(cat::OFFICE_2016 | cat::OFFICE_365)),
                "{}",
                bundle.title
            );
            assert_eq!(bundle.language, None, "the bundle itself is language-neutral");
            let neutral: Vec<_> = members.iter().filter(|m| m.language.is_none()).collect();
            assert_eq!(neutral.len(), 1, "{}", bundle.title);
            assert!(neutral[0].files[0].file_name.ends_with("-glb.cab"));
            for m in members.iter().filter(|m| m.language.is_some()) {
                let language = m.language.unwrap();
                office_languages.insert(language);
                assert_eq!(m.files.len(), 1);
                assert!(
                    m.files[0].file_name.ends_with(&format!("-{}.cab", culture(language))),
                    "{}",
                    m.files[0].file_name
                );
            }
        }
        assert!(office_bundles >= 5, "{office_bundles} Office bundles with language children");
        assert!(office_languages.len() >= 5, "{office_languages:?}");
        // Language packs: standalone, one per language of a series.
        let packs: Vec<&Planned> = items
            .iter()
            .filter(|p| p.update_type == "Software" && p.title.contains("Language Pack"))
            .collect();
        let pack_languages: std::collections::BTreeSet<_> =
            packs.iter().map(|p| p.language.expect("a language")).collect();
        assert!(
            packs.len() >= 10 && pack_languages.len() >= 5,
            "{} packs in {pack_languages:?}",
            packs.len()
        );
        for p in &packs {
            assert!(p.explicitly_deployable && p.bundled.is_empty());
            let c = culture(p.language.unwrap());
            assert!(p.files.iter().all(|f| f.file_name.contains(c)), "{:?}", p.files);
        }
        // Language-neutral: UUP updates say `all`, the rest carry no Language; most are neutral.
        assert!(
            items
                .iter()
                .filter(|p| p.handler == Handler::OsInstaller)
                .all(|p| p.language == Some("all"))
        );
        let neutral =
            items.iter().filter(|p| p.update_type == "Software" && p.language.is_none()).count();
        let specific = items.iter().filter(|p| p.language.is_some_and(|l| l != "all")).count();
        assert!(neutral > 3 * specific, "{neutral} neutral, {specific} language-specific");
        // Detectoids and drivers are not translated; the rest is.
        assert!(
            items.iter().all(|p| p.translated != matches!(p.update_type, "Detectoid" | "Driver"))
        );
    }

    #[test]
    fn cumulative_updates_have_express_files_beside_the_full_file() {
        let mut planner = Planner::new(3, 1 << 20);
        let items: Vec<Planned> = (0..3000).map(|_| planner.next_item()).collect();
        let mut cumulative = 0;
        for p in &items {
            let express: Vec<&PlannedFile> =
                p.files.iter().filter(|f| f.patching_type == Some("Express")).collect();
            if p.handler != Handler::Cbs
                || !matches!(p.classification, Some(cat::SECURITY | cat::ROLLUPS))
            {
                assert!(express.is_empty(), "{}: {:?}", p.title, p.files);
                continue;
            }
            cumulative += 1;
            let full: Vec<&PlannedFile> =
                p.files.iter().filter(|f| f.patching_type == Some("SelfContained")).collect();
            assert_eq!((full.len(), express.len()), (1, 2), "{}: {:?}", p.title, p.files);
            let stem = full[0].file_name.strip_suffix(".cab").unwrap();
            let psf =
                express.iter().find(|f| f.file_name == format!("{stem}.psf")).expect("a .psf");
            let manifests = express
                .iter()
                .find(|f| f.file_name == format!("{stem}-express.cab"))
                .expect("an express .cab");
            assert!(psf.size > full[0].size, "the .psf is larger than the full file");
            assert!(manifests.size * 20 < full[0].size, "the delta manifests are small");
        }
        assert!(cumulative >= 20, "{cumulative} cumulative updates");
        // Each file of an item has its own payload bytes.
        for p in &items {
            let keys: std::collections::HashSet<u64> =
                p.files.iter().map(|f| f.content_key).collect();
            assert_eq!(keys.len(), p.files.len(), "{}", p.title);
        }
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
