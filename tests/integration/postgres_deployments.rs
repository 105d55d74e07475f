//! Administration changes (`DeploymentStorage`) and approval rules (`RuleStorage`) behave alike
//! on both backends: each contract runs on a SQLite store and on a PostgreSQL database, and
//! looks at the rows through a second connection in plain SQL. Plus what only PostgreSQL has
//! to guard: front ends changing one database at once.

use crate::postgres::TestDatabase;
use ferry::admin::Action;
use ferry::ids::{ComputerId, GroupId, UpdateId};
use ferry::store::postgres::PostgresStore;
use ferry::store::{
    ALL_COMPUTERS, Administer, DeploymentStorage, GroupRemoval, NewRule, RuleStorage, Store,
    StoreError, TargetGroup, UNASSIGNED_COMPUTERS,
};
use std::path::PathBuf;

/// The rows of a store under test, through a connection of their own (so only what was
/// committed shows). Values go into the SQL as literals (the tests' own GUIDs and names); each
/// query returns one text column.
trait Look {
    fn run(&self, sql: &str);
    fn texts(&self, sql: &str) -> Vec<String>;

    fn stamp(&self) -> i64 {
        let found = self.texts("SELECT value FROM settings WHERE key = 'deployment_stamp'");
        found.first().map_or(0, |v| v.parse().unwrap())
    }

    /// `approval_id update group action stamp`, by approval id.
    fn approvals(&self) -> Vec<String> {
        self.texts(
            "SELECT approval_id || ' ' || substr(update_id, 1, 4) || ' ' || substr(group_id, 1, 4) || ' ' || action || ' ' || changed_stamp
             FROM approvals ORDER BY approval_id",
        )
    }

    /// `stamp update group change`, sorted.
    fn changes(&self) -> Vec<String> {
        let mut all = self.texts(
            "SELECT changed_stamp || ' ' || substr(update_id, 1, 4) || ' ' || substr(group_id, 1, 4) || ' ' || change
             FROM approval_changes",
        );
        all.sort();
        all
    }

    fn groups_of(&self, computer: &ComputerId) -> Vec<String> {
        let mut groups = self.texts(&format!(
            "SELECT substr(group_id, 1, 4) FROM computer_groups WHERE computer_id = '{computer}'"
        ));
        groups.sort();
        groups
    }

    /// A computer in Unassigned Computers, with one reported event.
    fn add_computer(&self, computer: &ComputerId) {
        self.run(&format!(
            "INSERT INTO computers (computer_id, dns_name, first_seen_at, last_contact_at) VALUES ('{computer}', 'pc', 'now', 'now')"
        ));
        self.run(&format!(
            "INSERT INTO computer_groups (computer_id, group_id) VALUES ('{computer}', '{UNASSIGNED_COMPUTERS}')"
        ));
        self.run(&format!(
            "INSERT INTO events (event_instance_id, computer_id, event_id, source_id, update_id, revision_number, win32_hresult, received_at)
             VALUES ('{computer}', '{computer}', 1, 1, 'x', 1, 0, 'now')"
        ));
    }

    /// A newest revision (`state`: its publication state; `kind`/`title`: a category's).
    fn add_revision(&self, update: &str, update_type: &str, state: &str, kind: &str, title: &str) {
        self.run(&format!(
            "INSERT INTO revisions (update_id, revision_number, update_type, category_kind, is_latest, is_bundle, explicitly_deployable,
                 publication_state, title, creation_date, core_size, document_size, fragments_digest, changed_stamp, ingested_at)
             VALUES ('{update}', 1, '{update_type}', '{kind}', '1', '0', '1', '{state}', '{title}', '2024-01-01', 0, 0, '', 1, 'now')"
        ));
    }

    fn revision_id(&self, update: &str) -> String {
        self.texts(&format!("SELECT revision_id || '' FROM revisions WHERE update_id = '{update}'"))
            .remove(0)
    }
}

struct SqliteLook(PathBuf);

impl Look for SqliteLook {
    fn run(&self, sql: &str) {
        rusqlite::Connection::open(&self.0).unwrap().execute_batch(sql).unwrap();
    }

    fn texts(&self, sql: &str) -> Vec<String> {
        let conn = rusqlite::Connection::open(&self.0).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    }
}

struct PgLook<'a>(&'a TestDatabase);

impl Look for PgLook<'_> {
    fn run(&self, sql: &str) {
        self.0.client().batch_execute(sql).unwrap();
    }

    fn texts(&self, sql: &str) -> Vec<String> {
        self.0.client().query(sql, &[]).unwrap().iter().map(|r| r.get(0)).collect()
    }
}

