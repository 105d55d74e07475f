//! Every administration rule, over a real store with a generated catalog.

use super::*;
use crate::store::{ALL_COMPUTERS, ApprovalState, NewRule, UpdateFilter};
use crate::synth::{SynthOptions, synthesize};

struct Site {
    _dir: tempfile::TempDir,
    store: Store,
    /// Approvable software updates, newest first.
    software: Vec<String>,
}

fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_or_create(dir.path()).unwrap();
    let options =
        SynthOptions { updates: 400, seed: 7, languages: vec!["en".into()], payload_bytes: 1024 };
    synthesize(&mut store, &options, &mut |_, _| {}).unwrap();
    let filter = UpdateFilter { approval: Some(ApprovalState::Unapproved), ..Default::default() };
    let software = store
        .list_updates(&filter)
        .unwrap()
        .into_iter()
        .filter(|u| u.update_type == "Software" && !u.is_expired())
        .map(|u| u.update_id.into())
        .collect::<Vec<String>>();
    assert!(software.len() >= 5, "the generated catalog has software updates");
    Site { _dir: dir, store, software }
}

fn ids(texts: &[String]) -> Vec<UpdateId> {
    texts.iter().map(|t| UpdateId::parse(t).unwrap()).collect()
}

fn install<'a>(updates: &'a [String], group: &'a str) -> Approve<'a> {
    Approve {
        updates,
        group,
        action: Action::Install,
        deadline: None,
        admin: Some("test"),
        with_prerequisites: false,
    }
}

/// What an administrator can observe: approvals, declines and the deployment stamp.
fn state(store: &Store) -> (Vec<(UpdateId, crate::ids::GroupId, Action)>, Vec<UpdateId>, i64) {
    let mut approvals: Vec<_> = store
        .approvals()
        .unwrap()
        .into_iter()
        .map(|a| (a.update_id, a.group_id, a.action))
        .collect();
    approvals.sort();
    let mut declines: Vec<_> = store.declines().unwrap().into_iter().map(|d| d.update_id).collect();
    declines.sort();
    (approvals, declines, store.deployment_stamp().unwrap())
}

#[test]
fn refused_approvals_change_nothing_and_say_why() {
    let mut site = site();
    let (ok, declined, expired) =
        (site.software[0].clone(), site.software[1].clone(), site.software[2].clone());
    let mut admin = AdminService::new(&mut site.store);
    admin.decline(std::slice::from_ref(&declined), None).unwrap();
    admin.store().expire_for_test(&expired);
    let before = state(admin.store());
    // (updates, group, action, deadline, words of the refusal)
    type Case<'a> = (Vec<String>, &'a str, Action, Option<&'a str>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![ok.clone(), declined.clone()],
            ALL_COMPUTERS,
            Action::Install,
            None,
            "is declined: undecline it",
        ),
        (vec![ok.clone(), expired.clone()], ALL_COMPUTERS, Action::Install, None, "is expired"),
        (
            vec![ok.clone()],
            "Nowhere",
            Action::Install,
            None,
            "no computer group \"Nowhere\"; the groups are: All Computers",
        ),
        (vec![ok.clone()], ALL_COMPUTERS, Action::Install, Some("2001-01-01"), "deadline"),
        (vec![], ALL_COMPUTERS, Action::Install, None, "no updates named"),
        (vec!["KB0".into()], ALL_COMPUTERS, Action::Install, None, "KB0"),
    ];
    for (updates, group, action, deadline, words) in cases {
        let request = Approve { action, deadline, ..install(&updates, group) };
        let err = admin.approve(&request).expect_err(words).to_string();
        assert!(err.contains(words), "{words:?} not in {err:?}");
        assert_eq!(state(admin.store()), before, "refused ({words}) yet something changed");
    }
    // Uninstalling an expired update is allowed: it is how a withdrawn update is taken back.
    let request = Approve {
        action: Action::Uninstall,
        ..install(std::slice::from_ref(&expired), ALL_COMPUTERS)
    };
    assert_eq!(admin.approve(&request).unwrap().approvals[0].action, Action::Uninstall);
}

#[test]
fn approvals_replace_the_groups_earlier_one_and_advance_the_stamp_once() {
    let mut site = site();
    let ids = site.software[..3].to_vec();
    let mut admin = AdminService::new(&mut site.store);
    let lab = admin.create_group("Lab", None).unwrap();
    let stamp = admin.store().deployment_stamp().unwrap();
    let approved = admin.approve(&install(&ids, "lab")).unwrap();
    assert_eq!(
        (approved.group.group_id.as_str(), approved.approvals.len()),
        (lab.group_id.as_str(), 3)
    );
    assert_eq!(admin.store().deployment_stamp().unwrap(), stamp + 1, "one change, one stamp");
    let again = Approve {
        action: Action::Uninstall,
        deadline: Some("2099-01-01"),
        ..install(&ids[..1], "Lab")
    };
    admin.approve(&again).unwrap();
    let approvals = admin.store().approvals().unwrap();
    let first: Vec<_> = approvals.iter().filter(|a| a.update_id == ids[0]).collect();
    assert_eq!(first.len(), 1, "one approval per update and group");
    assert_eq!(
        (first[0].action, first[0].deadline.as_deref()),
        (Action::Uninstall, Some("2099-01-01T00:00:00Z"))
    );
}

