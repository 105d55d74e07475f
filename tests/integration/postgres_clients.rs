//! Client activity, compliance and cleanup reads on the PostgreSQL backend, held to what the
//! SQLite backend does: each contract runs on a SQLite store and on a PostgreSQL database.

use crate::postgres::TestDatabase;
use ferry::compliance::UpdateState;
use ferry::ids::{ComputerId, GroupId};
use ferry::store::postgres::PostgresStore;
use ferry::store::*;
use std::collections::{BTreeMap, HashMap};

/// A backend under test: its storage traits, and SQL for rows no implemented trait writes yet.
trait Backend {
    fn clients(&mut self) -> &mut dyn ClientStorage;
    fn compliance(&self) -> &dyn ComplianceStorage;
    fn cleanup(&self) -> &dyn CleanupStorage;
    fn targeting(&mut self) -> &mut dyn TargetingStorage;
    fn check(&self) -> &dyn CheckStorage;
    /// Runs SQL statements on the database behind the store's back.
    fn seed(&mut self, sql: &str);
    /// A literal of the engine's binary type.
    fn bytes(&self, hex: &str) -> String;
    fn name(&self) -> &'static str;
}

struct Sqlite {
    store: Store,
    dir: tempfile::TempDir,
}

impl Backend for Sqlite {
    fn clients(&mut self) -> &mut dyn ClientStorage {
        &mut *self.store
    }
    fn compliance(&self) -> &dyn ComplianceStorage {
        &*self.store
    }
    fn cleanup(&self) -> &dyn CleanupStorage {
        &*self.store
    }
    fn targeting(&mut self) -> &mut dyn TargetingStorage {
        &mut *self.store
    }
    fn check(&self) -> &dyn CheckStorage {
        &*self.store
    }
    fn seed(&mut self, sql: &str) {
        let db = rusqlite::Connection::open(self.dir.path().join(DATABASE_FILE)).unwrap();
        db.execute_batch(sql).unwrap();
    }
    fn bytes(&self, hex: &str) -> String {
        format!("X'{hex}'")
    }
    fn name(&self) -> &'static str {
        "sqlite"
    }
}

struct Postgres {
    store: PostgresStore,
    db: TestDatabase,
}

impl Backend for Postgres {
    fn clients(&mut self) -> &mut dyn ClientStorage {
        &mut self.store
    }
    fn compliance(&self) -> &dyn ComplianceStorage {
        &self.store
    }
    fn cleanup(&self) -> &dyn CleanupStorage {
        &self.store
    }
    fn targeting(&mut self) -> &mut dyn TargetingStorage {
        &mut self.store
    }
    fn check(&self) -> &dyn CheckStorage {
        &self.store
    }
    fn seed(&mut self, sql: &str) {
        self.db.client().batch_execute(sql).unwrap();
    }
    fn bytes(&self, hex: &str) -> String {
        format!("'\\x{hex}'::bytea")
    }
    fn name(&self) -> &'static str {
        "postgres"
    }
}

/// Runs `contract` on a new SQLite store, then on a new PostgreSQL database (when the test
/// cluster is there).
fn on_both_backends(contract: fn(&mut dyn Backend)) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path()).unwrap();
    contract(&mut Sqlite { store, dir });
    let Some(db) = TestDatabase::new() else { return };
    let store = PostgresStore::connect(&db.url).unwrap();
    contract(&mut Postgres { store, db });
}

fn computer_id(text: &str) -> ComputerId {
    ComputerId::parse(text).unwrap()
}

fn contact(computer: &str, dns_name: &str, groups: &[&str]) -> ClientWrite {
    ClientWrite::Contact {
        computer_id: computer_id(computer),
        dns_name: dns_name.into(),
        requested_groups: groups.iter().map(|g| GroupName::parse(g).unwrap()).collect(),
    }
}

fn event(instance: &str, computer: &str, event_id: i32, update: &str, time: &str) -> EventRecord {
    EventRecord {
        event_instance_id: instance.into(),
        computer_id: computer_id(computer),
        event_id,
        source_id: 1,
        update_id: update.into(),
        revision_number: 200,
        win32_hresult: -2_145_124_329,
        time_at_target: time.into(),
        app_name: None,
        replacement_strings: Vec::new(),
        misc_data: Vec::new(),
    }
}

fn events(computer: &str, events: Vec<EventRecord>) -> ClientWrite {
    ClientWrite::Events { computer_id: computer_id(computer), events }
}

fn unassigned() -> Vec<GroupId> {
    vec![GroupId::unassigned_computers()]
}