fn update(n: u32) -> UpdateId {
    UpdateId::parse(&format!("{n:04x}0000-0000-4000-8000-000000000000")).unwrap()
}

fn approve(store: &mut dyn DeploymentStorage, ids: &[UpdateId], group: &GroupId, action: Action) {
    store
        .administer(
            "approving",
            |rows| {
                ids.iter()
                    .map(|id| rows.put_approval(id, group, action, None, Some("tester")))
                    .collect::<Result<Vec<_>, StoreError>>()
            },
            |a| !a.is_empty(),
        )
        .unwrap();
}

/// Approvals, declines and the stamp: what every backend does.
fn deployments_contract(store: &mut dyn DeploymentStorage, look: &dyn Look) {
    let all = GroupId::all_computers();
    let a11 = &all.as_str()[..4];
    assert_eq!(look.stamp(), 0);
    let first = store
        .administer(
            "approving",
            |rows| {
                [update(1), update(2)]
                    .iter()
                    .map(|id| rows.put_approval(id, &all, Action::Install, None, Some("tester")))
                    .collect::<Result<Vec<_>, StoreError>>()
            },
            |_| true,
        )
        .unwrap();
    assert_eq!(
        first.iter().map(|a| (a.approval_id, a.changed_stamp)).collect::<Vec<_>>(),
        [(1, 1), (2, 1)]
    );
    assert_eq!(look.stamp(), 1, "one change, one stamp");
    // A replacement keeps the approval's id and deployment GUID; the next approval's id skips
    // one (SQLite's AUTOINCREMENT counts the upsert's insert attempt, PostgreSQL's identity too).
    let replaced = store
        .administer(
            "approving",
            |rows| rows.put_approval(&update(1), &all, Action::Uninstall, Some("2030-01-01"), None),
            |_| true,
        )
        .unwrap();
    assert_eq!((replaced.approval_id, replaced.changed_stamp), (1, 2));
    assert_eq!(replaced.deployment_guid, first[0].deployment_guid);
    assert_eq!(replaced.deadline.as_deref(), Some("2030-01-01"));
    approve(store, &[update(3)], &all, Action::Install);
    assert_eq!(
        look.approvals(),
        [
            format!("1 0001 {a11} Uninstall 2"),
            format!("2 0002 {a11} Install 1"),
            format!("4 0003 {a11} Install 3"),
        ]
    );
    // Not committed: the closure says nothing changed, or fails.
    let value = store
        .administer(
            "approving",
            |rows| rows.put_approval(&update(4), &all, Action::Install, None, None),
            |_| false,
        )
        .unwrap();
    assert_eq!(value.changed_stamp, 4, "the change ran under the next stamp");
    let failed: Result<(), StoreError> = store.administer(
        "approving",
        |rows| {
            rows.put_approval(&update(5), &all, Action::Install, None, None)?;
            Err(StoreError::Refused("test refusal".into()))
        },
        |_| true,
    );
    assert!(matches!(failed, Err(StoreError::Refused(ref m)) if m == "test refusal"), "{failed:?}");
    assert_eq!(look.stamp(), 3, "neither advanced the stamp");
    assert_eq!(look.approvals().len(), 3, "nor stored anything");
    decline_and_remove(store, look, &all);
}

/// The second half of [`deployments_contract`]: removals, declines, expiry, and the log.
fn decline_and_remove(store: &mut dyn DeploymentStorage, look: &dyn Look, all: &GroupId) {
    let a11 = &all.as_str()[..4];
    let remove = |store: &mut dyn DeploymentStorage| {
        store.administer("removing", |rows| rows.remove_approval(&update(2), all), |r| *r).unwrap()
    };
    assert!(remove(store));
    assert!(!remove(store), "already gone");
    let decline = |store: &mut dyn DeploymentStorage| {
        store.administer("declining", |rows| rows.decline(&update(1), Some("tester")), |r| *r)
    };
    assert!(decline(store).unwrap());
    assert!(!decline(store).unwrap(), "already declined");
    let declined = store.administer("reading", |rows| rows.is_declined(&update(1)), |_| false);
    assert!(declined.unwrap());
    let undecline = |store: &mut dyn DeploymentStorage| {
        store.administer("undeclining", |rows| rows.undecline(&update(1)), |r| *r).unwrap()
    };
    assert!(undecline(store));
    assert!(!undecline(store), "no longer declined");
    assert_eq!(look.stamp(), 6);
    assert_eq!(look.approvals(), [format!("4 0003 {a11} Install 3")]);
    assert_eq!(
        look.changes(),
        [
            format!("1 0001 {a11} approved"),
            format!("1 0002 {a11} approved"),
            format!("2 0001 {a11} approved"),
            format!("3 0003 {a11} approved"),
            format!("4 0002 {a11} removed"),
            "5 0001  declined".to_string(),
            format!("5 0001 {a11} removed"),
            "6 0001  undeclined".to_string(),
        ]
    );
    look.add_revision(update(7).as_str(), "Software", "Expired", "", "withdrawn");
    look.add_revision(update(8).as_str(), "Software", "Published", "", "current");
    let expired = store
        .administer(
            "reading",
            |rows| {
                [7, 8, 9]
                    .map(|n| rows.is_expired(&update(n)))
                    .into_iter()
                    .collect::<Result<Vec<bool>, StoreError>>()
            },
            |_: &Vec<bool>| false,
        )
        .unwrap();
    assert_eq!(expired, [true, false, false]);
    assert_eq!(look.stamp(), 6);
}

