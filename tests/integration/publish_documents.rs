//! Local publishing, what an installer says and the update documents (issue 16): real MSIs built
//! with `wixl` read by `publish::msi` and compared with `msiinfo`; the documents of MSI, MSP and
//! EXE updates and of their vendor and product categories parsed by the catalog parser like
//! Microsoft's, and their applicability rules validated with `xmllint --schema` against the
//! rule XSDs of the conformance material.

use crate::served::require;
use chrono::{DateTime, TimeZone, Utc};
use ferry::catalog::{CategoryKind, Guid, ParsedUpdate, Sha1Digest, Sha256Digest, UpdateType};
use ferry::catalog::{parse::span_text, parse_update};
use ferry::publish::document::{
    CategoryName, CategoryRevision, Classification, Comparison, Details, DetectRule, ExeInstaller,
    FilePath, Installer, InvalidUpdate, KnownFolder, MsiInstaller, MsiProductRule, MspInstaller,
    MsrcSeverity, NewUpdate, Payload, PrerequisiteGroup, Product, PublishedUpdate, RegistryKey,
    ReturnCode, Vendor, product_document, vendor_document,
};
use ferry::publish::msi::{Lcid, MsiError, MsiProduct, MspPatch, PatchCode, ProductCode};
use sha1::Digest as _;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An MSI the test builds: what its Property table must say.
pub(crate) struct MsiCase {
    pub file: &'static str,
    pub product_code: &'static str,
    pub name: &'static str,
    pub version: &'static str,
    pub language: u16,
    pub manufacturer: &'static str,
    pub upgrade_code: Option<&'static str>,
}