#[test]
fn unapprove_decline_and_undecline_count_what_they_changed() {
    let mut site = site();
    let ids = site.software[..3].to_vec();
    let mut admin = AdminService::new(&mut site.store);
    admin.approve(&install(&ids, ALL_COMPUTERS)).unwrap();
    let (group, removed) = admin.unapprove(&ids[..1], "all computers").unwrap();
    assert_eq!((group.name.as_str(), removed), ("All Computers", 1));
    assert_eq!(admin.unapprove(&ids[..1], ALL_COMPUTERS).unwrap().1, 0, "nothing left to remove");
    let stamp = admin.store().deployment_stamp().unwrap();
    assert_eq!(admin.decline(&ids[1..], None).unwrap(), 2);
    assert!(admin.store().approvals().unwrap().is_empty(), "declining removes the approvals");
    assert_eq!(admin.decline(&ids[1..], None).unwrap(), 0, "already declined");
    assert_eq!(
        admin.store().deployment_stamp().unwrap(),
        stamp + 1,
        "a change that changed nothing keeps the stamp"
    );
    assert_eq!(admin.undecline(&ids).unwrap(), 2);
    admin.approve(&install(&ids, ALL_COMPUTERS)).expect("approvable again");
}

#[test]
fn prerequisites_come_along_only_for_install_when_asked() {
    let mut site = site();
    let (with_prerequisite, needed, needed_by_that) =
        (site.software[0].clone(), site.software[1].clone(), site.software[2].clone());
    site.store.require_for_test(&with_prerequisite, &needed);
    site.store.require_for_test(&needed, &needed_by_that);
    let mut admin = AdminService::new(&mut site.store);
    let one = std::slice::from_ref(&with_prerequisite);
    let without = admin.approve(&install(one, ALL_COMPUTERS)).unwrap();
    assert!(without.prerequisites.is_empty());
    admin.unapprove(one, ALL_COMPUTERS).unwrap();
    let uninstall = admin
        .approve(&Approve {
            action: Action::Uninstall,
            with_prerequisites: true,
            ..install(one, ALL_COMPUTERS)
        })
        .unwrap();
    assert!(uninstall.prerequisites.is_empty(), "uninstalling needs nothing first");
    let with = admin
        .approve(&Approve { with_prerequisites: true, ..install(one, ALL_COMPUTERS) })
        .unwrap();
    let mut came_along = with.prerequisites.clone();
    came_along.sort();
    let mut expected = vec![needed, needed_by_that];
    expected.sort();
    assert_eq!(came_along, expected, "what it needs, and what that needs");
    assert_eq!(with.approvals.len(), 3);
    assert!(
        unapproved_prerequisites(admin.store(), &ids(one), ALL_COMPUTERS).unwrap().is_empty(),
        "nothing it needs is left unapproved"
    );
}

#[test]
fn rules_only_add_approvals_and_leave_an_administrators_decision_alone() {
    let mut site = site();
    let (mine, declined) = (site.software[0].clone(), site.software[1].clone());
    let mut admin = AdminService::new(&mut site.store);
    admin.decline(std::slice::from_ref(&declined), None).unwrap();
    admin
        .approve(&Approve {
            action: Action::Uninstall,
            ..install(std::slice::from_ref(&mine), ALL_COMPUTERS)
        })
        .unwrap();
    let rule = NewRule {
        name: "everything",
        classifications: &[],
        products: &[],
        group: ALL_COMPUTERS,
        action: Action::Install,
        deadline_days: Some(3),
    };
    admin.store().add_approval_rule(&rule).unwrap();
    let outcomes = admin.apply_approval_rules().unwrap();
    assert_eq!(outcomes.len(), 1);
    let approved = &outcomes[0].approved;
    assert!(!approved.is_empty());
    assert!(!approved.iter().any(|a| *a == mine || *a == declined));
    let approvals = admin.store().approvals().unwrap();
    let by_rule =
        approvals.iter().filter(|a| a.admin.as_deref() == Some("rule: everything")).count();
    assert_eq!(by_rule, approved.len(), "the rule signs what it approved");
    assert!(
        approvals.iter().any(|a| a.update_id == mine && a.action == Action::Uninstall),
        "the administrator's decision stays"
    );
    assert!(
        admin.apply_approval_rules().unwrap()[0].approved.is_empty(),
        "a second run finds nothing new"
    );
    let block = NewRule { name: "block", action: Action::Block, ..rule };
    assert!(
        admin
            .store()
            .add_approval_rule(&block)
            .unwrap_err()
            .to_string()
            .contains("Install or Uninstall")
    );
}