/// Groups and the computers in them: what every backend does.
fn groups_contract(store: &mut dyn DeploymentStorage, look: &dyn Look) {
    let found = |store: &mut dyn DeploymentStorage, name: &str| {
        store.administer("reading", |rows| rows.group(name), |_| false).unwrap()
    };
    assert_eq!(found(store, "all COMPUTERS").unwrap().group_id.as_str(), ALL_COMPUTERS);
    assert_eq!(found(store, &ALL_COMPUTERS.to_uppercase()).unwrap().name, "All Computers");
    assert_eq!(found(store, "nowhere"), None);
    let group = |name: &str, parent: &GroupId| TargetGroup {
        group_id: GroupId::new_random(),
        name: name.to_string(),
        parent_id: Some(parent.clone()),
        is_builtin: false,
    };
    let all = GroupId::all_computers();
    let pilot = group("Pilot", &all);
    let ring = group("Ring 2", &pilot.group_id);
    let insert = |store: &mut dyn DeploymentStorage, g: &TargetGroup| {
        store.administer("creating", |rows| rows.insert_group(g), |_| true)
    };
    insert(store, &pilot).unwrap();
    insert(store, &ring).unwrap();
    let clash = insert(store, &group("PILOT", &all)).unwrap_err();
    assert!(matches!(clash, StoreError::Database { .. }), "{clash}");
    assert_eq!(look.stamp(), 2, "the refused insert advanced nothing");
    assert_eq!(found(store, "pilot"), Some(pilot.clone()));
    let tree = store
        .administer(
            "reading",
            |rows| {
                Ok::<_, StoreError>((
                    rows.parent_of(&ring.group_id)?,
                    rows.subgroup_count(&pilot.group_id)?,
                ))
            },
            |_| false,
        )
        .unwrap();
    assert_eq!(tree, (Some(pilot.group_id.clone()), 1));
    store.administer("moving", |rows| rows.set_parent(&ring.group_id, &all), |_| true).unwrap();
    let parent = store.administer("reading", |rows| rows.parent_of(&ring.group_id), |_| false);
    assert_eq!(parent.unwrap(), Some(all.clone()));
    place_and_remove(store, look, &pilot, &ring);
}

