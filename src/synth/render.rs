//! Writing a planned item as a full `<upd:Update>` document, shaped like the real ones in
//! `shared/conformance/` (namespace declarations, element order, attribute order).

use super::plan::{Clause, Handler, Planned, PlannedFile};
use super::rng::Rng;
use crate::catalog::xml::{push_escaped_attribute, push_escaped_text};
use crate::catalog::{Sha1Digest, Sha256Digest};

/// A payload file as written to the content tree.
#[derive(Debug, Clone)]
pub struct RenderedFile {
    pub file_name: String,
    pub size: u64,
    pub sha1: Sha1Digest,
    pub sha256: Sha256Digest,
    pub patching_type: Option<&'static str>,
    pub preferred: Option<&'static str>,
}

impl RenderedFile {
    /// A planned file whose bytes are never made, for documents that only need to parse (tests,
    /// benchmarks): both digests are derived from its content key.
    pub fn stand_in(f: &PlannedFile) -> RenderedFile {
        let key = f.content_key.to_le_bytes();
        let (mut sha1, mut sha256) = ([0u8; 20], [0u8; 32]);
        sha1[..8].copy_from_slice(&key);
        sha256[..8].copy_from_slice(&key);
        RenderedFile {
            file_name: f.file_name.clone(),
            size: f.size,
            sha1: Sha1Digest(sha1),
            sha256: Sha256Digest(sha256),
            patching_type: f.patching_type,
            preferred: f.preferred,
        }
    }
}

const UPD: &str = "http://schemas.microsoft.com/msus/2002/12/Update";
const BAR: &str = "http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules";
const LAR: &str = "http://schemas.microsoft.com/msus/2002/12/LogicalApplicabilityRules";
const MAR: &str = "http://schemas.microsoft.com/msus/2002/12/MsiApplicabilityRules";
const CBSAR: &str = "http://schemas.microsoft.com/msus/2002/12/CbsApplicabilityRules";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const PUBLISHER: &str = "395392a0-19c0-48b7-a927-f7c15066d905";

struct Xml(String);

impl Xml {
    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.0.push('<');
        self.0.push_str(name);
        for (k, v) in attrs {
            self.0.push(' ');
            self.0.push_str(k);
            self.0.push_str("=\"");
            push_escaped_attribute(&mut self.0, v);
            self.0.push('"');
        }
        self.0.push('>');
    }
    fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.open(name, attrs);
        self.0.pop();
        self.0.push_str(" />");
    }
    fn close(&mut self, name: &str) {
        self.0.push_str("</");
        self.0.push_str(name);
        self.0.push('>');
    }
    fn text_element(&mut self, name: &str, text: &str) {
        self.open(name, &[]);
        push_escaped_text(&mut self.0, text);
        self.close(name);
    }
}

/// `2026-10-04T12:00:58.287Z` with milliseconds, `2026-10-04T09:39:26Z` without (as real documents).
fn timestamp(secs: i64, millis: Option<u32>) -> String {
    let Some(d) = chrono::DateTime::from_timestamp(secs, millis.unwrap_or(0) * 1_000_000) else {
        return String::new();
    };
    if millis.is_some() {
        d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    } else {
        d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
}

/// The languages of an item's LocalizedProperties: every one asked for if the item is
/// translated, else the default language alone; UUP updates have the neutral language `all`.
fn localized_languages<'a>(p: &Planned, languages: &'a [String]) -> Vec<&'a str> {
    if p.language == Some("all") {
        return vec!["all"];
    }
    if p.translated {
        return languages.iter().map(String::as_str).collect();
    }
    languages
        .iter()
        .find(|l| *l == "en")
        .or(languages.first())
        .map(String::as_str)
        .into_iter()
        .collect()
}

