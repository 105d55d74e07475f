//! The SQLite schema, as numbered migrations (`PRAGMA user_version` is the number applied).
//!
//! Invariant: a migration, once released, never changes; new needs get a new migration.

/// Migrations in order; `MIGRATIONS[i]` brings the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    V1_CATALOG,
    V2_BUNDLES,
    V3_CLIENTS,
    V4_SERVER_SYNC,
    V5_ADMINISTRATION,
    V6_LATEST_INDEX,
    V7_EXPORT_JOURNAL,
    V8_CLIENT_GROUPS,
    V9_LANGUAGES,
    V10_EVENTS_AT_MOST,
    V11_PUBLISHED,
];

/// Version 1: the catalog (revisions, fragments, relationships, files) and settings.
const V1_CATALOG: &str = r#"
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per revision. revision_id is the server-local id clients cache: AUTOINCREMENT
-- guarantees an id is never handed out twice, even after deletes.
CREATE TABLE revisions (
    revision_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    update_id             TEXT    NOT NULL,          -- lower-case GUID
    revision_number       INTEGER NOT NULL,
    update_type           TEXT    NOT NULL,          -- Software | Driver | Detectoid | Category
    category_kind         TEXT,                      -- Company | ProductFamily | Product | UpdateClassification | ...
    is_latest             INTEGER NOT NULL DEFAULT 0,-- the newest revision of its update: what clients see
    is_bundle             INTEGER NOT NULL,
    explicitly_deployable INTEGER NOT NULL,
    publication_state     TEXT,
    title                 TEXT,
    kb_article            TEXT,
    security_bulletin     TEXT,
    msrc_severity         TEXT,
    creation_date         TEXT,
    handler               TEXT,
    default_language      TEXT,
    core_size             INTEGER NOT NULL,
    document_size         INTEGER NOT NULL,
    fragments_digest      BLOB    NOT NULL,          -- XXH3-128 of what clients see, for re-ingest checks
    changed_stamp         INTEGER NOT NULL,          -- catalog stamp of the batch that stored it
    ingested_at           TEXT    NOT NULL,
    UNIQUE (update_id, revision_number)
);
CREATE INDEX revisions_latest ON revisions (is_latest, update_type);
CREATE INDEX revisions_kb ON revisions (kb_article);
CREATE INDEX revisions_stamp ON revisions (changed_stamp);

-- The full document and the fragments ready to serve, apart so scans of revisions stay small.
-- All three are zstd frames (update XML compresses about tenfold; the store and the disk
-- bandwidth of an ingest shrink with it).
CREATE TABLE revision_documents (
    revision_id INTEGER PRIMARY KEY REFERENCES revisions (revision_id),
    document    BLOB NOT NULL,
    core        BLOB NOT NULL,
    extended    BLOB NOT NULL
);

CREATE TABLE localized_properties (
    revision_id INTEGER NOT NULL REFERENCES revisions (revision_id),
    language    TEXT    NOT NULL,
    title       TEXT,
    description TEXT,
    fragment    BLOB    NOT NULL,
    PRIMARY KEY (revision_id, language)
) WITHOUT ROWID;

-- Prerequisites: AND of clauses, each an OR of update ids.
CREATE TABLE prerequisites (
    revision_id INTEGER NOT NULL REFERENCES revisions (revision_id),
    clause      INTEGER NOT NULL,
    update_id   TEXT    NOT NULL,
    is_category INTEGER NOT NULL,
    PRIMARY KEY (revision_id, clause, update_id)
) WITHOUT ROWID;
-- (no index by update_id: reverse lookups scan or run in memory)

-- Bundled updates: exact member revisions.
CREATE TABLE bundle_members (
    revision_id            INTEGER NOT NULL REFERENCES revisions (revision_id),
    clause                 INTEGER NOT NULL,
    member_update_id       TEXT    NOT NULL,
    member_revision_number INTEGER NOT NULL,
    PRIMARY KEY (revision_id, clause, member_update_id, member_revision_number)
) WITHOUT ROWID;
CREATE INDEX bundle_members_by_member ON bundle_members (member_update_id, member_revision_number);