const MSI_CASES: &[MsiCase] = &[
    MsiCase {
        file: "notes.msi",
        product_code: "12345678-1234-4234-8234-123456789ABC",
        name: "Ferry Notes",
        version: "1.2.3",
        language: 1033,
        manufacturer: "Ferry Test Vendor",
        upgrade_code: Some("87654321-4321-4321-8321-CBA987654321"),
    },
    MsiCase {
        file: "plant-hmi.msi",
        product_code: "0A99450E-D4DC-4488-94FD-EF652FAC6466",
        name: "Plant HMI & Tools",
        version: "10.0.19041",
        language: 1031,
        manufacturer: "Werk <Sued> & Co. \"HMI\" GmbH",
        upgrade_code: Some("C0FFEE00-0000-4000-8000-00000000BEEF"),
    },
    MsiCase {
        file: "no-upgrade.msi",
        product_code: "DEADBEEF-0000-4000-8000-000000000001",
        name: "Without Upgrade Code",
        version: "255.255.65535",
        language: 0,
        manufacturer: "Ferry Test Vendor",
        upgrade_code: None,
    },
];

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A small product for `wixl`: one component with one file.
fn wxs(case: &MsiCase) -> String {
    let upgrade = case.upgrade_code.map(|u| format!(r#" UpgradeCode="{u}""#)).unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="{code}" Name="{name}" Language="{language}" Version="{version}" Manufacturer="{manufacturer}"{upgrade}>
    <Package InstallerVersion="200" Compressed="yes" Comments="ferry test" />
    <Media Id="1" Cabinet="app.cab" EmbedCab="yes" />
    <Directory Id="TARGETDIR" Name="SourceDir">
      <Directory Id="ProgramFilesFolder">
        <Directory Id="INSTALLDIR" Name="FerryTest">
          <Component Id="MainFile" Guid="11111111-2222-4333-8444-555555555555">
            <File Id="readme" Name="readme.txt" Source="readme.txt" />
          </Component>
        </Directory>
      </Directory>
    </Directory>
    <Feature Id="Main" Level="1"><ComponentRef Id="MainFile" /></Feature>
  </Product>
</Wix>
"#,
        code = case.product_code,
        name = xml_escape(case.name),
        language = case.language,
        version = case.version,
        manufacturer = xml_escape(case.manufacturer),
    )
}

pub(crate) fn build_msi(dir: &Path, case: &MsiCase) -> PathBuf {
    std::fs::write(dir.join("readme.txt"), "hello from ferry\n").unwrap();
    let source = dir.join(format!("{}.wxs", case.file));
    std::fs::write(&source, wxs(case)).unwrap();
    let msi = dir.join(case.file);
    crate::util::tool_stdout(
        Command::new("wixl").current_dir(dir).arg("-o").arg(&msi).arg(&source),
    );
    msi
}

/// `msiinfo export FILE Property`: the Property table as the Windows Installer library reads it.
fn msiinfo_properties(msi: &Path) -> HashMap<String, String> {
    let text =
        crate::util::tool_stdout(Command::new("msiinfo").arg("export").arg(msi).arg("Property"));
    text.lines()
        .skip(3) // column names, column types, table name
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn what_an_msi_says_about_itself_is_what_msiinfo_reads() {
    if require(&["wixl", "msiinfo"]).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for case in MSI_CASES {
        let path = build_msi(dir.path(), case);
        let product = MsiProduct::read_file(&path).unwrap_or_else(|e| panic!("{}: {e}", case.file));
        let expected_code: ProductCode = case.product_code.parse().unwrap();
        assert_eq!(product.product_code, expected_code, "{}", case.file);
        assert_eq!(product.version.to_string(), case.version, "{}", case.file);
        assert_eq!(product.language, Lcid(case.language), "{}", case.file);
        assert_eq!(product.manufacturer, case.manufacturer, "{}", case.file);
        assert_eq!(product.name, case.name, "{}", case.file);
        assert_eq!(
            product.upgrade_code.map(|u| u.guid()),
            case.upgrade_code.map(|u| Guid::parse(u).unwrap()),
            "{}",
            case.file
        );

        let table = msiinfo_properties(&path);
        assert_eq!(table["ProductCode"], product.product_code.to_string(), "{}", case.file);
        assert_eq!(table["ProductVersion"], product.version.to_string());
        assert_eq!(table["ProductLanguage"], product.language.to_string());
        assert_eq!(table["Manufacturer"], product.manufacturer);
        assert_eq!(table["ProductName"], product.name);
        assert_eq!(table.get("UpgradeCode"), product.upgrade_code.map(|u| u.to_string()).as_ref());
    }
}

#[test]
fn a_file_that_is_not_an_msi_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("readme.msi");
    std::fs::write(&text, "this is not a compound file, just text\n".repeat(100)).unwrap();
    for err in [
        MsiProduct::read_file(&text).unwrap_err().to_string(),
        MspPatch::read_file(&text).unwrap_err().to_string(),
    ] {
        assert!(err.starts_with("not an MS"), "{err}");
        assert!(err.contains(&text.display().to_string()), "{err}");
    }
    let missing = dir.path().join("missing.msi");
    assert!(matches!(MsiProduct::read_file(&missing), Err(MsiError::Io { .. })));
}

#[test]
fn an_msi_without_a_required_property_is_refused_naming_the_property() {
    if require(&["wixl", "msibuild", "msiinfo"]).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for property in ["Manufacturer", "ProductVersion", "ProductCode"] {
        let path = build_msi(dir.path(), &MSI_CASES[0]);
        let delete = format!("DELETE FROM `Property` WHERE `Property` = '{property}'");
        crate::util::tool_stdout(Command::new("msibuild").arg(&path).arg("-q").arg(&delete));
        assert!(!msiinfo_properties(&path).contains_key(property));
        let err = MsiProduct::read_file(&path).unwrap_err();
        assert!(
            matches!(&err, MsiError::MissingProperty { property: p, .. } if *p == property),
            "{err}"
        );
        assert!(
            err.to_string().contains(property) && err.to_string().contains("notes.msi"),
            "{err}"
        );
    }
}

/// The summary information of a patch: a property set (MS-OLEPS) with the code page, the
/// Template (target products) and the Revision Number (patch code, then obsoleted ones).
fn patch_summary(template: &str, revision: &str) -> Vec<u8> {
    let lpstr = |text: &str| {
        let mut v = 0x1eu32.to_le_bytes().to_vec();
        v.extend((text.len() as u32 + 1).to_le_bytes());
        v.extend(text.as_bytes());
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    };
    let codepage = [2u8, 0, 0, 0, 0xe9, 0xfd, 0, 0]; // VT_I2 65001
    let properties = [(1u32, codepage.to_vec()), (7, lpstr(template)), (9, lpstr(revision))];
    let mut body = Vec::new();
    let mut offset = 8 + 8 * properties.len();
    for (id, value) in &properties {
        body.extend(id.to_le_bytes());
        body.extend((offset as u32).to_le_bytes());
        offset += value.len();
    }
    properties.iter().for_each(|(_, v)| body.extend(v));
    let mut stream = vec![0xfe, 0xff, 0, 0, 6, 0, 2, 0];
    stream.extend([0u8; 16]);
    stream.extend(1u32.to_le_bytes());
    stream.extend(b"\xe0\x85\x9f\xf2\xf9\x4f\x68\x10\xab\x91\x08\x00\x2b\x27\xb3\xd9");
    stream.extend(48u32.to_le_bytes());
    stream.extend((8 + body.len() as u32).to_le_bytes());
    stream.extend((properties.len() as u32).to_le_bytes());
    stream.extend(body);
    stream
}

/// A minimal MSP: a compound file of the patch class with its summary information. `wixl`
/// cannot build patches; the package is made with the `msi` crate and its summary written here.
fn build_msp(path: &Path, template: &str, revision: &str) {
    let file = std::fs::File::create(path).unwrap();
    drop(msi::Package::create(msi::PackageType::Patch, file).unwrap());
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut compound = cfb::CompoundFile::open(file).unwrap();
    let mut stream = compound.create_stream("\u{5}SummaryInformation").unwrap();
    stream.write_all(&patch_summary(template, revision)).unwrap();
    drop(stream);
    compound.flush().unwrap();
}

const PATCH: &str = "{A1B2C3D4-0001-4000-8000-000000000710}";
const OBSOLETED: &str = "{A1B2C3D4-0001-4000-8000-000000000700}";
const TARGETS: &str =
    "{12345678-1234-4234-8234-123456789ABC};{0A99450E-D4DC-4488-94FD-EF652FAC6466}";

#[test]
fn what_an_msp_says_about_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes-1.2.4.msp");
    build_msp(&path, TARGETS, &format!("{PATCH}{OBSOLETED}"));
    let patch = MspPatch::read_file(&path).unwrap();
    assert_eq!(patch.patch_code, PATCH.parse::<PatchCode>().unwrap());
    assert_eq!(patch.obsoletes, [OBSOLETED.parse::<PatchCode>().unwrap()]);
    let targets: Vec<ProductCode> = TARGETS.split(';').map(|t| t.parse().unwrap()).collect();
    assert_eq!(patch.target_products, targets);
    // A patch is no installer, and an installer no patch.
    let err = MsiProduct::read_file(&path).unwrap_err().to_string();
    assert!(err.starts_with("not an MSI: ") && err.contains("patch"), "{err}");

    let no_target = dir.path().join("no-target.msp");
    build_msp(&no_target, " ; ", PATCH);
    let err = MspPatch::read_file(&no_target).unwrap_err().to_string();
    assert!(err.contains("no target product") && err.contains("no-target.msp"), "{err}");
    let bad_code = dir.path().join("bad-code.msp");
    build_msp(&bad_code, TARGETS, "not-a-guid");
    assert!(MspPatch::read_file(&bad_code).unwrap_err().to_string().contains("Revision Number"));
}