/// Renders the document. `languages` lists the LocalizedProperties to write (`en` first) for
/// translated items; the others get `en` (or the first language) alone.
pub fn render(p: &Planned, files: &[RenderedFile], languages: &[String]) -> String {
    let mut x = Xml(String::with_capacity(2048 + p.core_target + 512 * languages.len()));
    let mut root_ns = vec![("xmlns:pub", "http://schemas.microsoft.com/msus/2002/12/Publishing")];
    match p.handler {
        Handler::Category => root_ns.push((
            "xmlns:cat",
            "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category",
        )),
        Handler::CommandLine => root_ns.extend([
            ("xmlns:bar", BAR),
            ("xmlns:lar", LAR),
            (
                "xmlns:cmd",
                "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CommandLineInstallation",
            ),
        ]),
        _ => root_ns.extend([("xmlns:bar", BAR), ("xmlns:lar", LAR)]),
    }
    root_ns.push(("xmlns:upd", UPD));
    x.open("upd:Update", &root_ns);
    let id = p.identity.update_id.to_string();
    let rev = p.identity.revision_number.to_string();
    x.empty("upd:UpdateIdentity", &[("UpdateID", &id), ("RevisionNumber", &rev)]);

    render_properties(&mut x, p, files);
    render_localized(&mut x, p, languages);
    render_relationships(&mut x, p);
    render_rules(&mut x, p);
    render_files(&mut x, p, files);
    render_handler_data(&mut x, p, files);
    x.close("upd:Update");
    x.0
}

/// `upd:Properties`, in the attribute order real documents use.
fn render_properties(x: &mut Xml, p: &Planned, files: &[RenderedFile]) {
    let max_download: u64 = files.iter().map(|f| f.size).sum();
    let max_download = max_download.to_string();
    let created = timestamp(p.created, Some((p.index % 1000) as u32));
    let release = format!("10.0.26100.{}", p.index % 9000);
    let mut props: Vec<(&str, &str)> = Vec::new();
    if p.handler == Handler::OsInstaller {
        props.extend([
            ("ProductName", "Client.OS.RS2.AMD64"),
            ("ReleaseVersion", release.as_str()),
            ("ReleaseRevision", "1"),
        ]);
    }
    props.extend([("UpdateType", p.update_type), ("DefaultPropertiesLanguage", "en")]);
    if p.explicitly_deployable {
        props.push(("AutoSelectOnWebSites", "true"));
        props.push(("ExplicitlyDeployable", "true"));
    }
    if let Some(h) = p.handler.uri() {
        props.push(("Handler", h));
    }
    if matches!(p.update_type, "Software" | "Driver") {
        props.push(("MaxDownloadSize", &max_download));
        props.push(("MinDownloadSize", "0"));
    }
    if let Some(sev) = p.msrc_severity {
        props.push(("MsrcSeverity", sev));
    }
    props.push(("PublicationState", if p.expired { "Expired" } else { "Published" }));
    props.push(("CreationDate", &created));
    props.push(("PublisherID", PUBLISHER));
    x.open("upd:Properties", &props);
    match p.handler {
        Handler::Cbs | Handler::OsInstaller => {
            x.empty("upd:InstallationBehavior", &[("RebootBehavior", "CanRequestReboot")])
        }
        Handler::CommandLine | Handler::WindowsInstaller => {
            x.empty("upd:InstallationBehavior", &[("Impact", "Minor")])
        }
        _ => {}
    }
    if p.handler == Handler::Cbs {
        x.empty("upd:UninstallationBehavior", &[("RebootBehavior", "CanRequestReboot")]);
    }
    if let Some(kb) = p.kb {
        x.text_element("upd:SupportUrl", "https://support.microsoft.com/help");
        x.text_element("upd:KBArticleID", &kb.to_string());
    }
    // Last child of Properties, as in the real UUP fragment (after InstallationBehavior) and
    // WSUS-PROTOCOL.md §5.1 (after KBArticleID and SecurityBulletinID).
    if let Some(language) = p.language {
        x.text_element("upd:Language", language);
    }
    x.close("upd:Properties");
}

