//! The names and namespaces of the SOAP requests WSUS clients and servers send (element names
//! from the real captures in `conformance/` and from what the parsers read, the protocols'
//! namespaces). A parsed tree holds these as `&'static str`: a request's elements cost no
//! allocation for their names, and no reference count shared between threads.

/// Sorted by bytes, for the reader (a test keeps it so, and without repeats).
pub const KNOWN: &[&str] = &[
    "Action",
    "AlsoPerformRegularSync",
    "Anchor",
    "AppName",
    "AuthInfo",
    "AuthorizationCookie",
    "BasicData",
    "BiosName",
    "BiosReleaseDate",
    "BiosRevision",
    "BiosVersion",
    "Body",
    "Build",
    "CachedDriverIDs",
    "CallerAttributes",
    "Categories",
    "CategoryId",
    "CategoryIdentifier",
    "CategoryRelationship",
    "ChangedUpdates",
    "Class",
    "Classifications",
    "ClientVersionBuildNumber",
    "ClientVersionMajorNumber",
    "ClientVersionMinorNumber",
    "ClientVersionQfeNumber",
    "CompatibleIDs",
    "ComputerBrand",
    "ComputerManufacturer",
    "ComputerModel",
    "ComputerSpec",
    "CookieData",
    "Deadline",
    "Delta",
    "Deployment",
    "Detail",
    "Device",
    "DeviceAttributes",
    "DeviceFlags",
    "DeviceType",
    "DnsName",
    "DriverRank",
    "DriverSyncNotNeeded",
    "DriverVerDate",
    "DriverVerVersion",
    "Enabled",
    "EncryptedData",
    "Envelope",
    "ErrorCode",
    "EventID",
    "EventInstanceID",
    "Expiration",
    "ExpressQuery",
    "ExtendedData",
    "ExtensionDriver",
    "ExtensionId",
    "FeatureScoreMatchingKey",
    "FileDigest",
    "FileDigestList",
    "FileLocations",
    "FilterCategoryIds",
    "FirmwareVersion",
    "GeoId",
    "GetAuthConfig",
    "GetAuthorizationCookie",
    "GetConfig",
    "GetConfig2",
    "GetConfigData",
    "GetCookie",
    "GetDeploymentsData",
    "GetDriverIdList",
    "GetDriverSetData",
    "GetExtendedUpdateInfo",
    "GetExtendedUpdateInfo2",
    "GetFileLocations",
    "GetRelatedRevisionsForUpdates",
    "GetRevisionIdList",
    "GetRollupConfiguration",
    "GetSdkAuthorizationCookie",
    "GetServerAuthConfig",
    "GetTimeStamp",
    "GetTimestamps",
    "GetUpdateData",
    "GetUpdateDecryptionData",
    "HardwareIDs",
    "Header",
    "ID",
    "Id",
    "IdAndDelta",
    "IndexOfAndGroup",
    "InstalledNonLeafUpdateIDs",
    "IsGeneric",
    "IsLeaf",
    "LanguageID",
    "LanguageUpdateList",
    "Languages",
    "LastChange",
    "LongLanguage",
    "Major",
    "Manufacturer",
    "MatchingComputerHWID",
    "MatchingID",
    "Message",
    "Minor",
    "MiscData",
    "MobileOperator",
    "Model",
    "NamespaceID",
    "NeedTwoGroupOutOfScopeUpdates",
    "NewConfigAnchor",
    "NewCookie",
    "NewProductType",
    "NewUpdates",
    "OEM",
    "OSBuildNumber",
    "OSDescription",
    "OSLocale",
    "OSLocaleID",
    "OSMajorVersion",
    "OSMinorVersion",
    "OSServicePackMajorNumber",
    "OSServicePackMinorNumber",
    "OSVersion",
    "OldProductType",
    "OtherCachedUpdateIDs",
    "OutOfScopeRevisionIDs",
    "PlugInID",
    "PlugInId",
    "PrivateData",
    "ProcessorArchitecture",
    "Product",
    "Products",
    "ProductsParameters",
    "ProtocolVersion",
    "Provider",
    "RegisterComputer",
    "ReplacementStrings",
    "ReportEventBatch",
    "ReportingEvent",
    "Revision",
    "RevisionNumber",
    "SequenceNumber",
    "ServicePackMajor",
    "ServicePackMinor",
    "ServiceUrl",
    "ShortLanguage",
    "Sid",
    "SkipProviderFiltering",
    "SkipSoftwareSync",
    "SourceID",
    "StartCategoryScan",
    "SuiteMask",
    "SyncCurrentVersionOnly",
    "SyncUpdates",
    "SystemMetrics",
    "SystemSpec",
    "TargetID",
    "TimeAtTarget",
    "Truncated",
    "UpdateClassification",
    "UpdateID",
    "UpdateIdentity",
    "Url",
    "Win32HResult",
    "Xml",
    "XmlUpdateBlobCompressed",
    "XmlUpdateFragmentType",
    "accountGuid",
    "accountName",
    "authCookies",
    "base64Binary",
    "callerAttributes",
    "clientId",
    "clientTime",
    "computerInfo",
    "configAnchor",
    "cookie",
    "currentTime",
    "deploymentAnchor",
    "detail",
    "deviceAttributes",
    "dnsName",
    "eventBatch",
    "extensionDrivers",
    "fileDigestList",
    "fileDigests",
    "fileUrls",
    "filter",
    "globalIDs",
    "guid",
    "http://schemas.xmlsoap.org/soap/envelope/",
    "http://www.microsoft.com/SoftwareDistribution",
    "http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService",
    "http://www.microsoft.com/SoftwareDistribution/Server/DssAuthWebService",
    "http://www.microsoft.com/SoftwareDistribution/Server/ReportingWebService",
    "http://www.microsoft.com/SoftwareDistribution/Server/SimpleAuthWebService",
    "http://www.w3.org/2001/XMLSchema",
    "http://www.w3.org/2001/XMLSchema-instance",
    "http://www.w3.org/2003/05/soap-envelope",
    "http://www.w3.org/XML/1998/namespace",
    "ids",
    "infoTypes",
    "installedDriver",
    "int",
    "lastChange",
    "locales",
    "oldCookie",
    "parameters",
    "protocolVersion",
    "requestedCategories",
    "revisionIDs",
    "string",
    "syncAnchor",
    "targetGroupName",
    "updateIds",
    "updates",
];

