//! The PostgreSQL schema, as numbered migrations (`schema_version` holds the number applied).
//! It holds what the SQLite schema holds, in PostgreSQL's types: flags are `boolean`, digests
//! and compressed documents `bytea`, counters `bigint`; ids that clients see (revision ids,
//! deployment ids) are `integer` identities, handed out by a sequence and never reused; times
//! stay RFC 3339 text, as the row types carry them.
//!
//! Invariant: a migration, once released, never changes; new needs get a new migration.

/// Migrations in order; `MIGRATIONS[i]` brings the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1_STORE, V2_EVENTS_AT_MOST, V3_PUBLISHED];

/// Version 1: everything the SQLite schema's nine migrations built, at once.
const V1_STORE: &str = r#"
CREATE TABLE settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- revision_id is the server-local id clients cache: an identity is never handed out twice,
-- even after deletes or rolled-back imports.
CREATE TABLE revisions (
    revision_id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    update_id             text    NOT NULL,
    revision_number       integer NOT NULL,
    update_type           text    NOT NULL,
    category_kind         text,
    is_latest             boolean NOT NULL DEFAULT false,
    is_bundle             boolean NOT NULL,
    explicitly_deployable boolean NOT NULL,
    publication_state     text,
    title                 text,
    kb_article            text,
    security_bulletin     text,
    msrc_severity         text,
    creation_date         text,
    handler               text,
    default_language      text,
    languages             text,
    core_size             bigint  NOT NULL,
    document_size         bigint  NOT NULL,
    fragments_digest      bytea   NOT NULL,
    changed_stamp         bigint  NOT NULL,
    ingested_at           text    NOT NULL,
    UNIQUE (update_id, revision_number)
);
CREATE INDEX revisions_latest ON revisions (update_type) WHERE is_latest;
CREATE INDEX revisions_kb ON revisions (kb_article);
CREATE INDEX revisions_stamp ON revisions (changed_stamp);

CREATE TABLE revision_documents (
    revision_id integer PRIMARY KEY REFERENCES revisions (revision_id),
    document    bytea NOT NULL,
    core        bytea NOT NULL,
    extended    bytea NOT NULL
);

CREATE TABLE localized_properties (
    revision_id integer NOT NULL REFERENCES revisions (revision_id),
    language    text    NOT NULL,
    title       text,
    description text,
    fragment    bytea   NOT NULL,
    PRIMARY KEY (revision_id, language)
);

CREATE TABLE prerequisites (
    revision_id integer NOT NULL REFERENCES revisions (revision_id),
    clause      integer NOT NULL,
    update_id   text    NOT NULL,
    is_category boolean NOT NULL,
    PRIMARY KEY (revision_id, clause, update_id)
);
CREATE INDEX prerequisites_categories ON prerequisites (is_category, revision_id);

CREATE TABLE bundle_members (
    revision_id            integer NOT NULL REFERENCES revisions (revision_id),
    clause                 integer NOT NULL,
    member_update_id       text    NOT NULL,
    member_revision_number integer NOT NULL,
    PRIMARY KEY (revision_id, clause, member_update_id, member_revision_number)
);
CREATE INDEX bundle_members_by_member ON bundle_members (member_update_id, member_revision_number);

CREATE TABLE supersedences (
    revision_id          integer NOT NULL REFERENCES revisions (revision_id),
    superseded_update_id text    NOT NULL,
    PRIMARY KEY (revision_id, superseded_update_id)
);

CREATE TABLE files (
    sha1          bytea PRIMARY KEY,
    sha256        bytea,
    size          bigint  NOT NULL,
    file_name     text    NOT NULL,
    extension     text    NOT NULL,
    modified      text,
    patching_type text,
    source_url    text,
    present       boolean NOT NULL DEFAULT false
);

CREATE TABLE revision_files (
    revision_id integer NOT NULL REFERENCES revisions (revision_id),
    sha1        bytea   NOT NULL REFERENCES files (sha1),
    PRIMARY KEY (revision_id, sha1)
);
CREATE INDEX revision_files_by_sha1 ON revision_files (sha1);

CREATE TABLE trusted_keys (
    key_id     text PRIMARY KEY,
    public_key text NOT NULL,
    comment    text,
    added_at   text NOT NULL
);

CREATE TABLE imports (
    bundle_id       text PRIMARY KEY,
    channel         text   NOT NULL,
    sequence        bigint NOT NULL,
    base_sequence   bigint,
    signer_key_id   text   NOT NULL,
    created         text   NOT NULL,
    imported_at     text   NOT NULL,
    revisions_added bigint NOT NULL,
    files_added     bigint NOT NULL,
    bytes           bigint NOT NULL,
    manifest        text   NOT NULL
);
CREATE INDEX imports_by_channel ON imports (channel, sequence);

CREATE TABLE removed_updates (
    update_id  text PRIMARY KEY,
    reason     text NOT NULL,
    bundle_id  text NOT NULL,
    removed_at text NOT NULL
);

CREATE TABLE export_bundles (
    channel       text    NOT NULL,
    sequence      bigint  NOT NULL,
    bundle_id     text    NOT NULL UNIQUE,
    base_sequence bigint,
    created       text    NOT NULL,
    path          text    NOT NULL,
    pending       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (channel, sequence)
);