fn render_localized(x: &mut Xml, p: &Planned, languages: &[String]) {
    x.open("upd:LocalizedPropertiesCollection", &[]);
    for lang in localized_languages(p, languages) {
        x.open("upd:LocalizedProperties", &[]);
        x.text_element("upd:Language", lang);
        let prefix =
            if matches!(lang, "en" | "all") { String::new() } else { format!("[{lang}] ") };
        x.text_element("upd:Title", &format!("{prefix}{}", p.title));
        x.text_element("upd:Description", &format!("{prefix}{}", p.description));
        if p.kb.is_some() {
            x.text_element(
                "upd:MoreInfoUrl",
                &format!("https://support.microsoft.com/help/{}", p.kb.unwrap_or_default()),
            );
            x.text_element("upd:SupportUrl", "https://support.microsoft.com");
        }
        x.close("upd:LocalizedProperties");
    }
    x.close("upd:LocalizedPropertiesCollection");
}

fn render_relationships(x: &mut Xml, p: &Planned) {
    if !p.superseded.is_empty() || !p.prerequisites.is_empty() || !p.bundled.is_empty() {
        x.open("upd:Relationships", &[]);
        if !p.superseded.is_empty() {
            x.open("upd:SupersededUpdates", &[]);
            for s in &p.superseded {
                x.empty("upd:UpdateIdentity", &[("UpdateID", &s.to_string())]);
            }
            x.close("upd:SupersededUpdates");
        }
        if !p.prerequisites.is_empty() {
            x.open("upd:Prerequisites", &[]);
            for c in &p.prerequisites {
                match c {
                    Clause::One(g) => {
                        x.empty("upd:UpdateIdentity", &[("UpdateID", &g.to_string())])
                    }
                    Clause::AnyOf(ids, is_category) => {
                        x.open(
                            "upd:AtLeastOne",
                            if *is_category { &[("IsCategory", "true")] } else { &[] },
                        );
                        for g in ids {
                            x.empty("upd:UpdateIdentity", &[("UpdateID", &g.to_string())]);
                        }
                        x.close("upd:AtLeastOne");
                    }
                }
            }
            x.close("upd:Prerequisites");
        }
        if !p.bundled.is_empty() {
            x.open("upd:BundledUpdates", &[]);
            for group in &p.bundled {
                x.open("upd:AtLeastOne", &[]);
                for m in group {
                    x.empty(
                        "upd:UpdateIdentity",
                        &[
                            ("UpdateID", &m.update_id.to_string()),
                            ("RevisionNumber", &m.revision_number.to_string()),
                        ],
                    );
                }
                x.close("upd:AtLeastOne");
            }
            x.close("upd:BundledUpdates");
        }
        x.close("upd:Relationships");
    }
}

fn render_files(x: &mut Xml, p: &Planned, files: &[RenderedFile]) {
    if !files.is_empty() {
        x.open("upd:Files", &[]);
        for f in files {
            let digest = f.sha1.to_base64();
            let size = f.size.to_string();
            let modified = timestamp(p.created - 3600, None);
            let mut attrs = vec![
                ("Digest", digest.as_str()),
                ("DigestAlgorithm", "SHA1"),
                ("FileName", f.file_name.as_str()),
                ("Size", size.as_str()),
                ("Modified", modified.as_str()),
            ];
            if let Some(pt) = f.patching_type {
                attrs.push(("PatchingType", pt));
            }
            if let Some(pr) = f.preferred {
                attrs.push(("PatchingTypePreferred", pr));
            }
            x.open("upd:File", &attrs);
            x.open("upd:AdditionalDigest", &[("Algorithm", "SHA256")]);
            x.0.push_str(&f.sha256.to_base64());
            x.close("upd:AdditionalDigest");
            x.close("upd:File");
        }
        x.close("upd:Files");
    }
}