CREATE TABLE supersedences (
    revision_id          INTEGER NOT NULL REFERENCES revisions (revision_id),
    superseded_update_id TEXT    NOT NULL,
    PRIMARY KEY (revision_id, superseded_update_id)
) WITHOUT ROWID;


-- Payload files, addressed by SHA-1 as WSUS content is.
CREATE TABLE files (
    sha1          BLOB PRIMARY KEY,
    sha256        BLOB,
    size          INTEGER NOT NULL,
    file_name     TEXT    NOT NULL,
    extension     TEXT    NOT NULL,
    modified      TEXT,
    patching_type TEXT,
    source_url    TEXT,                              -- where the upstream said it can be fetched
    present       INTEGER NOT NULL DEFAULT 0         -- verified content is in the content tree
);

CREATE TABLE revision_files (
    revision_id INTEGER NOT NULL REFERENCES revisions (revision_id),
    sha1        BLOB    NOT NULL REFERENCES files (sha1),
    PRIMARY KEY (revision_id, sha1)
) WITHOUT ROWID;
CREATE INDEX revision_files_by_sha1 ON revision_files (sha1);
"#;

/// Version 2: what crosses the air gap. Trusted keys and imports (isolated side), channel
/// state (connected side), updates a bundle removed.
const V2_BUNDLES: &str = r#"
-- Public keys whose bundles this store imports (minisign format, as written by `ferry keygen`).
CREATE TABLE trusted_keys (
    key_id     TEXT PRIMARY KEY,            -- 16 upper-case hex digits, as minisign prints it
    public_key TEXT NOT NULL,               -- the base64 line of the .pub file
    comment    TEXT,
    added_at   TEXT NOT NULL
);

-- Every bundle imported, in order. The sequence rules read this.
CREATE TABLE imports (
    bundle_id       TEXT PRIMARY KEY,
    channel         TEXT    NOT NULL,
    sequence        INTEGER NOT NULL,
    base_sequence   INTEGER,
    signer_key_id   TEXT    NOT NULL,
    created         TEXT    NOT NULL,
    imported_at     TEXT    NOT NULL,
    revisions_added INTEGER NOT NULL,
    files_added     INTEGER NOT NULL,
    bytes           INTEGER NOT NULL,
    manifest        TEXT    NOT NULL        -- the signed manifest, for reports
);
CREATE INDEX imports_by_channel ON imports (channel, sequence);

-- Updates a bundle withdrew (expired upstream or no longer selected): never offered to clients.
CREATE TABLE removed_updates (
    update_id  TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    bundle_id  TEXT NOT NULL,
    removed_at TEXT NOT NULL
);

-- Connected side: the bundles each channel produced and what each carried.
CREATE TABLE export_bundles (
    channel       TEXT    NOT NULL,
    sequence      INTEGER NOT NULL,
    bundle_id     TEXT    NOT NULL UNIQUE,
    base_sequence INTEGER,
    created       TEXT    NOT NULL,
    path          TEXT    NOT NULL,
    PRIMARY KEY (channel, sequence)
);

CREATE TABLE export_carried (
    channel  TEXT    NOT NULL,
    sequence INTEGER NOT NULL,
    kind     TEXT    NOT NULL,              -- 'revision' (UpdateID/RevisionNumber) or 'file' (SHA-1 hex) or 'removal' (UpdateID)
    item     TEXT    NOT NULL,
    PRIMARY KEY (channel, kind, item, sequence)
) WITHOUT ROWID;
"#;