fn registrations_contract(b: &mut dyn Backend) {
    let name = b.name();
    let s = b.clients();
    s.apply_client_writes(&[
        contact("c-zeta", "zeta.example", &[]),
        contact("c-alpha", "Alpha.example", &[]),
        contact("c-beta", "beta.example", &[]),
    ])
    .unwrap();
    let computers = s.computers().unwrap();
    let names: Vec<&str> = computers.iter().map(|c| c.dns_name.as_str()).collect();
    assert_eq!(names, ["Alpha.example", "beta.example", "zeta.example"], "{name}: by code point");
    for c in &computers {
        assert!(!c.registered && c.os_description.is_none(), "{name}: {c:?}");
        assert_eq!((&c.last_sync_at, &c.last_report_at), (&None, &None), "{name}: {c:?}");
        assert_eq!(c.first_seen_at, c.last_contact_at, "{name}");
        assert_eq!(c.groups, unassigned(), "{name}: waits in Unassigned Computers");
    }
    let first = s.computer("c-alpha").unwrap().unwrap();
    let register = |os: &str| ClientWrite::Register {
        computer_id: computer_id("c-alpha"),
        info: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        os_description: Some(os.into()),
    };
    std::thread::sleep(std::time::Duration::from_millis(5));
    s.apply_client_writes(&[register("Windows 11")]).unwrap();
    let registered = s.computer("c-alpha").unwrap().unwrap();
    assert!(registered.registered, "{name}");
    assert_eq!(registered.os_description.as_deref(), Some("Windows 11"), "{name}");
    assert_eq!(registered.first_seen_at, first.first_seen_at, "{name}");
    assert!(registered.last_contact_at > first.last_contact_at, "{name}");
    s.apply_client_writes(&[register("Windows 12")]).unwrap();
    let again = s.computer("c-alpha").unwrap().unwrap();
    assert_eq!((again.registered, again.os_description.as_deref()), (true, Some("Windows 12")));
    s.apply_client_writes(&[ClientWrite::Synced { computer_id: computer_id("c-alpha") }]).unwrap();
    let synced = s.computer("c-alpha").unwrap().unwrap();
    assert_eq!(synced.last_sync_at.as_ref(), Some(&synced.last_contact_at), "{name}");
    assert_eq!(synced.last_report_at, None, "{name}");
    s.apply_client_writes(&[events("c-alpha", Vec::new())]).unwrap();
    let reported = s.computer("c-alpha").unwrap().unwrap();
    assert_eq!(reported.last_report_at.as_ref(), Some(&reported.last_contact_at), "{name}");
    s.apply_client_writes(&[
        contact("c-alpha", "renamed.example", &[]),
        ClientWrite::Downstream { server_id: "ds-1".into(), name: "downstream".into() },
        ClientWrite::Downstream { server_id: "ds-1".into(), name: "renamed".into() },
        ClientWrite::Register {
            computer_id: computer_id("c-nobody"),
            info: vec![],
            os_description: None,
        },
        ClientWrite::Synced { computer_id: computer_id("c-nobody") },
    ])
    .unwrap();
    let renamed = s.computer("c-alpha").unwrap().unwrap();
    assert_eq!(renamed.dns_name, "renamed.example", "{name}");
    assert_eq!((renamed.first_seen_at, renamed.groups), (first.first_seen_at, unassigned()));
    assert_eq!(s.computer("c-nobody").unwrap(), None, "{name}: writes to no computer make none");
    assert_eq!(s.computers().unwrap().len(), 3, "{name}");
    assert_eq!((s.deployment_stamp().unwrap(), s.catalog_stamp().unwrap()), (0, 0), "{name}");
}

#[test]
fn registrations_and_contact_times_behave_alike_on_both_backends() {
    on_both_backends(registrations_contract);
}