fn render_handler_data(x: &mut Xml, p: &Planned, files: &[RenderedFile]) {
    let hsd = |x: &mut Xml, ty: &str| {
        x.open("upd:HandlerSpecificData", &[("xsi:type", ty), ("xmlns:xsi", XSI)])
    };
    match p.handler {
        Handler::Category => {
            hsd(x, "cat:Category");
            let order = (p.index + 1).to_string();
            x.empty(
                "cat:CategoryInformation",
                &[
                    ("CategoryType", p.category_kind.unwrap_or("Product")),
                    ("ProhibitsSubcategories", "false"),
                    ("ProhibitsUpdates", "false"),
                    ("DisplayOrder", &order),
                ],
            );
            x.close("upd:HandlerSpecificData");
        }
        Handler::CommandLine => {
            hsd(x, "cmd:CommandLineInstallation");
            let program = files.first().map(|f| f.file_name.as_str()).unwrap_or("setup.exe");
            x.open("cmd:InstallCommand", &[("Program", program), ("Arguments", "/q /norestart")]);
            x.empty("cmd:ReturnCode", &[("Code", "0"), ("Result", "Succeeded")]);
            x.close("cmd:InstallCommand");
            x.close("upd:HandlerSpecificData");
        }
        Handler::Cbs => {
            hsd(x, "cbs:Cbs");
            x.empty(
                "cbs:CbsData",
                &[
                    ("PackageIdentity", ""),
                    ("xmlns:cbs", "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Cbs"),
                ],
            );
            x.close("upd:HandlerSpecificData");
        }
        Handler::OsInstaller => {
            hsd(x, "OSInstallerMetadata");
            x.empty(
                "OSInstallData",
                &[
                    ("InitialModule", "UpdateAgent.dll"),
                    (
                        "xmlns",
                        "http://schemas.microsoft.com/msus/2016/01/UpdateHandlers/OSInstaller",
                    ),
                ],
            );
            x.close("upd:HandlerSpecificData");
        }
        Handler::WindowsInstaller => {
            hsd(x, "msp:WindowsInstaller");
            x.close("upd:HandlerSpecificData");
        }
        Handler::Driver => {
            hsd(x, "drv:WindowsDriver");
            x.close("upd:HandlerSpecificData");
        }
        Handler::Detectoid | Handler::Bundle => {}
    }
}

fn bar(x: &mut Xml, name: &str, attrs: &[(&str, &str)]) {
    let mut a = attrs.to_vec();
    a.push(("xmlns:bar", BAR));
    x.empty(&format!("bar:{name}"), &a);
}

/// Applicability rules: small natural rules per kind, padded to `core_target` bytes with the
/// registry and package checks real servicing metadata is made of.
fn render_rules(x: &mut Xml, p: &Planned) {
    let mut rng = Rng::new(p.rules_seed, 3, p.identity.revision_number as u64);
    let start = x.0.len();
    x.open("upd:ApplicabilityRules", &[]);
    match p.handler {
        Handler::Category => rules_category(x),
        Handler::Detectoid => rules_detectoid(x, &mut rng),
        Handler::Cbs => rules_cbs(x, p, &mut rng, start),
        Handler::OsInstaller => rules_os_installer(x, p),
        Handler::WindowsInstaller => rules_windows_installer(x, p, &mut rng, start),
        Handler::Driver => rules_driver(x, p),
        Handler::CommandLine | Handler::Bundle => rules_command_line(x, p, start),
    }
    x.close("upd:ApplicabilityRules");
}

/// A category is always installed.
fn rules_category(x: &mut Xml) {
    x.open("upd:IsInstalled", &[]);
    x.empty("lar:True", &[("xmlns:lar", LAR)]);
    x.close("upd:IsInstalled");
}

/// A detectoid: one Windows version, processor or registry check.
fn rules_detectoid(x: &mut Xml, rng: &mut Rng) {
    x.open("upd:IsInstalled", &[]);
    match rng.below(3) {
        0 => bar(
            x,
            "WindowsVersion",
            &[
                ("Comparison", "GreaterThanOrEqualTo"),
                ("MajorVersion", "10"),
                ("MinorVersion", "0"),
                ("ProductType", "1"),
            ],
        ),
        1 => bar(x, "Processor", &[("Architecture", ["0", "9", "12"][rng.below(3) as usize])]),
        _ => bar(
            x,
            "RegDword",
            &[
                ("Key", "HKEY_LOCAL_MACHINE"),
                ("Subkey", "SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"),
                ("Value", "UBR"),
                ("Comparison", "GreaterThanOrEqualTo"),
                ("Data", &(rng.below(5000)).to_string()),
            ],
        ),
    }
    x.close("upd:IsInstalled");
}