#[test]
fn computers_and_targeting_are_named_or_refused() {
    let mut site = site();
    let mut admin = AdminService::new(&mut site.store);
    let err = admin.move_computers(&["pc99".into()], ALL_COMPUTERS, false).unwrap_err();
    assert_eq!(
        (err.kind(), err.to_string()),
        (ErrorKind::NotFound, "no computer \"pc99\" (nothing was changed)".into())
    );
    let before = admin.store().targeting().unwrap();
    let err = admin
        .set_targeting(&TargetingChange { mode: Some("both"), ..Default::default() })
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.to_string()),
        (ErrorKind::Refused, "targeting mode \"both\": use client or server".into())
    );
    assert_eq!(admin.store().targeting().unwrap(), before);
    for (asked, refused) in [(1000, false), (1001, true), (u32::MAX, true)] {
        let change = TargetingChange { max_client_groups: Some(asked), ..Default::default() };
        let result = admin.set_targeting(&change);
        assert_eq!(result.is_err(), refused, "{asked}: {result:?}");
        if let Err(err) = result {
            assert_eq!(err.kind(), ErrorKind::Refused);
            assert!(err.to_string().starts_with("at most 1000 groups"), "{err}");
            assert_eq!(admin.store().targeting().unwrap().max_client_groups, 1000);
        }
    }
    let server = admin
        .set_targeting(&TargetingChange {
            mode: Some("Server"),
            max_client_groups: Some(3),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        (server.mode, server.max_client_groups, server.create_missing_groups),
        (crate::store::TargetingMode::Server, 3, before.create_missing_groups)
    );
    let err = admin
        .add_rule(&NewRuleRequest {
            name: None,
            classifications: &[],
            products: &[],
            group: "Lab",
            action: Action::Block,
            deadline_days: None,
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
}

/// The group tree's rules, in order over one store: each step, and what it must say. A refused
/// step changes nothing (the stamp and the tree stay).
#[test]
fn the_group_tree_stays_a_tree() {
    let mut site = site();
    let mut admin = AdminService::new(&mut site.store);
    enum Step {
        Create(&'static str, Option<&'static str>),
        Move(&'static str, &'static str),
        Remove(&'static str),
    }
    use Step::*;
    let steps: [(Step, Result<(), &str>); 14] = [
        (Create("Plant", None), Ok(())),
        (Create("Line 1", Some("Plant")), Ok(())),
        (Create("Cell A", Some("line 1")), Ok(())),
        (Create("plant", None), Err("a group named \"plant\" exists already")),
        (Create("Lab", Some("Nowhere")), Err("no computer group \"Nowhere\"; the groups are: ")),
        (Create("Lab", Some("Unassigned Computers")), Err("cannot have subgroups")),
        (Move("Plant", "Cell A"), Err("Plant cannot move under Cell A: Cell A is inside Plant")),
        (Move("Plant", "Plant"), Err("Plant cannot move under Plant")),
        (Move("All Computers", "Plant"), Err("All Computers is built in and stays")),
        (Move("Cell A", "Unassigned Computers"), Err("cannot have subgroups")),
        (Move("Cell A", "Plant"), Ok(())),
        (Remove("Plant"), Err("Plant has 2 subgroup(s)")),
        (Remove("Unassigned Computers"), Err("built in and cannot be removed")),
        (Remove("Cell A"), Ok(())),
    ];
    for (step, expected) in steps {
        let before =
            (state(admin.store()).2, crate::admin::group_tree(admin.store()).unwrap().len());
        let (what, result) = match step {
            Create(name, parent) => {
                (format!("create {name}"), admin.create_group(name, parent).map(|_| ()))
            }
            Move(name, parent) => {
                (format!("move {name} under {parent}"), admin.move_group(name, parent).map(|_| ()))
            }
            Remove(name) => (format!("remove {name}"), admin.remove_group(name).map(|_| ())),
        };
        let after =
            (state(admin.store()).2, crate::admin::group_tree(admin.store()).unwrap().len());
        match (result, expected) {
            (Ok(()), Ok(())) => assert_eq!(after.0, before.0 + 1, "{what}: one stamp"),
            (Err(e), Err(words)) => {
                assert!(e.to_string().contains(words), "{what}: {e}");
                assert_eq!(after, before, "{what}: refused, nothing changed");
            }
            (got, expected) => panic!("{what}: {got:?}, expected {expected:?}"),
        }
    }
    let tree = crate::admin::group_tree(admin.store()).unwrap();
    let line = tree.iter().find(|g| g.group.name == "Line 1").unwrap();
    assert_eq!(line.depth, 2, "Line 1 stays under Plant under All Computers");
}

/// A cycle written into the store by hand (the rules never make one) is refused when met, not
/// followed forever.
#[test]
fn a_stored_cycle_is_refused_not_followed() {
    let mut site = site();
    let mut admin = AdminService::new(&mut site.store);
    let a = admin.create_group("A", None).unwrap().group_id;
    let b = admin.create_group("B", Some("A")).unwrap().group_id;
    admin.create_group("C", None).unwrap();
    site.store.administer("a hand-made cycle", |rows| rows.set_parent(&a, &b), |_| true).unwrap();
    let mut admin = AdminService::new(&mut site.store);
    let refused = admin.move_group("C", "B").unwrap_err().to_string();
    assert!(refused.contains("has a cycle through"), "{refused}");
}