fn events_contract(b: &mut dyn Backend) {
    let name = b.name();
    let s = b.clients();
    let mut full = event("e-1", "c-a", 183, "upd-1", "2026-01-01T10:00:00Z");
    full.app_name = Some("AutomaticUpdates".into());
    full.replacement_strings = vec!["KB1 'quoted'".into(), "ünïcode".into()];
    full.misc_data = vec!["A=1".into(), "B=2".into()];
    let batch = [
        contact("c-a", "a.example", &[]),
        contact("c-b", "b.example", &[]),
        events(
            "c-a",
            vec![
                full.clone(),
                event("e-2", "c-a", 156, "upd-0", "2026-01-03T10:00:00Z"),
                event("e-3", "c-a", 182, "upd-2", "2026-01-02T10:00:00Z"),
                event("e-tie-1", "c-a", 1, "upd-0", "2026-01-02T12:00:00Z"),
                event("e-tie-2", "c-a", 1, "upd-0", "2026-01-02T12:00:00Z"),
                event("e-3", "c-a", 182, "upd-2", "2026-01-02T10:00:00Z"),
            ],
        ),
        events("c-b", vec![event("e-4", "c-b", 183, "upd-1", "2026-01-04T10:00:00Z")]),
    ];
    s.apply_client_writes(&batch).unwrap();
    s.apply_client_writes(&batch).unwrap();
    let of_a = s.events(Some("c-a")).unwrap();
    let ids: Vec<&str> = of_a.iter().map(|e| e.event_instance_id.as_str()).collect();
    assert_eq!(ids, ["e-2", "e-tie-2", "e-tie-1", "e-3", "e-1"], "{name}: newest first, once");
    assert_eq!(of_a[4], full, "{name}: stored as reported");
    let all = s.events(None).unwrap();
    let ids: Vec<&str> = all.iter().map(|e| e.event_instance_id.as_str()).collect();
    assert_eq!(ids, ["e-4", "e-2", "e-tie-2", "e-tie-1", "e-3", "e-1"], "{name}");
    assert!(s.events(Some("c-nobody")).unwrap().is_empty(), "{name}");
}

#[test]
fn events_are_stored_once_on_both_backends() {
    on_both_backends(events_contract);
}

fn event_limit_contract(b: &mut dyn Backend) {
    let name = b.name();
    let s = b.clients();
    let flood: Vec<EventRecord> = (0..MAX_EVENTS_PER_COMPUTER + 5)
        .map(|i| {
            event(&format!("a-{i:05}"), "c-a", 1, "upd", &format!("2026-01-01T00:00:00.{i:05}Z"))
        })
        .collect();
    let (first, rest) = flood.split_at(3000);
    s.apply_client_writes(&[
        contact("c-a", "a.example", &[]),
        contact("c-b", "b.example", &[]),
        events("c-b", vec![event("b-1", "c-b", 1, "upd", "2025-01-01T00:00:00Z")]),
        events("c-a", first.to_vec()),
    ])
    .unwrap();
    s.apply_client_writes(&[events("c-a", rest.to_vec())]).unwrap();
    let kept = s.events(Some("c-a")).unwrap();
    assert_eq!(kept.len(), MAX_EVENTS_PER_COMPUTER, "{name}");
    assert_eq!(kept[0].event_instance_id, format!("a-{:05}", MAX_EVENTS_PER_COMPUTER + 4));
    assert_eq!(kept.last().unwrap().event_instance_id, "a-00005", "{name}: the oldest went");
    assert_eq!(s.events(Some("c-b")).unwrap().len(), 1, "{name}: others keep theirs");
}

#[test]
fn each_computer_keeps_its_newest_events_on_both_backends() {
    on_both_backends(event_limit_contract);
}

/// A batch holding many reports of one computer, one event reported twice, and a new computer's
/// sync and report queued ahead of its contact: stored as if written one by one, except that
/// the new computer's sync and report times are not lost.
fn batch_of_reports_contract(b: &mut dyn Backend) {
    let name = b.name();
    let s = b.clients();
    let at = |i: usize| format!("2026-01-01T00:00:00.{i:05}Z");
    let reports: Vec<ClientWrite> = (0..MAX_EVENTS_PER_COMPUTER + 10)
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(|chunk| {
            events(
                "c-a",
                chunk.iter().map(|i| event(&format!("a-{i:05}"), "c-a", 1, "u", &at(*i))).collect(),
            )
        })
        .collect();
    let mut batch = vec![contact("c-a", "a.example", &[])];
    batch.extend(reports);
    batch.push(events("c-a", vec![event("a-00000", "c-a", 1, "u", &at(0))]));
    batch.push(ClientWrite::Synced { computer_id: computer_id("c-new") });
    batch.push(events("c-new", vec![event("n-1", "c-new", 1, "u", &at(1))]));
    batch.push(contact("c-new", "new.example", &[]));
    s.apply_client_writes(&batch).unwrap();
    let kept = s.events(Some("c-a")).unwrap();
    assert_eq!(kept.len(), MAX_EVENTS_PER_COMPUTER, "{name}: the newest, each once");
    assert_eq!(kept[0].event_instance_id, format!("a-{:05}", MAX_EVENTS_PER_COMPUTER + 9));
    assert_eq!(kept.last().unwrap().event_instance_id, "a-00010", "{name}: the oldest went");
    let new = s.computer("c-new").unwrap().expect("c-new");
    assert!(new.last_sync_at.is_some() && new.last_report_at.is_some(), "{name}: {new:?}");
    assert_eq!(s.events(Some("c-new")).unwrap().len(), 1, "{name}");

    // Reports count what they store, so that a report need not count a computer's events:
    // `ferry check` holds the count to the events, and a count behind them is found.
    let problems = |b: &dyn Backend| b.check().check(false, &mut |_, _| {}).unwrap().problems;
    assert!(problems(b).is_empty(), "{name}: {:?}", problems(b));
    b.seed("UPDATE computers SET events_at_most = 0 WHERE computer_id = 'c-new'");
    let found = problems(b);
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    assert!(
        found[0].problem.contains("c-new: 1 events, counted as at most 0"),
        "{name}: {found:?}"
    );
}