/// A CBS package (cumulative updates and the like).
fn rules_cbs(x: &mut Xml, p: &Planned, rng: &mut Rng, start: usize) {
    x.open("upd:IsInstalled", &[]);
    x.open("lar:And", &[("xmlns:lar", LAR)]);
    x.empty("cbsar:CbsPackageInstalled", &[("xmlns:cbsar", CBSAR)]);
    x.open("lar:Not", &[]);
    bar(
        x,
        "RegDword",
        &[
            ("Key", "HKEY_LOCAL_MACHINE"),
            ("Subkey", "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing"),
            ("Value", "LCUReoffer"),
            ("Comparison", "EqualTo"),
            ("Data", "1"),
        ],
    );
    x.close("lar:Not");
    x.close("lar:And");
    x.close("upd:IsInstalled");
    x.open("upd:IsInstallable", &[]);
    x.empty("cbsar:CbsPackageInstallable", &[("xmlns:cbsar", CBSAR)]);
    x.close("upd:IsInstallable");
    x.open("upd:Metadata", &[]);
    x.open("cbsar:CbsPackageApplicabilityMetadata", &[("xmlns:cbsar", CBSAR)]);
    let kb = format!("KB{}", p.kb.unwrap_or(5_000_000));
    x.open(
        "assembly",
        &[
            ("xmlns", "urn:schemas-microsoft-com:asm.v3"),
            ("manifestVersion", "1.0"),
            ("description", &format!("Fix for {kb}")),
            ("displayName", "default"),
            ("company", "Microsoft Corporation"),
            ("copyright", "Microsoft Corporation"),
            ("supportInformation", "https://support.microsoft.com/help"),
            ("creationTimeStamp", &timestamp(p.created, None)),
            ("lastUpdateTimeStamp", &timestamp(p.created, None)),
        ],
    );
    let version = format!("26100.{}.1.{}", p.index % 7000, p.index % 13);
    x.empty(
        "assemblyIdentity",
        &[
            ("name", "Package_for_RollupFix"),
            ("version", &version),
            ("processorArchitecture", "amd64"),
            ("language", "neutral"),
            ("publicKeyToken", "31bf3856ad364e35"),
        ],
    );
    x.open(
        "package",
        &[("identifier", &kb), ("releaseType", "Security Update"), ("restart", "possible")],
    );
    // The component list is what makes real CBS manifests large.
    let mut n = 0u64;
    while x.0.len() - start < p.core_target {
        n += 1;
        let name = format!("Microsoft-Windows-Component-{:05}-{:08x}", n, rng.next_u64() as u32);
        x.empty(
            "assemblyIdentity",
            &[
                ("name", &name),
                ("version", &version),
                ("processorArchitecture", "amd64"),
                ("language", "neutral"),
                ("publicKeyToken", "31bf3856ad364e35"),
            ],
        );
    }
    x.close("package");
    x.close("assembly");
    x.close("cbsar:CbsPackageApplicabilityMetadata");
    x.close("upd:Metadata");
}

/// A feature update (the OS installer).
fn rules_os_installer(x: &mut Xml, p: &Planned) {
    let osi = "http://schemas.microsoft.com/msus/2016/01/UpdateHandlers/OSInstaller";
    x.open("upd:IsInstalled", &[]);
    x.empty(
        "osi:ProductReleaseInstalled",
        &[
            ("Name", "Client.OS.RS2.AMD64"),
            ("Version", &format!("10.0.26100.{}", p.index % 9000)),
            ("xmlns:osi", osi),
        ],
    );
    x.close("upd:IsInstalled");
    x.open("upd:IsInstallable", &[]);
    x.open("lar:And", &[("xmlns:lar", LAR)]);
    for sku in ["4", "27", "48", "121"] {
        x.open("lar:Not", &[]);
        x.empty(
            "osi:DeviceAttribute",
            &[
                ("Name", "OSSkuId"),
                ("Type", "String"),
                ("Comparison", "EqualTo"),
                ("Value", sku),
                ("xmlns:osi", osi),
            ],
        );
        x.close("lar:Not");
    }
    x.empty(
        "osi:DeviceAttribute",
        &[
            ("Name", "OSVersion"),
            ("Type", "Version"),
            ("Comparison", "GreaterThanOrEqualTo"),
            ("Value", "10.0.26100.1"),
            ("xmlns:osi", osi),
        ],
    );
    x.close("lar:And");
    x.close("upd:IsInstallable");
}

