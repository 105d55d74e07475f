//! The real Microsoft Update categories a synthetic catalog is built on (WSUS-PROTOCOL.md §5.3).

use crate::catalog::Guid;

#[derive(Debug, Clone, Copy)]
pub struct RealCategory {
    pub id: &'static str,
    pub title: &'static str,
    pub kind: &'static str,
    /// The category this one requires (product → family → company).
    pub parent: Option<&'static str>,
}

pub const MICROSOFT: &str = "56309036-4c77-4dd9-951a-99ee9c246a94";
pub const WINDOWS: &str = "6964aab4-c5b5-43bd-a17d-ffb4346a8e1d";
pub const OFFICE: &str = "477b856e-65c4-4473-b621-a8b230bb70d9";

pub const WINDOWS_11: &str = "72e7624a-5b00-45d2-b92f-e561c0a6a160";
pub const DEFENDER: &str = "8c3fcc84-7410-4a95-8b89-a166a0190486";
pub const OOBE_ZDP: &str = "dd78b8a1-0b20-45c1-add6-4da72e9364cf";
pub const WINDOWS_10: &str = "a3c2375d-0c8a-42f9-bce0-28333e198407";
pub const WINDOWS_10_1903: &str = "b3c75dc1-155f-4be4-b015-3f1a91758e52";
pub const WINDOWS_10_LTSB: &str = "d2085b71-5f1f-43a9-880d-ed159016d5c6";
pub const WINDOWS_81: &str = "6407468e-edc7-4ecd-8c32-521f64cee65e";
pub const WINDOWS_7: &str = "bfe5b177-a086-47a0-b102-097e4fa1f807";
pub const SERVER_2008_R2: &str = "fdfe8200-9d98-44ba-a12a-772282bf60ef";
pub const SERVER_2016: &str = "569e8e8f-c6cd-42c8-92a3-efbb20a0f6f5";
pub const SERVER_2019: &str = "f702a48c-919b-45d6-9aef-ca4248d50397";
pub const SERVER_2022: &str = "71718f13-7324-4b0f-8f9e-2ca9dc978e53";
pub const SERVER_2025: &str = "b256987d-4693-4c87-955d-dbb9341205eb";
pub const OFFICE_2016: &str = "25aed893-7c2d-4a31-ae22-28ff8ac150ed";
pub const OFFICE_365: &str = "30eb551c-6288-4716-9a78-f300ec36d72b";

pub const CRITICAL: &str = "e6cf1350-c01b-414d-a61f-263d14d133b4";
pub const SECURITY: &str = "0fa1201d-4330-4fa8-8ae9-b877473b6441";
pub const DEFINITIONS: &str = "e0789628-ce08-4437-be74-2495b842f43b";
pub const UPDATES: &str = "cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83";
pub const ROLLUPS: &str = "28bc880e-0592-4cbf-8f95-c79b17911d5f";
pub const SERVICE_PACKS: &str = "68c5b0a3-d1a6-4553-ae49-01d3a7827828";
pub const FEATURE_PACKS: &str = "b54e7d24-7add-428f-8b75-90a396fa584f";
pub const TOOLS: &str = "b4832bd8-e735-4761-8daf-37f882276dab";
pub const DRIVERS: &str = "ebfc1fc5-71a4-4f7b-9aca-3b9a503104a0";
pub const UPGRADES: &str = "3689bdc8-b205-4af4-8d4a-a63924c5e9d5";