CREATE TABLE export_carried (
    channel  text   NOT NULL,
    sequence bigint NOT NULL,
    kind     text   NOT NULL,
    item     text   NOT NULL,
    PRIMARY KEY (channel, kind, item, sequence)
);

CREATE TABLE target_groups (
    group_id          text PRIMARY KEY,
    name              text    NOT NULL,
    parent_id         text REFERENCES target_groups (group_id),
    is_builtin        boolean NOT NULL DEFAULT false,
    created_by_client boolean NOT NULL DEFAULT false,
    created_at        text    NOT NULL
);
-- Group names are unique regardless of case, as in WSUS.
CREATE UNIQUE INDEX target_groups_name ON target_groups (lower(name));
INSERT INTO target_groups (group_id, name, parent_id, is_builtin, created_at) VALUES
    ('a0a08746-4dbe-4a37-9adf-9e7652c0b421', 'All Computers', NULL, true, '1970-01-01T00:00:00Z'),
    ('b73ca6ed-5727-47f3-84de-015e03f6a88a', 'Unassigned Computers', 'a0a08746-4dbe-4a37-9adf-9e7652c0b421', true, '1970-01-01T00:00:00Z');

CREATE TABLE computers (
    computer_id      text PRIMARY KEY,
    dns_name         text NOT NULL,
    requested_groups text,
    info             text,
    os_description   text,
    registered_at    text,
    first_seen_at    text NOT NULL,
    last_contact_at  text NOT NULL,
    last_sync_at     text,
    last_report_at   text
);

CREATE TABLE computer_groups (
    computer_id text NOT NULL REFERENCES computers (computer_id),
    group_id    text NOT NULL REFERENCES target_groups (group_id),
    PRIMARY KEY (computer_id, group_id)
);

-- approval_id is the client-visible deployment id.
CREATE TABLE approvals (
    approval_id     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment_guid text    NOT NULL UNIQUE,
    update_id       text    NOT NULL,
    group_id        text    NOT NULL REFERENCES target_groups (group_id),
    action          text    NOT NULL,
    deadline        text,
    admin           text,
    changed_at      text    NOT NULL,
    changed_stamp   bigint  NOT NULL,
    UNIQUE (update_id, group_id)
);

CREATE TABLE declined_updates (
    update_id     text PRIMARY KEY,
    declined_at   text   NOT NULL,
    admin         text,
    changed_stamp bigint NOT NULL
);

CREATE TABLE approval_changes (
    changed_stamp   bigint NOT NULL,
    deployment_guid text   NOT NULL,
    update_id       text   NOT NULL,
    group_id        text   NOT NULL,
    change          text   NOT NULL
);

CREATE TABLE events (
    event_instance_id   text PRIMARY KEY,
    computer_id         text    NOT NULL,
    event_id            integer NOT NULL,
    source_id           integer NOT NULL,
    update_id           text    NOT NULL,
    revision_number     integer NOT NULL,
    win32_hresult       bigint  NOT NULL,
    time_at_target      text,
    received_at         text    NOT NULL,
    app_name            text,
    replacement_strings text,
    misc_data           text,
    -- The order events arrived in (SQLite's rowid): the newest are kept, compliance folds in it.
    seq                 bigint GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX events_by_computer ON events (computer_id, event_id);
CREATE INDEX events_by_computer_seq ON events (computer_id, seq);
CREATE INDEX events_by_update ON events (update_id);

CREATE TABLE downstream_servers (
    server_id     text PRIMARY KEY,
    name          text NOT NULL,
    first_seen_at text NOT NULL,
    last_seen_at  text NOT NULL
);

CREATE TABLE approval_rules (
    rule_id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text    NOT NULL,
    enabled         boolean NOT NULL DEFAULT true,
    classifications text    NOT NULL,
    products        text    NOT NULL,
    group_id        text    NOT NULL REFERENCES target_groups (group_id),
    action          text    NOT NULL,
    deadline_days   integer,
    created_at      text    NOT NULL
);
CREATE UNIQUE INDEX approval_rules_name ON approval_rules (lower(name));
"#;

/// Version 2: how many events a computer has at most, so that a report need not count them
/// (SQLite's version 10), and no index of events that no query reads.
const V2_EVENTS_AT_MOST: &str = r#"
-- At least the computer's events: reports add what they stored; when it passes the limit the
-- oldest events go and they are counted again.
ALTER TABLE computers ADD COLUMN events_at_most bigint NOT NULL DEFAULT 0;
UPDATE computers SET events_at_most =
    (SELECT count(*) FROM events WHERE events.computer_id = computers.computer_id);
-- Every report writes each index of events: these two serve no query (a computer's events are
-- read by events_by_computer_seq, compliance reads them all in that order).
DROP INDEX events_by_computer;
DROP INDEX events_by_update;
"#;

/// Version 3: updates published here (`ferry publish`; SQLite's version 11).
const V3_PUBLISHED: &str = r#"
CREATE TABLE published_updates (
    update_id      text PRIMARY KEY,
    vendor         text NOT NULL,
    product        text NOT NULL,
    installer      text NOT NULL,
    installer_name text NOT NULL,
    version        text,
    published_at   text NOT NULL
);
"#;