/// An MSI product.
fn rules_windows_installer(x: &mut Xml, p: &Planned, rng: &mut Rng, start: usize) {
    x.open("upd:IsInstalled", &[]);
    x.empty("mar:MsiPatchInstalled", &[("xmlns:mar", MAR)]);
    x.close("upd:IsInstalled");
    x.open("upd:IsInstallable", &[]);
    x.empty("mar:MsiPatchInstallable", &[("xmlns:mar", MAR)]);
    x.close("upd:IsInstallable");
    x.open("upd:Metadata", &[]);
    x.open("mar:MsiPatchMetadata", &[("xmlns:mar", MAR)]);
    while x.0.len() - start < p.core_target {
        let code = format!(
            "{{{}}}",
            crate::catalog::Guid::from_bytes(
                rng.next_u64().to_le_bytes().repeat(2).try_into().expect("16 bytes")
            )
            .to_string()
            .to_uppercase()
        );
        x.empty("mar:MsiProductInstalled", &[("ProductCode", &code)]);
    }
    x.close("mar:MsiPatchMetadata");
    x.close("upd:Metadata");
}

/// A driver: WindowsDriver rules.
fn rules_driver(x: &mut Xml, p: &Planned) {
    x.open("upd:Metadata", &[]);
    let drv = "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsDriver";
    x.empty(
        "drv:WindowsDriverMetaData",
        &[
            ("HardwareID", &format!("PCI\\VEN_8086&DEV_{:04X}", p.index % 65536)),
            ("WhqlDriverID", &p.index.to_string()),
            ("Manufacturer", "Contoso Ltd."),
            ("Company", "Contoso Ltd."),
            ("Provider", "Contoso Ltd."),
            ("DriverVerDate", "2025-06-01"),
            ("DriverVerVersion", &format!("10.{}.{}.0", p.index % 100, p.index % 1000)),
            ("Class", "System"),
            ("Model", "Contoso System Device"),
            ("xmlns:drv", drv),
        ],
    );
    x.close("upd:Metadata");
}