/// The second half of [`groups_contract`]: placing computers, and a group's removal with all
/// that hangs on it.
fn place_and_remove(
    store: &mut dyn DeploymentStorage,
    look: &dyn Look,
    pilot: &TargetGroup,
    ring: &TargetGroup,
) {
    let (c1, c2) = (
        ComputerId::parse("c1000000-0000-4000-8000-000000000000").unwrap(),
        ComputerId::parse("c2000000-0000-4000-8000-000000000000").unwrap(),
    );
    look.add_computer(&c1);
    look.add_computer(&c2);
    let place = |store: &mut dyn DeploymentStorage, c: &ComputerId, g: &GroupId, keep: bool| {
        store.administer("placing", |rows| rows.place_computer(c, g, keep), |_| true).unwrap()
    };
    place(store, &c1, &pilot.group_id, false);
    place(store, &c2, &ring.group_id, true);
    place(store, &c2, &pilot.group_id, true);
    let short = |g: &TargetGroup| g.group_id.as_str()[..4].to_string();
    let mut both = vec![short(pilot), short(ring)];
    both.sort();
    assert_eq!(look.groups_of(&c1), [short(pilot)]);
    assert_eq!(look.groups_of(&c2), both);
    approve(store, &[update(1)], &pilot.group_id, Action::Install);
    look.run(&format!(
        "INSERT INTO approval_rules (name, classifications, products, group_id, action, created_at) VALUES ('r', '[]', '[]', '{}', 'Install', 'now')",
        pilot.group_id
    ));
    let stamp = look.stamp();
    let removal = store.administer("removing", |rows| rows.delete_group(pilot), |_| true).unwrap();
    assert_eq!(
        removal,
        GroupRemoval {
            group: "Pilot".into(),
            computers_unassigned: 1,
            approvals_removed: 1,
            rules_removed: 1
        }
    );
    assert_eq!(look.stamp(), stamp + 1);
    assert_eq!(look.groups_of(&c1), [&UNASSIGNED_COMPUTERS[..4]], "only in Pilot: waits");
    assert_eq!(look.groups_of(&c2), [short(ring)], "in another group: stays there");
    assert!(look.approvals().is_empty());
    assert!(look.changes().last().unwrap().ends_with(&format!("0001 {} removed", short(pilot))));
    assert!(look.texts("SELECT name FROM approval_rules").is_empty());
    let forget = |store: &mut dyn DeploymentStorage| {
        store
            .administer(
                "forgetting",
                |rows| {
                    Ok::<_, StoreError>((rows.forget_computer(&c1)?, rows.computer_exists(&c1)?))
                },
                |_| true,
            )
            .unwrap()
    };
    assert_eq!(forget(store), (true, false));
    assert_eq!(forget(store), (false, false));
    assert!(look.groups_of(&c1).is_empty());
    assert!(
        look.texts(&format!("SELECT computer_id FROM events WHERE computer_id = '{c1}'"))
            .is_empty()
    );
    assert_eq!(look.texts("SELECT computer_id FROM computers"), [c2.to_string()]);
}

fn rule<'a>(name: &'a str, classifications: &'a [String], group: &'a str) -> NewRule<'a> {
    NewRule {
        name,
        classifications,
        products: &[],
        group,
        action: Action::Install,
        deadline_days: Some(7),
    }
}

fn refused(store: &mut dyn RuleStorage, rule: NewRule<'_>) -> StoreError {
    store.add_approval_rule(&rule).unwrap_err()
}

/// Approval rules and their refusals: what every backend does.
fn rules_contract(store: &mut dyn RuleStorage, look: &dyn Look) {
    assert!(store.approval_rules().unwrap().is_empty());
    let security = ["Security Updates".to_string()];
    let first = store.add_approval_rule(&rule(" Security ", &security, "all computers")).unwrap();
    assert_eq!((first.rule_id, first.name.as_str(), first.enabled), (1, "Security", true));
    assert_eq!(
        (first.group_id.as_str(), first.group_name.as_str()),
        (ALL_COMPUTERS, "All Computers")
    );
    assert_eq!((first.classifications.as_slice(), first.deadline_days), (&security[..], Some(7)));
    let e = refused(store, rule("SECURITY", &[], ALL_COMPUTERS));
    assert!(
        matches!(&e, StoreError::Refused(m) if m == "a rule named \"SECURITY\" exists already"),
        "{e}"
    );
    let e = refused(store, NewRule { action: Action::Block, ..rule("b", &[], ALL_COMPUTERS) });
    assert!(matches!(&e, StoreError::Refused(m) if m.contains("not Block")), "{e}");
    let e = refused(store, NewRule { deadline_days: Some(3651), ..rule("d", &[], ALL_COMPUTERS) });
    assert!(matches!(&e, StoreError::Refused(m) if m.contains("at most 3650 days")), "{e}");
    let e = refused(store, rule("g", &[], "nowhere"));
    assert!(
        matches!(&e, StoreError::NotFound(m) if m.starts_with("no computer group \"nowhere\"")),
        "{e}"
    );
    let e = refused(store, rule(" \u{200B} ", &[], ALL_COMPUTERS));
    assert!(matches!(&e, StoreError::Refused(_)), "{e}");
    // Once the store holds categories, a title must match one.
    look.add_revision(
        "5c000000-0000-4000-8000-000000000000",
        "Category",
        "Published",
        "UpdateClassification",
        "Security Updates",
    );
    let typo = ["Securty".to_string()];
    let e = refused(store, rule("typo", &typo, ALL_COMPUTERS));
    assert!(
        matches!(&e, StoreError::NotFound(m) if m.starts_with("no classification matches \"Securty\"")),
        "{e}"
    );
    let partial = ["security".to_string()];
    let second = store.add_approval_rule(&rule("Second", &partial, ALL_COMPUTERS)).unwrap();
    assert_eq!(second.rule_id, 2, "refusals took no id");
    let off = store.set_approval_rule_enabled("SECOND", false).unwrap();
    assert!(!off.enabled);
    let listed = store.approval_rules().unwrap();
    assert_eq!(listed, [first.clone(), off.clone()]);
    let removed = store.remove_approval_rule("1").unwrap();
    assert_eq!(removed, first);
    let e = store.remove_approval_rule("security").unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound(m) if m.starts_with("no approval rule \"security\"")),
        "{e}"
    );
    assert_eq!(store.approval_rules().unwrap(), [off]);
    assert_eq!(look.stamp(), 0, "rules are no deployment change");
    prerequisites_contract(store, look);
}