/// In the order a catalog needs them (parents first).
pub const REAL_CATEGORIES: &[RealCategory] = &[
    RealCategory { id: MICROSOFT, title: "Microsoft", kind: "Company", parent: None },
    RealCategory { id: WINDOWS, title: "Windows", kind: "ProductFamily", parent: Some(MICROSOFT) },
    RealCategory { id: OFFICE, title: "Office", kind: "ProductFamily", parent: Some(MICROSOFT) },
    RealCategory { id: WINDOWS_11, title: "Windows 11", kind: "Product", parent: Some(WINDOWS) },
    RealCategory {
        id: DEFENDER,
        title: "Microsoft Defender Antivirus",
        kind: "Product",
        parent: Some(WINDOWS),
    },
    RealCategory { id: OOBE_ZDP, title: "OOBE ZDP", kind: "Product", parent: Some(WINDOWS) },
    RealCategory { id: WINDOWS_10, title: "Windows 10", kind: "Product", parent: Some(WINDOWS) },
    RealCategory {
        id: WINDOWS_10_1903,
        title: "Windows 10, version 1903 and later",
        kind: "Product",
        parent: Some(WINDOWS),
    },
    RealCategory {
        id: WINDOWS_10_LTSB,
        title: "Windows 10 LTSB",
        kind: "Product",
        parent: Some(WINDOWS),
    },
    RealCategory { id: WINDOWS_81, title: "Windows 8.1", kind: "Product", parent: Some(WINDOWS) },
    RealCategory { id: WINDOWS_7, title: "Windows 7", kind: "Product", parent: Some(WINDOWS) },
    RealCategory {
        id: SERVER_2008_R2,
        title: "Windows Server 2008 R2",
        kind: "Product",
        parent: Some(WINDOWS),
    },
    RealCategory {
        id: SERVER_2016,
        title: "Windows Server 2016",
        kind: "Product",
        parent: Some(WINDOWS),
    },
    RealCategory {
        id: SERVER_2019,
        title: "Windows Server 2019",
        kind: "Product",
        parent: Some(WINDOWS),
    },
    RealCategory {
        id: SERVER_2022,
        title: "Microsoft Server operating system-21H2",
        kind: "Product",
        parent: Some(WINDOWS),
    },
    RealCategory {
        id: SERVER_2025,
        title: "Microsoft Server operating system-24H2",
        kind: "Product",
        parent: Some(WINDOWS),
    },
    RealCategory { id: OFFICE_2016, title: "Office 2016", kind: "Product", parent: Some(OFFICE) },
    RealCategory {
        id: OFFICE_365,
        title: "Office 365 Client",
        kind: "Product",
        parent: Some(OFFICE),
    },
    RealCategory {
        id: CRITICAL,
        title: "Critical Updates",
        kind: "UpdateClassification",
        parent: None,
    },
    RealCategory {
        id: SECURITY,
        title: "Security Updates",
        kind: "UpdateClassification",
        parent: None,
    },
    RealCategory {
        id: DEFINITIONS,
        title: "Definition Updates",
        kind: "UpdateClassification",
        parent: None,
    },
    RealCategory { id: UPDATES, title: "Updates", kind: "UpdateClassification", parent: None },
    RealCategory {
        id: ROLLUPS,
        title: "Update Rollups",
        kind: "UpdateClassification",
        parent: None,
    },
    RealCategory {
        id: SERVICE_PACKS,
        title: "Service Packs",
        kind: "UpdateClassification",
        parent: None,
    },
    RealCategory {
        id: FEATURE_PACKS,
        title: "Feature Packs",
        kind: "UpdateClassification",
        parent: None,
    },
    RealCategory { id: TOOLS, title: "Tools", kind: "UpdateClassification", parent: None },
    RealCategory { id: DRIVERS, title: "Drivers", kind: "UpdateClassification", parent: None },
    RealCategory { id: UPGRADES, title: "Upgrades", kind: "UpdateClassification", parent: None },
    RealCategory {
        id: "5c9376ab-8ce6-464a-b136-22113dd69801",
        title: "Applications",
        kind: "UpdateClassification",
        parent: None,
    },
    RealCategory {
        id: "434de588-ed14-48f5-8eed-a15e09a991f6",
        title: "Connectors",
        kind: "UpdateClassification",
        parent: None,
    },
    RealCategory {
        id: "e140075d-8433-45c3-ad87-e72345b36078",
        title: "Developer Kits",
        kind: "UpdateClassification",
        parent: None,
    },
    RealCategory {
        id: "9511d615-35b2-47bb-927f-f73d8e9260bb",
        title: "Guidance",
        kind: "UpdateClassification",
        parent: None,
    },
];

/// Products synthetic updates are spread over, with weights (current products dominate).
pub const PRODUCT_WEIGHTS: &[(&str, u32)] = &[
    (WINDOWS_11, 26),
    (DEFENDER, 14),
    (SERVER_2022, 9),
    (SERVER_2025, 9),
    (WINDOWS_10_1903, 9),
    (WINDOWS_10, 5),
    (SERVER_2019, 5),
    (OFFICE_2016, 6),
    (OFFICE_365, 6),
    (SERVER_2016, 3),
    (WINDOWS_81, 2),
    (WINDOWS_7, 2),
    (SERVER_2008_R2, 2),
    (WINDOWS_10_LTSB, 1),
    (OOBE_ZDP, 1),
];

pub fn category(id: &str) -> &'static RealCategory {
    REAL_CATEGORIES.iter().find(|c| c.id == id).expect("a known category")
}

pub fn guid(id: &str) -> Guid {
    Guid::parse(id).expect("category GUIDs in this table are valid")
}