#[test]
fn an_msi_is_no_msp() {
    if require(&["wixl"]).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let msi = build_msi(dir.path(), &MSI_CASES[0]);
    let err = MspPatch::read_file(&msi).unwrap_err().to_string();
    assert!(err.starts_with("not an MSP: ") && err.contains("installer"), "{err}");
}

// ---- documents ----

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, day, 7, 30, 15).unwrap()
}

fn guid(text: &str) -> Guid {
    Guid::parse(text).unwrap()
}

fn contoso() -> Product {
    let vendor = Vendor::new(CategoryName::new("Contoso Ltd").unwrap());
    Product::new(vendor, CategoryName::new("Contoso Notes").unwrap())
}

const PUBLISHER: &str = "bccf8ca0-2819-4598-8d15-000000000016";
const UPDATE_ID: &str = "5d1a0f3e-7b44-4c1e-9e0a-3c2b1a000001";

fn payload(content: &[u8]) -> Payload {
    let sha1 = Sha1Digest(sha1::Sha1::digest(content).into());
    let sha256 = Sha256Digest(sha2::Sha256::digest(content).into());
    Payload::new(&format!("{UPDATE_ID}_1.cab"), content.len() as u64, sha1, sha256, at(4)).unwrap()
}

fn new_update(installer: Installer) -> NewUpdate {
    let details = Details {
        title: "Contoso Notes 1.2.3".into(),
        description: Some("Notes for the plant floor.\nSecond line & more.".into()),
        more_info_url: Some("https://contoso.example/notes?v=1.2.3&lang=en".into()),
        kb_article: Some("KB900123".parse().unwrap()),
        severity: Some(MsrcSeverity::Important),
        classification: Classification::Updates,
        supersedes: vec![guid("5d1a0f3e-7b44-4c1e-9e0a-3c2b1a000000")],
        prerequisites: vec![],
    };
    NewUpdate {
        id: guid(UPDATE_ID),
        revision: 100,
        details,
        product: contoso(),
        installer,
        payload: payload(b"the signed cab's bytes"),
        created: at(5),
        publisher_id: guid(PUBLISHER),
    }
}

fn notes_product() -> MsiProduct {
    MsiProduct {
        product_code: MSI_CASES[0].product_code.parse().unwrap(),
        version: "1.2.3".parse().unwrap(),
        language: Lcid(1033),
        manufacturer: "Contoso Ltd".into(),
        name: "Contoso Notes".into(),
        upgrade_code: None,
    }
}

fn exe(detection: Vec<DetectRule>) -> Installer {
    let codes = vec![
        ReturnCode::success(0),
        ReturnCode::success_with_reboot(3010),
        ReturnCode::failure(1603),
    ];
    Installer::Exe(ExeInstaller::new("setup.exe", Some("/S /norestart"), codes, detection).unwrap())
}