#[test]
fn a_batch_of_many_reports_is_stored_as_if_written_one_by_one_on_both_backends() {
    on_both_backends(batch_of_reports_contract);
}

fn group_ids(s: &dyn ClientStorage, names: &[&str]) -> Vec<GroupId> {
    let mut ids: Vec<GroupId> =
        names.iter().map(|n| s.group(n).unwrap().expect(n).group_id).collect();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    ids
}

fn targeting_contract(b: &mut dyn Backend) {
    let name = b.name();
    let client = |max_client_groups, create_missing_groups| Targeting {
        mode: TargetingMode::Client,
        create_missing_groups,
        max_client_groups,
    };
    b.targeting().set_targeting(client(2, true)).unwrap();
    let s = b.clients();
    s.apply_client_writes(&[
        contact("c-1", "one", &["web", "Servers"]),
        contact("c-2", "two", &["SERVERS", "Desktops"]),
        contact("c-3", "three", &[]),
    ])
    .unwrap();
    let one = s.computer("c-1").unwrap().unwrap();
    assert_eq!(one.groups, group_ids(s, &["web", "servers"]), "{name}");
    let two = s.computer("c-2").unwrap().unwrap();
    assert_eq!(two.groups, group_ids(s, &["Servers"]), "{name}: beyond the limit");
    assert_eq!(two.requested_groups.as_deref(), Some("SERVERS;Desktops"), "{name}");
    assert_eq!(s.group("Desktops").unwrap(), None, "{name}: not created");
    assert_eq!(s.computer("c-3").unwrap().unwrap().groups, unassigned(), "{name}");
    let groups: Vec<(String, bool)> =
        s.groups().unwrap().into_iter().map(|g| (g.name, g.is_builtin)).collect();
    let expected = [
        ("All Computers", true),
        ("Unassigned Computers", true),
        ("Servers", false),
        ("web", false),
    ];
    assert_eq!(groups, expected.map(|(n, b)| (n.to_string(), b)), "{name}");
    let servers = s.group("sErVeRs").unwrap().unwrap();
    assert_eq!(servers.parent_id, Some(GroupId::all_computers()), "{name}");
    let by_id = s.group(&servers.group_id.as_str().to_uppercase()).unwrap();
    assert_eq!(by_id.as_ref(), Some(&servers), "{name}: by GUID, any case");
    s.apply_client_writes(&[contact("c-1", "one", &[])]).unwrap();
    assert_eq!(s.computer("c-1").unwrap().unwrap().groups, one.groups, "{name}: kept");
    b.targeting().set_targeting(client(10, false)).unwrap();
    let s = b.clients();
    s.apply_client_writes(&[contact("c-4", "four", &["Laptops"])]).unwrap();
    assert_eq!(s.group("Laptops").unwrap(), None, "{name}: creation is off");
    assert_eq!(s.computer("c-4").unwrap().unwrap().groups, unassigned(), "{name}");
    let server = Targeting { mode: TargetingMode::Server, ..client(10, true) };
    b.targeting().set_targeting(server).unwrap();
    let s = b.clients();
    s.apply_client_writes(&[contact("c-1", "one", &["Desktops"])]).unwrap();
    let one_now = s.computer("c-1").unwrap().unwrap();
    assert_eq!(one_now.groups, one.groups, "{name}: server-side targeting keeps groups");
    assert_eq!(one_now.requested_groups.as_deref(), Some("Desktops"), "{name}: but records");
    assert_eq!(s.groups().unwrap().len(), 4, "{name}");
}