/// Version 3: what the WSUS-compatible server keeps: target groups, computers, approvals,
/// declines and the events clients report.
const V3_CLIENTS: &str = r#"
CREATE TABLE target_groups (
    group_id   TEXT PRIMARY KEY,               -- lower-case GUID
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    parent_id  TEXT REFERENCES target_groups (group_id),
    is_builtin INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
INSERT INTO target_groups (group_id, name, parent_id, is_builtin, created_at) VALUES
    ('a0a08746-4dbe-4a37-9adf-9e7652c0b421', 'All Computers', NULL, 1, '1970-01-01T00:00:00Z'),
    ('b73ca6ed-5727-47f3-84de-015e03f6a88a', 'Unassigned Computers', 'a0a08746-4dbe-4a37-9adf-9e7652c0b421', 1, '1970-01-01T00:00:00Z');

CREATE TABLE computers (
    computer_id      TEXT PRIMARY KEY,         -- SusClientId, lower-case
    dns_name         TEXT NOT NULL,
    requested_groups TEXT,                     -- client-side targeting, as the client sent it
    info             TEXT,                     -- RegisterComputer's ComputerInfo (JSON object)
    os_description   TEXT,
    registered_at    TEXT,
    first_seen_at    TEXT NOT NULL,
    last_contact_at  TEXT NOT NULL,
    last_sync_at     TEXT,
    last_report_at   TEXT
);

CREATE TABLE computer_groups (
    computer_id TEXT NOT NULL REFERENCES computers (computer_id),
    group_id    TEXT NOT NULL REFERENCES target_groups (group_id),
    PRIMARY KEY (computer_id, group_id)
) WITHOUT ROWID;

-- An approval is a deployment of an update (its newest revision) to a group.
CREATE TABLE approvals (
    approval_id     INTEGER PRIMARY KEY AUTOINCREMENT,   -- the client-visible deployment id
    deployment_guid TEXT    NOT NULL UNIQUE,
    update_id       TEXT    NOT NULL,
    group_id        TEXT    NOT NULL REFERENCES target_groups (group_id),
    action          TEXT    NOT NULL,                    -- Install | Uninstall | Block
    deadline        TEXT,
    admin           TEXT,
    changed_at      TEXT    NOT NULL,
    changed_stamp   INTEGER NOT NULL,
    UNIQUE (update_id, group_id)
);

CREATE TABLE declined_updates (
    update_id     TEXT PRIMARY KEY,
    declined_at   TEXT NOT NULL,
    admin         TEXT,
    changed_stamp INTEGER NOT NULL
);

-- Approvals and declines removed, so replica downstreams and clients learn about them.
CREATE TABLE approval_changes (
    changed_stamp   INTEGER NOT NULL,
    deployment_guid TEXT    NOT NULL,
    update_id       TEXT    NOT NULL,
    group_id        TEXT    NOT NULL,
    change          TEXT    NOT NULL                     -- approved | removed | declined | undeclined
);

CREATE TABLE events (
    event_instance_id TEXT PRIMARY KEY,
    computer_id       TEXT    NOT NULL,
    event_id          INTEGER NOT NULL,
    source_id         INTEGER NOT NULL,
    update_id         TEXT    NOT NULL,
    revision_number   INTEGER NOT NULL,
    win32_hresult     INTEGER NOT NULL,
    time_at_target    TEXT,
    received_at       TEXT    NOT NULL,
    app_name          TEXT,
    replacement_strings TEXT,                            -- JSON array
    misc_data         TEXT                               -- JSON array ("Tag=Value")
);
CREATE INDEX events_by_computer ON events (computer_id, event_id);
CREATE INDEX events_by_update ON events (update_id);
"#;

/// Version 4: server-server sync. Downstream WSUS servers that sync from this store, and an
/// index for the upstream's category filter.
const V4_SERVER_SYNC: &str = r#"
CREATE TABLE downstream_servers (
    server_id     TEXT PRIMARY KEY,             -- the downstream's ServerId (lower-case GUID)
    name          TEXT NOT NULL,                -- its FQDN, as it presented itself
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL
);
CREATE INDEX prerequisites_categories ON prerequisites (is_category, revision_id);
"#;

/// Version 5: administration. Auto-approval rules, applied on every import.
const V5_ADMINISTRATION: &str = r#"
CREATE TABLE approval_rules (
    rule_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    enabled         INTEGER NOT NULL DEFAULT 1,
    classifications TEXT    NOT NULL,           -- JSON array of classification GUIDs; empty: any
    products        TEXT    NOT NULL,           -- JSON array of product GUIDs; empty: any
    group_id        TEXT    NOT NULL REFERENCES target_groups (group_id),
    action          TEXT    NOT NULL,           -- Install | Uninstall
    deadline_days   INTEGER,
    created_at      TEXT    NOT NULL
);
"#;

/// Version 6: the index of latest revisions covers only the latest ones. The V1 index on
/// `(is_latest, update_type)` let SQLite answer `update_id = ? AND is_latest = 1` by walking every
/// latest revision instead of the few rows of one update, which made each newer revision's ingest
/// cost grow with the catalog.
const V6_LATEST_INDEX: &str = r#"
DROP INDEX revisions_latest;
CREATE INDEX revisions_latest ON revisions (update_type) WHERE is_latest = 1;
"#;

/// Version 7: an export records its bundle as pending before the directory gets its final name,
/// and confirms it after. A pending record is settled by the next export of the channel: kept
/// when the directory holds that bundle, dropped (with what it carried) when it does not. Before,
/// an export killed between the rename and the record left a bundle the channel never counted.
const V7_EXPORT_JOURNAL: &str = r#"
ALTER TABLE export_bundles ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
"#;

/// Version 8: groups that client-side targeting created, counted against the limit of groups
/// clients may create (a client names groups without authenticating).
const V8_CLIENT_GROUPS: &str = r#"
ALTER TABLE target_groups ADD COLUMN created_by_client INTEGER NOT NULL DEFAULT 0;
"#;

/// Version 9: the languages a language-specific update is for (`Properties/Language`,
/// space-separated; NULL for language-neutral updates). Filled from the stored documents by
/// `SqliteStore::migrate` (`backfill_languages`) in the same transaction.
const V9_LANGUAGES: &str = r#"
ALTER TABLE revisions ADD COLUMN languages TEXT;
"#;

/// Version 10: how many events a computer has at most, so that a report need not count them.
const V10_EVENTS_AT_MOST: &str = r#"
-- At least the computer's events: reports add what they stored; when it passes the limit the
-- oldest events go and they are counted again.
ALTER TABLE computers ADD COLUMN events_at_most INTEGER NOT NULL DEFAULT 0;
UPDATE computers SET events_at_most =
    (SELECT COUNT(*) FROM events WHERE events.computer_id = computers.computer_id);
"#;

/// The migration after which `backfill_languages` runs.
pub const LANGUAGES_MIGRATION: usize = 9;

/// Version 11: updates published here (`ferry publish`).
const V11_PUBLISHED: &str = r#"
CREATE TABLE published_updates (
    update_id      TEXT PRIMARY KEY,      -- lower-case GUID; its revisions are in revisions
    vendor         TEXT NOT NULL,
    product        TEXT NOT NULL,
    installer      TEXT NOT NULL,         -- msi | msp | exe
    installer_name TEXT NOT NULL,
    version        TEXT,
    published_at   TEXT NOT NULL
);
"#;

#[cfg(test)]
mod tests {
    use crate::store::SqliteStore;

    fn plan(store: &SqliteStore, sql: &str) -> Vec<String> {
        let mut stmt = store.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Plans do not depend on the values bound; NULL fills every parameter.
        let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
        stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Regression: with the V1 index, retiring older revisions walked every latest revision of
    /// the catalog, so a sync full of newer revisions slowed down as the catalog grew.
    #[test]
    fn lookups_of_one_update_search_by_update_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_or_create(dir.path()).unwrap();
        for sql in [
            super::super::ingest::RETIRE_OLDER_REVISIONS,
            super::super::rules::PREREQUISITE_OPTIONS,
            "SELECT revision_id FROM revisions WHERE update_id = ?1 AND is_latest = 1",
        ] {
            let plan = plan(&store, sql);
            assert!(
                plan.iter().any(|step| step.contains("sqlite_autoindex_revisions_1 (update_id=?)")),
                "{sql}\n{plan:#?}"
            );
            assert!(
                !plan.iter().any(|step| step.contains("revisions_latest")
                    || step.contains("prerequisites_categories")),
                "{sql}\n{plan:#?}"
            );
        }
    }

    #[test]
    fn listing_latest_updates_by_type_uses_the_latest_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_or_create(dir.path()).unwrap();
        let plan = plan(
            &store,
            "SELECT update_id FROM revisions WHERE is_latest = 1 AND update_type IN ('Software', 'Driver')",
        );
        assert!(
            plan.iter().any(|step| step.contains("revisions_latest (update_type=?)")),
            "{plan:#?}"
        );
    }
}