/// Slots of the lookup table: a power of two, more than twice [`KNOWN`]'s length, so probes
/// are short and always reach an empty slot.
const SLOTS: usize = 512;
const _: () = assert!(KNOWN.len() * 2 < SLOTS && SLOTS.is_power_of_two());

/// Open addressing over FNV-1a: 1 + the index in [`KNOWN`], 0 for an empty slot.
static TABLE: std::sync::LazyLock<[u16; SLOTS]> = std::sync::LazyLock::new(|| {
    let mut table = [0u16; SLOTS];
    for (i, name) in KNOWN.iter().enumerate() {
        let mut slot = hash(name.as_bytes());
        while table[slot] != 0 {
            slot = (slot + 1) % SLOTS;
        }
        table[slot] = i as u16 + 1;
    }
    table
});

fn hash(bytes: &[u8]) -> usize {
    let h = bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (h as usize) % SLOTS
}

/// The static copy of `name`, when it is one of [`KNOWN`].
pub fn known(name: &[u8]) -> Option<&'static str> {
    let table = &*TABLE;
    let mut slot = hash(name);
    loop {
        let entry = usize::from(table[slot]);
        let candidate = KNOWN.get(entry.checked_sub(1)?)?;
        if candidate.as_bytes() == name {
            return Some(candidate);
        }
        slot = (slot + 1) % SLOTS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_sorted_unique_and_found() {
        assert!(KNOWN.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()), "sorted, no repeats");
        for name in KNOWN {
            assert_eq!(known(name.as_bytes()), Some(*name));
        }
        for other in ["", "body", "SyncUpdatesX", "Envelop", "\u{0}"] {
            assert_eq!(known(other.as_bytes()), None, "{other:?}");
        }
    }
}