#[test]
fn client_side_targeting_creates_groups_up_to_the_limit_on_both_backends() {
    on_both_backends(targeting_contract);
}

fn with_misc(mut e: EventRecord, misc: &[&str]) -> EventRecord {
    e.misc_data = misc.iter().map(|m| m.to_string()).collect();
    e
}

fn compliance_contract(b: &mut dyn Backend) {
    let name = b.name();
    let zero = "00000000-0000-0000-0000-000000000000";
    b.clients()
        .apply_client_writes(&[
            contact("c-a", "a", &[]),
            contact("c-b", "b", &[]),
            events(
                "c-a",
                vec![
                    with_misc(
                        event("a-1", "c-a", 156, zero, "2026-01-01T00:00:00Z"),
                        &["U=UPD-1;upd-2", "V=upd-3"],
                    ),
                    event("a-2", "c-a", 183, "upd-1", "2026-01-02T00:00:00Z"),
                    event("a-3", "c-a", 182, "upd-2", "2026-01-03T00:00:00Z"),
                    event("a-4", "c-a", 183, "upd-2", "2026-01-01T12:00:00Z"),
                    event("a-5", "c-a", 1, "upd-3", "2026-01-04T00:00:00Z"),
                ],
            ),
            events(
                "c-b",
                vec![
                    with_misc(event("b-1", "c-b", 156, zero, "2026-01-01T00:00:00Z"), &["W=upd-1"]),
                    event("b-2", "c-b", 202, zero, "2026-01-02T00:00:00Z"),
                    event("b-3", "c-b", 184, "upd-4", "2026-01-03T00:00:00Z"),
                ],
            ),
        ])
        .unwrap();
    // More than the backends read at once (PostgreSQL: 1000 rows), another computer after them.
    let many: Vec<EventRecord> = (0..2500)
        .map(|i| {
            event(&format!("m-{i}"), "c-many", 183, &format!("upd-m{i}"), "2026-01-01T00:00:00Z")
        })
        .collect();
    let last = vec![event("z-1", "c-z", 182, "upd-1", "2026-01-01T00:00:00Z")];
    b.clients().apply_client_writes(&[events("c-many", many), events("c-z", last)]).unwrap();
    let statuses = b.compliance().computer_statuses().unwrap();
    assert_eq!(statuses["c-many"].states.len(), 2500, "{name}");
    assert!(statuses["c-many"].states.values().all(|s| *s == UpdateState::Installed), "{name}");
    assert_eq!(statuses["c-z"].states["upd-1"], UpdateState::Failed, "{name}");
    let states = |c: &str| -> BTreeMap<String, UpdateState> {
        statuses[c].states.iter().map(|(k, v)| (k.clone(), *v)).collect()
    };
    let expected_a = [
        ("upd-1", UpdateState::Installed),
        ("upd-2", UpdateState::Failed),
        ("upd-3", UpdateState::Installed),
    ];
    let owned = |pairs: &[(&str, UpdateState)]| -> BTreeMap<String, UpdateState> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };
    assert_eq!(states("c-a"), owned(&expected_a), "{name}");
    let expected_b =
        [("upd-1", UpdateState::Installed), ("upd-4", UpdateState::InstalledPendingReboot)];
    assert_eq!(states("c-b"), owned(&expected_b), "{name}");
    assert_eq!(statuses.len(), 4, "{name}");
    assert!(statuses["c-a"].last_status_received.is_some(), "{name}");
}

#[test]
fn compliance_comes_from_events_on_both_backends() {
    on_both_backends(compliance_contract);
}

const U1: &str = "11111111-1111-1111-1111-111111111111";
const U2: &str = "22222222-2222-2222-2222-222222222222";
const U3: &str = "33333333-3333-3333-3333-333333333333";