/// What rules read of the catalog: prerequisites and supersedence.
fn prerequisites_contract(store: &mut dyn RuleStorage, look: &dyn Look) {
    let (a, b, c) = (update(0xa), update(0xb), update(0xc));
    look.add_revision(a.as_str(), "Software", "Published", "", "needs b or c");
    look.add_revision(b.as_str(), "Software", "Expired", "", "b");
    let ra = look.revision_id(a.as_str());
    look.run(&format!(
        "INSERT INTO prerequisites (revision_id, clause, update_id, is_category) VALUES
             ({ra}, 2, '{c}', '0'), ({ra}, 1, '{b}', '0'), ({ra}, 1, '{c}', '0'), ({ra}, 3, 'cat', '1');
         INSERT INTO supersedences (revision_id, superseded_update_id) VALUES ({ra}, '{b}'), ({ra}, '{}');",
        update(0xd)
    ));
    let options = store.prerequisite_options(&a).unwrap();
    let shown: Vec<_> = options
        .iter()
        .map(|o| (o.clause, o.update_id.clone(), o.update_type.clone(), o.expired))
        .collect();
    assert_eq!(
        shown,
        [
            (1, b.clone(), Some("Software".to_string()), true),
            (1, c.clone(), None, false),
            (2, c, None, false),
        ]
    );
    assert!(options[0].created.is_some());
    assert!(store.prerequisite_options(&b).unwrap().is_empty());
    let superseded = store.superseded_update_ids().unwrap();
    assert_eq!(superseded.into_iter().collect::<Vec<_>>(), [b.to_string()], "d is not held");
}

fn sqlite() -> (tempfile::TempDir, Store, SqliteLook) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path()).unwrap();
    let look = SqliteLook(dir.path().join(ferry::store::DATABASE_FILE));
    (dir, store, look)
}

#[test]
fn deployments_behave_alike_on_both_backends() {
    let (_dir, mut store, look) = sqlite();
    deployments_contract(&mut *store, &look);
    let Some(db) = TestDatabase::new() else { return };
    deployments_contract(&mut PostgresStore::connect(&db.url).unwrap(), &PgLook(&db));
}

#[test]
fn groups_and_computers_behave_alike_on_both_backends() {
    let (_dir, mut store, look) = sqlite();
    groups_contract(&mut *store, &look);
    let Some(db) = TestDatabase::new() else { return };
    groups_contract(&mut PostgresStore::connect(&db.url).unwrap(), &PgLook(&db));
}

#[test]
fn rules_behave_alike_on_both_backends() {
    let (_dir, mut store, look) = sqlite();
    rules_contract(&mut *store, &look);
    let Some(db) = TestDatabase::new() else { return };
    rules_contract(&mut PostgresStore::connect(&db.url).unwrap(), &PgLook(&db));
}

/// Front ends changing one database at once: each change gets a stamp of its own, none is lost,
/// and the stamp counts them.
#[test]
fn concurrent_front_ends_get_distinct_stamps_and_lose_no_change() {
    let Some(db) = TestDatabase::new() else { return };
    PostgresStore::connect(&db.url).unwrap();
    let (threads, each) = (6u32, 5u32);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(threads as usize));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (url, barrier) = (db.url.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut store = PostgresStore::connect(&url).unwrap();
                barrier.wait();
                (0..each)
                    .map(|i| {
                        let id = update(t * 100 + i + 1);
                        let all = GroupId::all_computers();
                        let approval = store
                            .administer(
                                "approving",
                                |rows| rows.put_approval(&id, &all, Action::Install, None, None),
                                |_| true,
                            )
                            .unwrap();
                        approval.changed_stamp
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut stamps: Vec<i64> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    stamps.sort();
    let changes = i64::from(threads * each);
    assert_eq!(stamps, (1..=changes).collect::<Vec<_>>(), "distinct, none skipped");
    let look = PgLook(&db);
    assert_eq!(look.stamp(), changes);
    assert_eq!(look.approvals().len() as i64, changes, "every approval stored");
    assert_eq!(look.changes().len() as i64, changes, "and logged");
}