/// Command-line installers and bundles.
fn rules_command_line(x: &mut Xml, p: &Planned, start: usize) {
    // Registry and file-version checks, as the Defender definitions carry them.
    x.open("upd:IsInstalled", &[]);
    x.open("lar:And", &[("xmlns:lar", LAR)]);
    let subkey = "SOFTWARE\\Microsoft\\Windows Defender\\Signature Updates";
    let mut n = 0u64;
    loop {
        n += 1;
        let version = format!("1.{}.{}.0", 400 + n % 100, p.index % 1000);
        bar(
            x,
            "FileVersionPrependRegSz",
            &[
                ("Path", "mpasdlta.vdm"),
                ("Comparison", "GreaterThanOrEqualTo"),
                ("Version", &version),
                ("Key", "HKEY_LOCAL_MACHINE"),
                ("Subkey", subkey),
                ("Value", "SignatureLocation"),
            ],
        );
        if x.0.len() - start >= p.core_target || n > 100_000 {
            break;
        }
        x.open("lar:Not", &[]);
        bar(
            x,
            "RegDword",
            &[
                ("Key", "HKEY_LOCAL_MACHINE"),
                ("Subkey", subkey),
                ("Value", "SignatureType"),
                ("Comparison", "EqualTo"),
                ("Data", &(n % 3).to_string()),
            ],
        );
        x.close("lar:Not");
    }
    x.close("lar:And");
    x.close("upd:IsInstalled");
    x.open("upd:IsInstallable", &[]);
    bar(
        x,
        "RegValueExists",
        &[
            ("Key", "HKEY_LOCAL_MACHINE"),
            ("Subkey", "SOFTWARE\\Microsoft\\Windows Defender"),
            ("Value", "InstallLocation"),
            ("Type", "REG_SZ"),
        ],
    );
    x.close("upd:IsInstallable");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::parse_update;
    use crate::synth::plan::Planner;

    fn rendered_files(p: &Planned) -> Vec<RenderedFile> {
        p.files.iter().map(RenderedFile::stand_in).collect()
    }

    #[test]
    fn language_sits_last_in_properties_and_localized_properties_follow_the_item() {
        let languages: Vec<String> = ["en", "de", "fr", "ja"].map(String::from).to_vec();
        let mut planner = Planner::new(3, 1024);
        let (mut specific, mut uup, mut neutral, mut untranslated) = (0, 0, 0, 0);
        for _ in 0..3000 {
            let p = planner.next_item();
            let doc = render(&p, &rendered_files(&p), &languages);
            let parsed =
                parse_update(doc.as_bytes()).unwrap_or_else(|e| panic!("item {}: {e}", p.index));
            let localized: Vec<&str> =
                parsed.fragments.localized.iter().map(|(l, _)| l.as_str()).collect();
            match p.language {
                Some(language) => {
                    // After InstallationBehavior, SupportUrl and KBArticleID, as the real UUP
                    // ExtendedProperties and WSUS-PROTOCOL.md §5.1 have it.
                    let tail = format!("<upd:Language>{language}</upd:Language></upd:Properties>");
                    assert!(doc.contains(&tail), "item {}: {doc:.2000}", p.index);
                    assert_eq!(doc.matches("</upd:Language></upd:Properties>").count(), 1);
                    // Extended keeps the Properties child; Core leaves it out.
                    let extended = &parsed.fragments.extended;
                    assert!(
                        extended.contains(&format!(
                            "<Language>{language}</Language></ExtendedProperties>"
                        )),
                        "{extended:.600}"
                    );
                    assert!(!parsed.fragments.core.contains("<Language>"));
                    if language == "all" {
                        uup += 1;
                        assert_eq!(
                            localized,
                            ["all"],
                            "UUP updates have the neutral language only"
                        );
                    } else {
                        specific += 1;
                        assert_eq!(localized, ["en", "de", "fr", "ja"]);
                    }
                }
                None => {
                    assert!(!doc.contains("</upd:Language></upd:Properties>"), "item {}", p.index);
                    if p.translated {
                        neutral += 1;
                        assert_eq!(localized, ["en", "de", "fr", "ja"]);
                    } else {
                        untranslated += 1;
                        assert_eq!(localized, ["en"]);
                    }
                }
            }
        }
        assert!(
            specific > 20 && uup > 20 && neutral > 200 && untranslated > 1000,
            "{specific} {uup} {neutral} {untranslated}"
        );
    }

    #[test]
    fn express_files_are_declared_beside_the_full_file() {
        let mut planner = Planner::new(3, 1 << 20);
        let p = (0..3000)
            .map(|_| planner.next_item())
            .find(|p| p.files.iter().any(|f| f.patching_type == Some("Express")))
            .expect("a cumulative update");
        let files = rendered_files(&p);
        let doc = render(&p, &files, &["en".to_string()]);
        let parsed = parse_update(doc.as_bytes()).unwrap();
        let kinds: Vec<(&str, Option<&str>)> = parsed
            .update
            .files
            .iter()
            .map(|f| (f.extension(), f.patching_type.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            [("cab", Some("SelfContained")), ("psf", Some("Express")), ("cab", Some("Express"))]
        );
        let total: u64 = files.iter().map(|f| f.size).sum();
        assert_eq!(
            parsed.update.max_download_size,
            Some(total),
            "MaxDownloadSize counts every file, as the real UUP one does"
        );
        assert!(parsed.fragments.extended.contains(r#"PatchingType="Express""#));
    }
}