/// Two revisions of U1 (the second newest), one of U2; files, one with a digest of the wrong
/// length.
fn seed_catalog(b: &mut dyn Backend) {
    let (f1, f2, bad) =
        (b.bytes(&"a1".repeat(20)), b.bytes(&"b2".repeat(20)), b.bytes(&"c3".repeat(19)));
    let digest = b.bytes("00");
    let revision = |update: &str, number: i32, latest: bool, at: &str| {
        format!(
            "INSERT INTO revisions (update_id, revision_number, update_type, is_latest, is_bundle, explicitly_deployable,
                 core_size, document_size, fragments_digest, changed_stamp, ingested_at)
             VALUES ('{update}', {number}, 'Software', {latest}, FALSE, TRUE, 1, 1, {digest}, 1, '{at}');"
        )
    };
    let id = |update: &str, number: i32| {
        format!(
            "(SELECT revision_id FROM revisions WHERE update_id = '{update}' AND revision_number = {number})"
        )
    };
    let sql = [
        revision(U1, 1, false, "2026-01-01T00:00:00Z"),
        revision(U1, 2, true, "2026-01-02T00:00:00Z"),
        revision(U2, 1, true, "2026-01-03T00:00:00Z"),
        format!("INSERT INTO supersedences (revision_id, superseded_update_id) VALUES ({}, '{U1}'), ({}, '{U3}');", id(U2, 1), id(U1, 1)),
        format!(
            "INSERT INTO bundle_members (revision_id, clause, member_update_id, member_revision_number)
             VALUES ({r}, 0, '{U3}', 1), ({r}, 1, '{U3}', 1), ({o}, 0, '{U2}', 1);",
            r = id(U2, 1),
            o = id(U1, 1)
        ),
        format!(
            "INSERT INTO files (sha1, size, file_name, extension) VALUES ({f1}, 100, 'a.cab', 'cab'), ({f2}, 5000000000, 'b.exe', 'exe'), ({bad}, 1, 'c.cab', 'cab');"
        ),
        format!(
            "INSERT INTO revision_files (revision_id, sha1) VALUES ({}, {f1}), ({}, {f2}), ({}, {f1}), ({}, {bad});",
            id(U1, 2),
            id(U1, 1),
            id(U2, 1),
            id(U2, 1)
        ),
    ];
    b.seed(&sql.concat());
}

fn cleanup_contract(b: &mut dyn Backend) {
    let name = b.name();
    seed_catalog(b);
    let c = b.cleanup();
    let pairs = |mut v: Vec<(ferry::ids::UpdateId, ferry::ids::UpdateId)>| {
        v.sort_by(|x, y| (x.0.as_str(), x.1.as_str()).cmp(&(y.0.as_str(), y.1.as_str())));
        v.into_iter()
            .map(|(a, b)| (a.as_str().to_string(), b.as_str().to_string()))
            .collect::<Vec<_>>()
    };
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(pairs(c.supersedences().unwrap()), [pair(U1, U2)], "{name}: newest revisions only");
    assert_eq!(pairs(c.bundle_memberships().unwrap()), [pair(U3, U2)], "{name}: once");
    let mut files: Vec<(String, String)> = c
        .files_of_newest_revisions()
        .unwrap()
        .into_iter()
        .map(|(sha1, u)| {
            (sha1.0.iter().map(|b| format!("{b:02x}")).collect(), u.as_str().to_string())
        })
        .collect();
    files.sort();
    assert_eq!(files, [pair(&"a1".repeat(20), U1), pair(&"a1".repeat(20), U2)], "{name}");
    let known: BTreeMap<String, (String, u64)> = c
        .known_files()
        .unwrap()
        .into_iter()
        .map(|(sha1, v)| (sha1.0.iter().map(|b| format!("{b:02x}")).collect(), v))
        .collect();
    let expected = BTreeMap::from([
        ("a1".repeat(20), ("cab".to_string(), 100)),
        ("b2".repeat(20), ("exe".to_string(), 5_000_000_000)),
    ]);
    assert_eq!(known, expected, "{name}");
    let arrivals: HashMap<String, String> = b.compliance().arrival_times().unwrap();
    let expected = HashMap::from([
        (U1.to_string(), "2026-01-02T00:00:00Z".to_string()),
        (U2.to_string(), "2026-01-03T00:00:00Z".to_string()),
    ]);
    assert_eq!(arrivals, expected, "{name}");
}

#[test]
fn cleanup_reads_behave_alike_on_both_backends() {
    on_both_backends(cleanup_contract);
}

/// One front end's batches: every computer's contact under the names it asks for, and the same
/// events as the other front end sends, in its own order.
fn front_end_batches(front_end: usize) -> Vec<Vec<ClientWrite>> {
    (0..20)
        .map(|batch| {
            let computer = format!("c-{}", batch % 4);
            // Each front end spells the names its own way; six names, four may be created.
            let group = format!("Team-{}", (batch + front_end) % 6);
            let group = if front_end == 0 { group } else { group.to_uppercase() };
            let mut reported: Vec<EventRecord> = (0..50)
                .map(|k| {
                    event(&format!("e-{batch}-{k}"), &computer, 1, "upd", "2026-01-01T00:00:00Z")
                })
                .collect();
            if front_end == 1 {
                reported.reverse();
            }
            vec![
                contact(&computer, "host", &[&group]),
                ClientWrite::Synced { computer_id: computer_id(&computer) },
                events(&computer, reported),
            ]
        })
        .collect()
}