fn parsed(document: &str) -> ParsedUpdate {
    parse_update(document.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{document}"))
}

/// The Core fragment's rules, after identity, properties and relationships.
fn core_rules(p: &ParsedUpdate) -> &str {
    let core = &p.fragments.core;
    &core[core.find("<ApplicabilityRules>").expect("rules in Core")..]
}

/// The applicability-rule XSDs of the conformance material import three namespaces they do not
/// locate (Update, BaseTypes, the MSI patch blob); these are small stand-ins written for this
/// test, strict where Ferry writes values (comparisons, versions, braced GUIDs, the registry
/// hive) and permissive elsewhere. The logical operators have no XSD in the material: their
/// stand-in lets And/Or hold rules and Not exactly one.
fn schemas(dir: &Path, conformance: &Path) -> PathBuf {
    const XS: &str = r#"xmlns="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified""#;
    let update = format!(
        r#"<schema {XS} targetNamespace="http://schemas.microsoft.com/msus/2002/12/Update" xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update">
<element name="ApplicabilityRuleElement" abstract="true"/>
<element name="ApplicabilityMetadataElement" abstract="true"/>
<complexType name="Rule"><sequence><element ref="upd:ApplicabilityRuleElement"/></sequence></complexType>
<element name="ApplicabilityRules"><complexType><sequence>
<element name="IsInstalled" type="upd:Rule" minOccurs="0"/>
<element name="IsInstallable" type="upd:Rule" minOccurs="0"/>
<element name="Metadata" minOccurs="0"><complexType><sequence><element ref="upd:ApplicabilityMetadataElement"/></sequence></complexType></element>
</sequence></complexType></element>
</schema>"#
    );
    let logical = format!(
        r#"<schema {XS} targetNamespace="http://schemas.microsoft.com/msus/2002/12/LogicalApplicabilityRules" xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update">
<import namespace="http://schemas.microsoft.com/msus/2002/12/Update"/>
<complexType name="Many"><sequence><element ref="upd:ApplicabilityRuleElement" maxOccurs="unbounded"/></sequence></complexType>
<complexType name="One"><sequence><element ref="upd:ApplicabilityRuleElement"/></sequence></complexType>
<element name="And" type="lar:Many" substitutionGroup="upd:ApplicabilityRuleElement" xmlns:lar="http://schemas.microsoft.com/msus/2002/12/LogicalApplicabilityRules"/>
<element name="Or" type="lar:Many" substitutionGroup="upd:ApplicabilityRuleElement" xmlns:lar="http://schemas.microsoft.com/msus/2002/12/LogicalApplicabilityRules"/>
<element name="Not" type="lar:One" substitutionGroup="upd:ApplicabilityRuleElement" xmlns:lar="http://schemas.microsoft.com/msus/2002/12/LogicalApplicabilityRules"/>
<element name="True" substitutionGroup="upd:ApplicabilityRuleElement"><complexType/></element>
<element name="False" substitutionGroup="upd:ApplicabilityRuleElement"><complexType/></element>
</schema>"#
    );
    let strings = [
        "Csidl",
        "FileDate",
        "FilePath",
        "FileSize",
        "LicenseValue",
        "LicenseValueDword",
        "LoopLogic",
        "MsiComponentCode",
        "MsiFeatureName",
        "PlatformID",
        "ProcessorArchitecture",
        "ProcessorLevel",
        "ProcessorRevision",
        "RegistryValue",
        "RegistryValueDword",
        "RegistryValueExpandSz",
        "RegistryValueSz",
        "RegistryValueType",
        "StringComparison",
        "WmiNamespace",
        "WmiWqlQuery",
    ]
    .map(|t| format!(r#"<simpleType name="{t}"><restriction base="string"/></simpleType>"#))
    .concat();
    let base_types = format!(
        r#"<schema {XS} targetNamespace="http://schemas.microsoft.com/msus/2002/12/BaseTypes" xmlns:bt="http://schemas.microsoft.com/msus/2002/12/BaseTypes">
{strings}
<simpleType name="ScalarComparison"><restriction base="string"><enumeration value="LessThan"/><enumeration value="LessThanOrEqualTo"/><enumeration value="EqualTo"/><enumeration value="GreaterThanOrEqualTo"/><enumeration value="GreaterThan"/></restriction></simpleType>
<simpleType name="Version"><restriction base="string"><pattern value="\d{{1,5}}(\.\d{{1,5}}){{0,3}}"/></restriction></simpleType>
<simpleType name="RegistryKey"><restriction base="string"><enumeration value="HKEY_LOCAL_MACHINE"/></restriction></simpleType>
<attributeGroup name="RegistryKeyAttributes"><attribute name="Key" type="bt:RegistryKey" use="required"/><attribute name="Subkey" type="string" use="required"/><attribute name="RegType32" type="boolean" use="optional"/></attributeGroup>
<attributeGroup name="RegistryValueAttributes"><attributeGroup ref="bt:RegistryKeyAttributes"/><attribute name="Value" type="string" use="optional"/></attributeGroup>
</schema>"#
    );
    let patch_blob = format!(
        r#"<schema {XS} targetNamespace="http://www.microsoft.com/msi/patch_applicability.xsd">
<simpleType name="GUID"><restriction base="string"><pattern value="\{{[0-9A-Fa-f]{{8}}-([0-9A-Fa-f]{{4}}-){{3}}[0-9A-Fa-f]{{12}}\}}"/></restriction></simpleType>
<simpleType name="Version"><restriction base="string"><pattern value="\d{{1,5}}(\.\d{{1,5}}){{0,3}}"/></restriction></simpleType>
<element name="MsiPatch"/>
</schema>"#
    );
    let files = [
        ("update.xsd", update),
        ("logical.xsd", logical),
        ("base-types.xsd", base_types),
        ("patch-blob.xsd", patch_blob),
    ];
    let imports: Vec<(String, PathBuf)> = files
        .iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            let ns = text.split("targetNamespace=\"").nth(1).unwrap().split('"').next().unwrap();
            (ns.to_string(), path)
        })
        .chain(
            [
                ("BaseApplicabilityRules", "BaseApplicabilityRules.xsd"),
                ("MsiApplicabilityRules", "MsiApplicabilityRules.xsd"),
            ]
            .map(|(ns, file)| {
                (
                    format!("http://schemas.microsoft.com/msus/2002/12/{ns}"),
                    conformance.join("schemas").join(file),
                )
            }),
        )
        .collect();
    let wrapper = dir.join("rules.xsd");
    let lines: String = imports
        .iter()
        .map(|(ns, path)| {
            format!(r#"<import namespace="{ns}" schemaLocation="{}"/>"#, path.display())
        })
        .collect();
    std::fs::write(
        &wrapper,
        format!("<schema {XS} targetNamespace=\"urn:ferry:rules\">{lines}</schema>"),
    )
    .unwrap();
    wrapper
}

/// `xmllint --schema` on the document's `ApplicabilityRules`, as the document has it (every rule
/// element declares its namespace; the `upd` prefix comes from the root, added here).
fn validate_rules(schema: &Path, document: &str, name: &str) -> Result<(), String> {
    let p = parsed(document);
    let span = p.update.applicability_rules.clone().expect("rules");
    let rules = span_text(document.as_bytes(), &span).replacen(
        "<upd:ApplicabilityRules>",
        r#"<upd:ApplicabilityRules xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update">"#,
        1,
    );
    let file = schema.with_file_name(format!("{name}.rules.xml"));
    std::fs::write(&file, &rules).unwrap();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema)
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}\n{rules}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// What a real WSUS 2025 serves as the Extended fragment of a locally published MSI, with this
/// test's values: the attributes Ferry writes on `Properties` in WSUS's order, less those
/// fragments drop.
#[test]
fn an_msi_update_parses_and_derives_fragments_as_wsus_local_publishing_does() {
    let installer = Installer::Msi(
        MsiInstaller::new("notes.msi", notes_product(), Some("ALLUSERS=1")).unwrap(),
    );
    let update = PublishedUpdate::new(new_update(installer)).unwrap();
    let document = update.document();
    let p = parsed(&document);
    let u = &p.update;
    assert_eq!((u.identity.update_id, u.identity.revision_number), (guid(UPDATE_ID), 100));
    assert_eq!(u.update_type, UpdateType::Software);
    assert!(u.explicitly_deployable);
    assert_eq!(u.title(), Some("Contoso Notes 1.2.3"));
    assert_eq!(u.kb_article_ids, ["900123"]);
    assert_eq!(u.msrc_severity.as_deref(), Some("Important"));
    assert_eq!(u.superseded_update_ids, [guid("5d1a0f3e-7b44-4c1e-9e0a-3c2b1a000000")]);
    let categories: Vec<(Vec<Guid>, bool)> =
        u.prerequisites.iter().map(|c| (c.update_ids.clone(), c.is_category)).collect();
    assert_eq!(
        categories,
        [(vec![contoso().id()], true), (vec![Classification::Updates.id()], true)]
    );
    let file = &u.files[0];
    let expected = payload(b"the signed cab's bytes");
    assert_eq!(file.file_name, format!("{UPDATE_ID}_1.cab"));
    assert_eq!(
        (file.size, file.sha1),
        (expected.size(), Sha1Digest(sha1::Sha1::digest(b"the signed cab's bytes").into()))
    );
    assert_eq!(
        file.sha256,
        Some(Sha256Digest(sha2::Sha256::digest(b"the signed cab's bytes").into()))
    );
    assert_eq!(u.handler_data_type.as_deref(), Some("msp:WindowsInstallerApp"));
    let localized = u.localized_in("en").unwrap();
    assert_eq!(
        localized.description.as_deref(),
        Some("Notes for the plant floor.\nSecond line & more.")
    );
    assert_eq!(
        localized.more_info_url.as_deref(),
        Some("https://contoso.example/notes?v=1.2.3&lang=en")
    );

    let (sha1, sha256) = (file.sha1.to_base64(), file.sha256.unwrap().to_base64());
    let size = expected.size();
    assert_eq!(
        p.fragments.extended,
        format!(
            r#"<ExtendedProperties DefaultPropertiesLanguage="en" IsLocallyPublished="true" MinDownloadSize="{size}" MaxDownloadSize="{size}" Handler="http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsInstaller" MsrcSeverity="Important" CanSourceBeRequired="false"><InstallationBehavior CanRequestUserInput="false" RequiresNetworkConnectivity="false" Impact="Normal" RebootBehavior="CanRequestReboot" /><UninstallationBehavior CanRequestUserInput="false" RequiresNetworkConnectivity="false" Impact="Normal" RebootBehavior="CanRequestReboot" /><KBArticleID>900123</KBArticleID></ExtendedProperties><Files><File Digest="{sha1}" FileName="{UPDATE_ID}_1.cab" Size="{size}" Modified="2026-12-04T07:30:15.000Z" DigestAlgorithm="SHA1"><AdditionalDigest Algorithm="SHA256">{sha256}</AdditionalDigest></File></Files><HandlerSpecificData type="msp:WindowsInstallerApp"><MsiData ProductCode="{{12345678-1234-4234-8234-123456789ABC}}" MsiFile="notes.msi" CommandLine="ALLUSERS=1" /></HandlerSpecificData>"#
        )
    );
    assert_eq!(
        core_rules(&p),
        r#"<ApplicabilityRules><IsInstalled><m.MsiProductInstalled ProductCode="{12345678-1234-4234-8234-123456789ABC}" VersionMin="1.2.3" /></IsInstalled><IsInstallable><Not><m.MsiProductInstalled ProductCode="{12345678-1234-4234-8234-123456789ABC}" VersionMin="1.2.3" /></Not></IsInstallable></ApplicabilityRules>"#
    );
    assert!(p.fragments.core.starts_with(&format!(
        r#"<UpdateIdentity UpdateID="{UPDATE_ID}" RevisionNumber="100" /><Properties UpdateType="Software" ExplicitlyDeployable="true" /><Relationships><SupersededUpdates>"#
    )));
    assert!(p.fragments.localized("en").unwrap().contains("<Title>Contoso Notes 1.2.3</Title>"));
    assert_eq!(document, update.document(), "the same input gives the same document");
}

#[test]
fn an_msp_update_targets_its_products() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.msp");
    build_msp(&path, TARGETS, PATCH);
    let patch = MspPatch::read_file(&path).unwrap();
    let update = PublishedUpdate::new(new_update(Installer::Msp(
        MspInstaller::new("notes.msp", patch).unwrap(),
    )))
    .unwrap();
    let p = parsed(&update.document());
    assert_eq!(p.update.handler_data_type.as_deref(), Some("msp:WindowsInstaller"));
    assert_eq!(p.update.files[0].patching_type.as_deref(), Some("SelfContained"));
    assert!(p.fragments.extended.ends_with(&format!(
        r#"<HandlerSpecificData type="msp:WindowsInstaller"><MspData FullFilePatchCode="{PATCH}" /></HandlerSpecificData>"#
    )));
    let [a, b] =
        ["{12345678-1234-4234-8234-123456789ABC}", "{0A99450E-D4DC-4488-94FD-EF652FAC6466}"];
    let installed = |t: &str| {
        format!(r#"<m.MsiPatchInstalledForProduct PatchCode="{PATCH}" ProductCode="{t}" />"#)
    };
    assert_eq!(
        core_rules(&p),
        format!(
            r#"<ApplicabilityRules><IsInstalled><Or>{ia}{ib}</Or></IsInstalled><IsInstallable><And><Or><m.MsiProductInstalled ProductCode="{a}" /><m.MsiProductInstalled ProductCode="{b}" /></Or><Not><Or>{ia}{ib}</Or></Not></And></IsInstallable></ApplicabilityRules>"#,
            ia = installed(a),
            ib = installed(b)
        )
    );
}

/// Each detection rule an operator can give an EXE, and the rule element it becomes in Core.
fn detection_cases() -> Vec<(DetectRule, &'static str)> {
    let key = |view32| RegistryKey::new(r"SOFTWARE\Contoso\Notes", view32).unwrap();
    let product: ProductCode = "{0A99450E-D4DC-4488-94FD-EF652FAC6466}".parse().unwrap();
    vec![
        (
            DetectRule::FileExists(
                FilePath::new(Some(KnownFolder::ProgramFiles), r"\Contoso\notes.exe").unwrap(),
            ),
            r#"<b.FileExists Path="\Contoso\notes.exe" Csidl="38" />"#,
        ),
        (
            DetectRule::FileVersion {
                file: FilePath::new(None, r"C:\Tools\notes.exe").unwrap(),
                comparison: Comparison::GreaterThanOrEqualTo,
                version: "2.1".parse().unwrap(),
            },
            r#"<b.FileVersion Path="C:\Tools\notes.exe" Comparison="GreaterThanOrEqualTo" Version="2.1.0.0" />"#,
        ),
        (
            DetectRule::RegistryKeyExists(key(true)),
            r#"<b.RegKeyExists Key="HKEY_LOCAL_MACHINE" Subkey="SOFTWARE\Contoso\Notes" RegType32="true" />"#,
        ),
        (
            DetectRule::registry_value(key(false), "InstallDir").unwrap(),
            r#"<b.RegValueExists Key="HKEY_LOCAL_MACHINE" Subkey="SOFTWARE\Contoso\Notes" Value="InstallDir" />"#,
        ),
        (
            DetectRule::registry_version(
                key(false),
                "Version",
                Comparison::EqualTo,
                "2.1.0.7".parse().unwrap(),
            )
            .unwrap(),
            r#"<b.RegSzToVersion Key="HKEY_LOCAL_MACHINE" Subkey="SOFTWARE\Contoso\Notes" Value="Version" Comparison="EqualTo" Data="2.1.0.7" />"#,
        ),
        (
            DetectRule::MsiProductInstalled(
                MsiProductRule::new(
                    product,
                    Some("1.0".parse().unwrap()),
                    Some("2.0".parse().unwrap()),
                    Some(Lcid(1033)),
                )
                .unwrap(),
            ),
            r#"<m.MsiProductInstalled ProductCode="{0A99450E-D4DC-4488-94FD-EF652FAC6466}" VersionMax="2.0" VersionMin="1.0" Language="1033" />"#,
        ),
    ]
}

#[test]
fn exe_detection_rules_become_the_rule_elements_clients_evaluate() {
    for (rule, element) in detection_cases() {
        let update = PublishedUpdate::new(new_update(exe(vec![rule]))).unwrap();
        let p = parsed(&update.document());
        assert_eq!(
            core_rules(&p),
            format!(
                "<ApplicabilityRules><IsInstalled>{element}</IsInstalled><IsInstallable><Not>{element}</Not></IsInstallable></ApplicabilityRules>"
            )
        );
    }
    let all: Vec<DetectRule> = detection_cases().into_iter().map(|(r, _)| r).collect();
    let mut new = new_update(exe(all));
    new.details.prerequisites = vec![
        PrerequisiteGroup::any_of(vec![
            guid("72e7624a-5b00-45d2-b92f-e561c0a6a160"),
            guid("a3c2375d-0c8a-42f9-bce0-28333e198407"),
        ])
        .unwrap(),
    ];
    let document = PublishedUpdate::new(new).unwrap().document();
    let p = parsed(&document);
    let elements: String = detection_cases().iter().map(|(_, e)| *e).collect();
    assert_eq!(
        core_rules(&p),
        format!(
            "<ApplicabilityRules><IsInstalled><And>{elements}</And></IsInstalled><IsInstallable><Not><And>{elements}</And></Not></IsInstallable></ApplicabilityRules>"
        )
    );
    let clause = p.update.prerequisites.last().unwrap();
    assert!(!clause.is_category && clause.update_ids.len() == 2);
    assert!(p.fragments.extended.contains(
        r#"<HandlerSpecificData type="cmd:CommandLineInstallation"><InstallCommand Program="setup.exe" Arguments="/S /norestart" RebootByDefault="false" DefaultResult="Failed"><ReturnCode Code="0" Result="Succeeded" /><ReturnCode Code="3010" Result="Succeeded" Reboot="true" /><ReturnCode Code="1603" Result="Failed" /></InstallCommand></HandlerSpecificData>"#
    ), "{}", p.fragments.extended);
    assert!(p.fragments.extended.contains(r#"Handler="http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CommandLineInstallation""#));
    assert!(!p.fragments.extended.contains("UninstallationBehavior"), "an EXE has no uninstall");
}

#[test]
fn applicability_rules_are_valid_against_the_rule_schemas() {
    if require(&["xmllint"]).is_none() {
        return;
    }
    let conformance = crate::conformance_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let schema = schemas(dir.path(), &conformance);
    let msp_dir = tempfile::tempdir().unwrap();
    let msp_path = msp_dir.path().join("notes.msp");
    build_msp(&msp_path, TARGETS, PATCH);
    let mut installers = vec![
        ("msi", Installer::Msi(MsiInstaller::new("notes.msi", notes_product(), None).unwrap())),
        (
            "msp",
            Installer::Msp(
                MspInstaller::new("notes.msp", MspPatch::read_file(&msp_path).unwrap()).unwrap(),
            ),
        ),
        ("exe-all", exe(detection_cases().into_iter().map(|(r, _)| r).collect())),
    ];
    for (i, (rule, _)) in detection_cases().into_iter().enumerate() {
        installers
            .push((["exe-0", "exe-1", "exe-2", "exe-3", "exe-4", "exe-5"][i], exe(vec![rule])));
    }
    for (name, installer) in installers {
        let document = PublishedUpdate::new(new_update(installer)).unwrap().document();
        validate_rules(&schema, &document, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The schemas do check: a misspelt attribute or comparison is refused.
        let broken = document.replacen("ProductCode=", "ProductKode=", 1).replacen(
            "Comparison=\"",
            "Comparison=\"Roughly",
            1,
        );
        if broken != document {
            assert!(validate_rules(&schema, &broken, &format!("{name}-broken")).is_err(), "{name}");
        }
    }
}

#[test]
fn vendor_and_product_categories_are_category_documents_with_stable_ids() {
    let product = contoso();
    let at = CategoryRevision { revision: 100, created: at(1), publisher_id: guid(PUBLISHER) };
    let vendor_doc = vendor_document(product.vendor(), &at);
    let product_doc = product_document(&product, &at);
    let vendor = parsed(&vendor_doc);
    assert_eq!(vendor.update.update_type, UpdateType::Category);
    assert_eq!(vendor.update.category_kind, Some(CategoryKind::Company));
    assert_eq!(vendor.update.identity.update_id, product.vendor().id());
    assert_eq!(vendor.update.title(), Some("Contoso Ltd"));
    assert!(vendor.update.prerequisites.is_empty());
    let p = parsed(&product_doc);
    assert_eq!(p.update.category_kind, Some(CategoryKind::Product));
    assert_eq!(p.update.identity.update_id, product.id());
    assert_eq!(p.update.prerequisites.len(), 1);
    assert!(p.update.prerequisites[0].is_category);
    assert_eq!(p.update.prerequisites[0].update_ids, [product.vendor().id()]);
    assert!(p.fragments.extended.contains(r#"<CategoryInformation CategoryType="Product""#));
    assert!(
        vendor.fragments.core.ends_with(
            "<ApplicabilityRules><IsInstalled><True /></IsInstalled></ApplicabilityRules>"
        )
    );

    // Derived ids: the same names give the same ids on every call (and either side of the
    // gap); other names give others; the same product name under two vendors is two products.
    let named = |v: &str, p: &str| {
        Product::new(Vendor::new(CategoryName::new(v).unwrap()), CategoryName::new(p).unwrap())
    };
    assert_eq!(named("Contoso Ltd", "Contoso Notes"), contoso());
    assert_eq!(named("contoso ltd", "CONTOSO NOTES").id(), contoso().id());
    assert_ne!(named("Fabrikam", "Contoso Notes").id(), contoso().id());
    assert_ne!(named("Contoso Ltd", "Contoso Paint").id(), contoso().id());
    assert_ne!(
        named("Contoso Ltd", "Notes").vendor().id(),
        named("Fabrikam", "Notes").vendor().id()
    );
    assert_eq!(vendor_doc, vendor_document(named("Contoso Ltd", "x").vendor(), &at));
    // Ids the caller passes win.
    let given = guid("7c40e8c2-01ae-47f5-9af2-6e75a0582518");
    assert_eq!(Vendor::with_id(CategoryName::new("Local Publisher").unwrap(), given).id(), given);
}

#[test]
fn bad_update_descriptions_are_refused() {
    let rule = || vec![DetectRule::FileExists(FilePath::new(None, r"C:\x.exe").unwrap())];
    assert_eq!(
        ExeInstaller::new("setup.exe", Some("/S"), vec![], vec![]).unwrap_err(),
        InvalidUpdate::NoDetection
    );
    assert!(ExeInstaller::new("setup.exe", None, vec![], rule()).is_ok());
    let msi = || Installer::Msi(MsiInstaller::new("notes.msi", notes_product(), None).unwrap());
    let refused = |change: &dyn Fn(&mut NewUpdate)| {
        let mut new = new_update(msi());
        change(&mut new);
        PublishedUpdate::new(new).unwrap_err()
    };
    assert_eq!(
        refused(&|u| u.details.title = "   ".into()),
        InvalidUpdate::Empty { field: "title" }
    );
    assert!(matches!(
        refused(&|u| u.details.title = "x".repeat(201)),
        InvalidUpdate::TooLong { .. }
    ));
    assert!(matches!(
        refused(&|u| u.details.title = "a\u{1}b".into()),
        InvalidUpdate::ControlCharacter { .. }
    ));
    // A title is one line: listings show one update per line.
    assert!(matches!(
        refused(&|u| u.details.title = "one\ntwo".into()),
        InvalidUpdate::ControlCharacter { .. }
    ));
    assert!(matches!(
        refused(&|u| u.details.more_info_url = Some("javascript:alert(1)".into())),
        InvalidUpdate::MoreInfoUrl(_)
    ));
    assert_eq!(refused(&|u| u.revision = 0), InvalidUpdate::Revision(0));
    assert!(matches!(
        refused(&|u| u.details.supersedes.push(u.id)),
        InvalidUpdate::SupersedesItself(_)
    ));
    assert!(MsiInstaller::new("../notes.msi", notes_product(), None).is_err());
    assert!(MsiInstaller::new("notes.msi", notes_product(), Some("A=1\nB=2")).is_err());
    assert!(PrerequisiteGroup::any_of(vec![]).is_err());
    assert!(CategoryName::new(" ").is_err());
    let digest = (Sha1Digest([0; 20]), Sha256Digest([0; 32]));
    assert_eq!(
        Payload::new("x.cab", 0, digest.0, digest.1, at(1)).unwrap_err(),
        InvalidUpdate::EmptyPayload
    );
    let patch =
        MspPatch { patch_code: PATCH.parse().unwrap(), obsoletes: vec![], target_products: vec![] };
    assert_eq!(MspInstaller::new("x.msp", patch).unwrap_err(), InvalidUpdate::NoTargetProduct);
    assert!(matches!(
        MsiProductRule::new(
            PATCH.parse().unwrap(),
            Some("2.0".parse().unwrap()),
            Some("1.5".parse().unwrap()),
            None
        ),
        Err(InvalidUpdate::VersionRange { .. })
    ));
}