/// Two front ends on one database write overlapping batches at once: every event is stored
/// once, a name clients ask for becomes one group, and the limit on client-created groups holds
/// across them.
#[test]
fn front_ends_writing_at_once_store_each_event_and_group_once() {
    let Some(db) = TestDatabase::new() else { return };
    let mut first = PostgresStore::connect(&db.url).unwrap();
    let limit = Targeting {
        mode: TargetingMode::Client,
        create_missing_groups: true,
        max_client_groups: 4,
    };
    first.set_targeting(limit).unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let writers: Vec<_> = (0..2)
        .map(|front_end| {
            let (url, barrier) = (db.url.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut store = PostgresStore::connect(&url).unwrap();
                barrier.wait();
                for batch in front_end_batches(front_end) {
                    store.apply_client_writes(&batch).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut client = db.client();
    let count = |client: &mut ::postgres::Client, sql: &str| -> i64 {
        client.query_one(sql, &[]).unwrap().get(0)
    };
    assert_eq!(count(&mut client, "SELECT count(*) FROM events"), 20 * 50, "each event once");
    assert_eq!(count(&mut client, "SELECT count(DISTINCT seq) FROM events"), 20 * 50);
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM target_groups WHERE created_by_client"),
        4,
        "the limit holds"
    );
    let names = count(
        &mut client,
        "SELECT count(DISTINCT lower(name)) FROM target_groups WHERE created_by_client",
    );
    assert_eq!(names, 4, "one group per name");
    assert_eq!(count(&mut client, "SELECT count(*) FROM computers"), 4);
    assert_eq!(first.events(None).unwrap().len(), 20 * 50);
}

/// Eight front ends each record a computer at once that asks for a group all of them name (in
/// their own case) and one of its own: the shared name becomes one group every computer is in,
/// and clients create no more groups than allowed in all.
#[test]
fn front_ends_creating_groups_at_once_keep_one_group_per_name_and_the_limit() {
    let Some(db) = TestDatabase::new() else { return };
    let mut first = PostgresStore::connect(&db.url).unwrap();
    let limit = Targeting {
        mode: TargetingMode::Client,
        create_missing_groups: true,
        max_client_groups: 4,
    };
    first.set_targeting(limit).unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let (url, barrier) = (db.url.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut store = PostgresStore::connect(&url).unwrap();
                let computer = format!("c-{t}");
                let shared = if t % 2 == 0 { "Shared" } else { "SHARED" };
                let own = format!("Team-{t}");
                // Events after the contact keep the transaction open a while.
                let reported = (0..300)
                    .map(|k| {
                        event(&format!("e-{t}-{k}"), &computer, 1, "upd", "2026-01-01T00:00:00Z")
                    })
                    .collect();
                let batch =
                    [contact(&computer, "host", &[shared, &own]), events(&computer, reported)];
                barrier.wait();
                store.apply_client_writes(&batch).unwrap();
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let groups: Vec<TargetGroup> =
        first.groups().unwrap().into_iter().filter(|g| !g.is_builtin).collect();
    assert_eq!(groups.len(), 4, "the limit holds across front ends: {groups:?}");
    let shared = first.group("shared").unwrap().expect("created once");
    for computer in first.computers().unwrap() {
        assert!(computer.groups.contains(&shared.group_id), "{computer:?}");
    }
    assert_eq!(first.events(None).unwrap().len(), 8 * 300);
}

fn approvals_contract(b: &mut dyn Backend) {
    let name = b.name();
    let (all, unassigned) = (GroupId::all_computers(), GroupId::unassigned_computers());
    b.seed(&format!(
        "INSERT INTO settings (key, value) VALUES ('deployment_stamp', '7'), ('catalog_stamp', '3');
         INSERT INTO approvals (deployment_guid, update_id, group_id, action, deadline, admin, changed_at, changed_stamp) VALUES
             ('d-2', '{U2}', '{all}', 'Install', NULL, 'ann', '2026-01-01T00:00:00Z', 5),
             ('d-1', '{U1}', '{unassigned}', 'Uninstall', '2026-02-01T00:00:00Z', NULL, '2026-01-02T00:00:00Z', 6),
             ('d-3', '{U3}', '{all}', 'Reinstall', NULL, NULL, '2026-01-03T00:00:00Z', 7);
         INSERT INTO declined_updates (update_id, declined_at, admin, changed_stamp) VALUES
             ('{U2}', '2026-01-04T00:00:00Z', NULL, 6), ('{U1}', '2026-01-05T00:00:00Z', 'ann', 7);
         INSERT INTO approval_changes (changed_stamp, deployment_guid, update_id, group_id, change) VALUES
             (5, 'd-2', '{U2}', '{all}', 'approved'), (6, 'd-0', '{U3}', '{all}', 'removed'), (7, '', '{U1}', '', 'declined');"
    ));
    let s = b.clients();
    assert_eq!((s.deployment_stamp().unwrap(), s.catalog_stamp().unwrap()), (7, 3), "{name}");
    let approvals = s.approvals().unwrap();
    let seen: Vec<_> = approvals
        .iter()
        .map(|a| (a.approval_id, a.deployment_guid.as_str(), a.update_id.as_str(), a.action))
        .collect();
    let expected = [
        (1, "d-2", U2, ferry::admin::Action::Install),
        (2, "d-1", U1, ferry::admin::Action::Uninstall),
        (3, "d-3", U3, ferry::admin::Action::Block),
    ];
    assert_eq!(seen, expected, "{name}: by id; an unknown action reads as Block");
    assert_eq!(approvals[1].group_id, unassigned, "{name}");
    assert_eq!(approvals[1].deadline.as_deref(), Some("2026-02-01T00:00:00Z"), "{name}");
    assert_eq!((approvals[0].admin.as_deref(), approvals[0].changed_stamp), (Some("ann"), 5));
    let declines: Vec<_> = s
        .declines()
        .unwrap()
        .into_iter()
        .map(|d| (d.update_id.as_str().to_string(), d.declined_at, d.changed_stamp))
        .collect();
    let expected = [
        (U2.to_string(), "2026-01-04T00:00:00Z".to_string(), 6),
        (U1.to_string(), "2026-01-05T00:00:00Z".to_string(), 7),
    ];
    assert_eq!(declines, expected, "{name}");
    let log = s.approval_change_log().unwrap();
    let expected = [(5, U2.to_string()), (6, U3.to_string()), (7, U1.to_string())];
    assert_eq!(log, expected, "{name}");
}

#[test]
fn approval_reads_behave_alike_on_both_backends() {
    on_both_backends(approvals_contract);
}

/// A batch that PostgreSQL gives up to break a deadlock is written again: the store's batch
/// takes event e-1, then waits for e-2, which another session holds; that session then waits
/// for e-1, and PostgreSQL aborts the store's transaction (the other session waits longer before
/// it checks). The batch still succeeds, every event once.
#[test]
fn a_batch_given_up_for_a_deadlock_is_written_again() {
    let Some(db) = TestDatabase::new() else { return };
    let mut store = PostgresStore::connect(&db.url).unwrap();
    let insert = |id: &str| {
        format!(
            "INSERT INTO events (event_instance_id, computer_id, event_id, source_id, update_id, revision_number, win32_hresult, received_at)
             VALUES ('{id}', 'c-other', 1, 1, 'upd', 1, 0, '2026-01-01T00:00:00Z')"
        )
    };
    let mut other = db.client();
    other.batch_execute("SET deadlock_timeout = '20s'").unwrap();
    let mut held = other.transaction().unwrap();
    held.execute(&insert("e-2"), &[]).unwrap();
    let writer = std::thread::spawn(move || {
        let reported = vec![
            event("e-1", "c-a", 1, "upd", "2026-01-01T00:00:00Z"),
            event("e-2", "c-a", 1, "upd", "2026-01-01T00:00:00Z"),
        ];
        store.apply_client_writes(&[contact("c-a", "a", &[]), events("c-a", reported)])
    });
    let mut watcher = db.client();
    crate::util::wait_until("the store's batch waits for e-2", || {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .get(0);
        waiting == 1
    });
    // Returns once PostgreSQL has aborted the store's transaction, which held e-1.
    assert_eq!(held.execute(&insert("e-1"), &[]).unwrap(), 1);
    held.commit().unwrap();
    writer.join().unwrap().expect("written again after the deadlock");
    let count: i64 = watcher.query_one("SELECT count(*) FROM events", &[]).unwrap().get(0);
    assert_eq!(count, 2, "each event once");
    let reported: Option<String> = watcher
        .query_one("SELECT last_report_at FROM computers WHERE computer_id = 'c-a'", &[])
        .unwrap()
        .get(0);
    assert!(reported.is_some(), "the whole batch was written");
}
