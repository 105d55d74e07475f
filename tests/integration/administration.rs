//! Administration: the group tree, targeting, automatic approval rules on import, and
//! compliance from what clients report (real events from `conformance/wua-native/flow`).

use crate::bundles::Fixture;
use crate::served::{Agent, Served};
use crate::util::{ferry, json_of, stdout_of, wait_until};

fn fails(c: &mut assert_cmd::Command) -> String {
    let out = c.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected a failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn groups_form_a_tree_and_refuse_cycles_builtins_and_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    stdout_of(ferry(&data).args(["groups", "add", "Servers"]));
    stdout_of(ferry(&data).args(["groups", "add", "Domain Controllers", "--parent", "servers"]));
    let before = stdout_of(ferry(&data).args(["groups", "list", "--json"]));

    let err =
        fails(ferry(&data).args(["groups", "move", "Servers", "--parent", "Domain Controllers"]));
    assert!(err.contains("inside Servers"), "{err}");
    for (args, expected) in [
        (vec!["groups", "add", "servers"], "exists already"),
        (vec!["groups", "add", "Lab", "--parent", "Nowhere"], "no computer group \"Nowhere\""),
        (vec!["groups", "add", "Lab", "--parent", "Unassigned Computers"], "cannot have subgroups"),
        (vec!["groups", "remove", "All Computers"], "built in"),
        (vec!["groups", "remove", "Servers"], "subgroup"),
        (vec!["groups", "move", "Unassigned Computers", "--parent", "Servers"], "built in"),
        (
            vec![
                "updates",
                "approve",
                "0a1b2c3d-0000-0000-0000-000000000000",
                "--group",
                "Nowhere",
            ],
            "no computer group",
        ),
    ] {
        let err = fails(ferry(&data).args(&args));
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert_eq!(
        stdout_of(ferry(&data).args(["groups", "list", "--json"])),
        before,
        "refusals changed nothing"
    );

    stdout_of(ferry(&data).args(["groups", "remove", "Domain Controllers"]));
    let groups = json_of(ferry(&data).args(["groups", "list"]));
    let paths: Vec<&str> =
        groups.as_array().unwrap().iter().map(|g| g["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["All Computers", "All Computers/Unassigned Computers", "All Computers/Servers"]
    );
}

/// Client-side targeting creates the group a computer names (or, configured so, leaves it in
/// Unassigned Computers); server-side targeting keeps the administrator's placement, and the
/// running server offers the approvals of the computer's new group within a second.
#[test]
fn targeting_client_side_and_server_side() {
    let f = Fixture::new(300, "1KiB");
    let server = Served::start(&f.cache, &[]);
    let mut agent = Agent::new(&server);
    agent.handshake_as("pc01.plant.example", &["Lab"]);
    let computer = || json_of(ferry(&f.cache).args(["computers", "list"]))[0].clone();
    let group_of = |name: &str| {
        json_of(ferry(&f.cache).args(["groups", "list"]))
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .map(|g| g["group_id"].as_str().unwrap().to_string())
    };
    wait_until("the computer is recorded", || computer().is_object());
    assert_eq!(
        computer()["groups"][0].as_str(),
        group_of("Lab").as_deref(),
        "the group it named was created"
    );

    stdout_of(ferry(&f.cache).args(["groups", "targeting", "--create-missing-groups", "false"]));
    let mut other = Agent::new(&server);
    other.handshake_as("pc02.plant.example", &["Kiosks"]);
    wait_until("the second computer is recorded", || {
        json_of(ferry(&f.cache).args(["computers", "list"])).as_array().unwrap().len() == 2
    });
    assert!(group_of("Kiosks").is_none());
    let pc02 = json_of(ferry(&f.cache).args(["computers", "list", "--name", "pc02"]))[0].clone();
    assert_eq!(pc02["groups"][0].as_str(), Some(ferry::store::UNASSIGNED_COMPUTERS));

    // Server-side: the administrator places pc01 in Servers; what the client sends is ignored.
    stdout_of(ferry(&f.cache).args(["groups", "targeting", "--mode", "server"]));
    stdout_of(ferry(&f.cache).args(["groups", "add", "Servers"]));
    stdout_of(ferry(&f.cache).args(["computers", "move", "pc01", "--group", "Servers"]));
    let err = fails(ferry(&f.cache).args(["computers", "move", "pc99", "--group", "Servers"]));
    assert!(err.contains("no computer \"pc99\""), "{err}");
    let ids = stdout_of(ferry(&f.cache).args([
        "updates",
        "list",
        "--classification",
        "security",
        "--ids",
    ]));
    let approved = ids.lines().next().expect("a security update").to_string();
    stdout_of(ferry(&f.cache).args(["updates", "approve", &approved, "--group", "Servers"]));
    agent.handshake_as("pc01.plant.example", &["Lab"]);
    assert_eq!(
        computer()["groups"][0].as_str(),
        group_of("Servers").as_deref(),
        "server-side placement holds"
    );
    wait_until("the running server offers the Servers approval to pc01", || {
        let mut scan = Agent::new(&server);
        scan.id = agent.id.clone();
        scan.handshake_as("pc01.plant.example", &[]);
        scan.scan();
        scan.by_update().get(&approved).is_some_and(|u| u.action == "Install")
    });
}

#[test]
fn rules_approve_matching_updates_on_every_import_and_refuse_typos() {
    let f = Fixture::new(400, "1KiB");
    let isolated = f.root.join("isolated");
    // Rules exist before the first import (the store holds no categories yet).
    stdout_of(ferry(&isolated).args(["groups", "add", "Workstations"]));
    stdout_of(ferry(&isolated).args([
        "rules",
        "add",
        "--classification",
        "Security Updates",
        "--product",
        "Windows 11",
        "--group",
        "Workstations",
        "--deadline-days",
        "7",
    ]));
    let err = fails(ferry(&isolated).args(["rules", "add", "--group", "Nowhere"]));
    assert!(err.contains("no computer group"), "{err}");

    let bundle = f.export(&[]);
    let out =
        stdout_of(ferry(&isolated).args(["import"]).arg(&bundle).arg("--trust").arg(&f.public));
    assert!(out.contains("approved"), "{out}");
    let approved = json_of(ferry(&isolated).args(["updates", "list", "--approval", "approved"]));
    let security_w11 = json_of(ferry(&isolated).args([
        "updates",
        "list",
        "--classification",
        "security",
        "--product",
        "windows 11",
    ]));
    let approved_ids: Vec<&str> =
        approved.as_array().unwrap().iter().map(|u| u["update_id"].as_str().unwrap()).collect();
    assert!(!approved_ids.is_empty());
    for id in &approved_ids {
        assert!(
            security_w11.as_array().unwrap().iter().any(|u| u["update_id"] == *id),
            "{id} does not match the rule"
        );
    }
    // Now that categories exist, a classification nobody has is a typo.
    let err = fails(ferry(&isolated).args([
        "rules",
        "add",
        "--classification",
        "Secruity",
        "--group",
        "Workstations",
    ]));
    assert!(err.contains("no classification matches"), "{err}");
    // Declined updates stay declined when the rules run again.
    stdout_of(ferry(&isolated).args([
        "updates",
        "unapprove",
        approved_ids[0],
        "--group",
        "Workstations",
    ]));
    stdout_of(ferry(&isolated).args(["updates", "decline", approved_ids[0]]));
    stdout_of(ferry(&isolated).args(["rules", "apply"]));
    let err = fails(ferry(&isolated).args([
        "updates",
        "approve",
        approved_ids[0],
        "--group",
        "Workstations",
    ]));
    assert!(err.contains("is declined"), "{err}");
    let err = fails(ferry(&isolated).args([
        "updates",
        "approve",
        approved_ids[1],
        "--deadline",
        "2020-01-01",
    ]));
    assert!(err.contains("in the past"), "{err}");
    let declined = json_of(ferry(&isolated).args(["updates", "list", "--approval", "declined"]));
    assert_eq!(declined.as_array().unwrap().len(), 1);
}

/// The report's states come from the real events of a Windows 11 agent: the status report (156)
/// lists what it needs, and the two install failures (182) that follow it win.
#[test]
fn compliance_states_come_from_the_real_clients_events() {
    let conformance = crate::conformance_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let docs: Vec<_> = std::fs::read_dir(conformance.join("wsusss/docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    stdout_of(ferry(&data).args(["dev", "ingest"]).args(&docs));
    let server = Served::start(&data, &[]);
    let mut agent = Agent::new(&server);
    agent.handshake_as("pc01.plant.example", &[]);
    let cookie = format!(
        "<Expiration>{}</Expiration><EncryptedData>{}</EncryptedData>",
        agent.cookie.expiration,
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            agent.cookie.data.as_deref().unwrap_or_default()
        )
    );
    let mut needed_by_report = Vec::new();
    for exchange in ["000016", "000017", "000018"] {
        let dir = conformance.join("wua-native/flow").join(exchange);
        let mut body =
            String::from_utf8(crate::conformance::read(&dir.join("request.body"))).unwrap();
        let old = body
            .split("<cookie>")
            .nth(1)
            .and_then(|r| r.split("</cookie>").next())
            .unwrap()
            .to_string();
        body = body.replace(&old, &cookie);
        for list in body.split("<string>U=").skip(1) {
            needed_by_report =
                list.split("</string>").next().unwrap().split(';').map(str::to_lowercase).collect();
        }
        let r = agent.http.soap(
            "/ReportingWebService/ReportingWebService.asmx",
            "http://www.microsoft.com/SoftwareDistribution/ReportEventBatch",
            &body,
        );
        assert_eq!(r.status, 200, "{exchange}: {}", r.text());
    }
    let failed = "a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe";
    wait_until("the events are stored", || {
        json_of(ferry(&data).args(["report"]))["computers"][0]["counts"]["failed"].as_u64()
            == Some(1)
    });
    let report = json_of(ferry(&data).args(["report"]));
    let pc = &report["computers"][0];
    assert_eq!(pc["name"], "pc01.plant.example");
    assert_eq!(pc["failed"], serde_json::json!([failed]), "{pc}");
    let managed: Vec<String> = report["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["update_id"].as_str().unwrap().to_string())
        .collect();
    let needed: Vec<&str> =
        pc["needed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for id in &needed {
        assert!(
            needed_by_report.iter().any(|n| n == id),
            "{id} is needed but the status report did not list it"
        );
    }
    assert!(managed.iter().any(|m| m == failed));
    // Every software update of the catalog is accounted for, none unknown after a status report.
    let total: u64 =
        ["installed", "installed_pending_reboot", "needed", "failed", "not_applicable", "unknown"]
            .iter()
            .map(|k| pc["counts"][k].as_u64().unwrap())
            .sum();
    let software = json_of(ferry(&data).args(["updates", "list"])).as_array().unwrap().len() as u64;
    assert_eq!(total, software);
    assert_eq!(pc["counts"]["unknown"], 0);

    // Get-WsusUpdate -Status and Get-WsusComputer -UpdateInstallationStatus.
    assert_eq!(
        stdout_of(ferry(&data).args(["updates", "list", "--status", "failed", "--ids"])).trim(),
        failed
    );
    let failing =
        stdout_of(ferry(&data).args(["computers", "list", "--status", "failed", "--ids"]));
    assert_eq!(failing.trim(), agent.id.to_lowercase());
    assert!(
        stdout_of(ferry(&data).args([
            "computers",
            "list",
            "--status",
            "installed-pending-reboot",
            "--ids"
        ]))
        .trim()
        .is_empty()
    );
    // Get-WsusClassification / Get-WsusProduct: what the store holds.
    let products = json_of(ferry(&data).args(["products", "list"]));
    assert_eq!(products[0]["id"], "dd78b8a1-0b20-45c1-add6-4da72e9364cf", "{products}");
    assert!(
        json_of(ferry(&data).args(["classifications", "list"])).as_array().unwrap().is_empty(),
        "none among these documents"
    );

    // The same report as CSV and HTML, and the failed filter.
    let csv = stdout_of(
        ferry(&data).args(["report", "--format", "csv", "--by", "update", "--status", "failed"]),
    );
    assert!(csv.lines().count() == 2 && csv.contains(failed), "{csv}");
    let html = dir.path().join("report.html");
    stdout_of(ferry(&data).args(["report", "--format", "html", "--out"]).arg(&html));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("pc01.plant.example") && !page.contains("<script"), "{page}");
    let err = fails(ferry(&data).args(["report", "--status", "sometimes"]));
    assert!(err.contains("--status"), "{err}");
}

/// Cleanup follows WSUS's rules, lists exactly what it then does, and leaves a consistent store.
#[test]
fn cleanup_declines_superseded_updates_and_deletes_unneeded_content_after_a_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    stdout_of(ferry(&data).args(["dev", "synth", "--updates", "600", "--payload-bytes", "2000"]));
    // Expired updates are not offered for approval, and refused when named.
    let all = json_of(ferry(&data).args(["updates", "list"]));
    let expired = all
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["publication_state"] == "Expired")
        .expect("the catalog has an expired update");
    let expired_id = expired["update_id"].as_str().unwrap();
    let unapproved =
        stdout_of(ferry(&data).args(["updates", "list", "--approval", "unapproved", "--ids"]));
    assert!(!unapproved.contains(expired_id));
    let err = fails(ferry(&data).args(["updates", "approve", expired_id]));
    assert!(err.contains("expired"), "{err}");
    let ids =
        stdout_of(ferry(&data).args(["updates", "list", "--approval", "unapproved", "--ids"]));
    stdout_of(ferry(&data).args(["updates", "approve", "-"]).write_stdin(ids));
    // A stray file in the content tree, as an interrupted copy leaves one.
    let stray = data.join("content/AB/0123456789ABCDEF0123456789ABCDEF012345AB.cab");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"left behind").unwrap();
    // Older than a day: cleanup leaves younger files to imports in progress.
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    std::fs::File::options().write(true).open(&stray).unwrap().set_modified(two_days_ago).unwrap();
    let young = data.join("content/AC/0123456789ABCDEF0123456789ABCDEF012345AC.cab");
    std::fs::create_dir_all(young.parent().unwrap()).unwrap();
    std::fs::write(&young, b"an import in progress").unwrap();
    let count_files = || crate::util::file_snapshot(&data.join("content")).len();
    let err = fails(ferry(&data).args(["cleanup", "--obsolete-computers", "0"]));
    assert!(err.contains("1 to 36500"), "{err}");
    let files_before = count_files();

    let args = ["cleanup", "--decline-superseded", "--decline-expired", "--unneeded-content"];
    let dry = json_of(ferry(&data).args(args).arg("--dry-run"));
    let plan = &dry["plan"];
    assert!(!plan["declines"].as_array().unwrap().is_empty(), "{dry}");
    assert!(
        plan["files"].as_array().unwrap().iter().any(|f| f["known"] == false),
        "the stray file is listed"
    );
    assert_eq!(count_files(), files_before, "a dry run deletes nothing");
    assert!(
        json_of(ferry(&data).args(["updates", "list", "--approval", "declined"]))
            .as_array()
            .unwrap()
            .is_empty()
    );

    let done = json_of(ferry(&data).args(args));
    assert_eq!(done["plan"], dry["plan"].clone(), "the run does what the dry run listed");
    let declined = json_of(ferry(&data).args(["updates", "list", "--approval", "declined"]));
    assert_eq!(declined.as_array().unwrap().len(), plan["declines"].as_array().unwrap().len());
    assert_eq!(count_files(), files_before - plan["files"].as_array().unwrap().len());
    assert!(!stray.exists());
    assert!(young.exists(), "a young stray file stays");
    stdout_of(ferry(&data).args(["check"]));
    // Nothing superseded is left to decline, no content to delete.
    let again = json_of(ferry(&data).args(args).arg("--dry-run"));
    assert!(
        again["plan"]["declines"].as_array().unwrap().is_empty()
            && again["plan"]["files"].as_array().unwrap().is_empty(),
        "{again}"
    );
    let err = fails(ferry(&data).arg("cleanup"));
    assert!(err.contains("say what to clean"), "{err}");
}

/// Approvals decided on the connected side travel signed in the manifest, show in `inspect`,
/// are refused without the importer's consent and applied with it; tampering breaks the signature.
#[test]
fn approvals_travel_with_the_bundle_and_apply_only_with_consent() {
    let f = Fixture::new(400, "1KiB");
    // Updates the bundle carries (the fixture profile's classifications), not yet superseded.
    let listed = json_of(ferry(&f.cache).args([
        "updates",
        "list",
        "--approval",
        "unapproved",
        "--product",
        "windows 11",
    ]));
    let carried =
        ["Security Updates", "Critical Updates", "Definition Updates", "Updates", "Upgrades"];
    let mut critical = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["classification"].as_str().is_some_and(|c| carried.contains(&c)))
        .map(|u| u["update_id"].as_str().unwrap());
    let (to_approve, to_decline) =
        (critical.next().unwrap().to_string(), critical.next().unwrap().to_string());
    // A decision made in the cache travels with from_cache.
    stdout_of(ferry(&f.cache).args(["groups", "add", "Servers"]));
    let cached = critical.next().unwrap().to_string();
    stdout_of(ferry(&f.cache).args(["updates", "approve", &cached, "--group", "Servers"]));
    let profile = std::fs::read_to_string(&f.profile).unwrap();
    std::fs::write(
        &f.profile,
        format!(
            "{profile}\n[approvals]\nrules = [{{ classifications = [\"Security Updates\"], products = [\"Windows 11\"], group = \"Workstations\", deadline_days = 7 }}]\n\
             approve = [{{ update = \"{to_approve}\", group = \"Pilot\" }}]\ndecline = [\"{to_decline}\"]\nfrom_cache = true\n"
        ),
    )
    .unwrap();
    let bundle = f.export(&[]);
    let inspected = json_of(ferry(&f.cache).args(["inspect"]).arg(&bundle));
    let policy = &inspected["manifest"]["approval_policy"];
    assert_eq!(policy["rules"][0]["group"], "Workstations", "{policy}");
    let approved_in_policy: Vec<&str> = policy["approve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["update"].as_str().unwrap())
        .collect();
    assert!(
        approved_in_policy.contains(&to_approve.as_str())
            && approved_in_policy.contains(&cached.as_str()),
        "{policy}"
    );
    assert_eq!(policy["decline"], serde_json::json!([to_decline]));

    // Without consent: imported, nothing of the policy applied, and the importer is told.
    let isolated = f.root.join("isolated");
    let out = ferry(&isolated)
        .args(["import"])
        .arg(&bundle)
        .arg("--trust")
        .arg(&f.public)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("approval policy") && err.contains("--apply-approvals"), "{err}");
    assert!(
        json_of(ferry(&isolated).args(["updates", "list", "--approval", "approved"]))
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(json_of(ferry(&isolated).args(["rules", "list"])).as_array().unwrap().is_empty());

    // A tampered policy breaks the signature: refused with exit 10.
    let copy = f.root.join("tampered");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&bundle).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let manifest = std::fs::read_to_string(copy.join("manifest.json")).unwrap();
    std::fs::write(
        copy.join("manifest.json"),
        manifest.replace("\"Workstations\"", "\"Everyone\""),
    )
    .unwrap();
    let out = ferry(&f.root.join("other"))
        .args(["import", "--apply-approvals"])
        .arg(&copy)
        .arg("--trust")
        .arg(&f.public)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10), "{}", String::from_utf8_lossy(&out.stderr));

    // With consent (a second run of the same import): groups, rules, approvals, declines.
    let out = stdout_of(
        ferry(&isolated)
            .args(["import", "--apply-approvals"])
            .arg(&bundle)
            .arg("--trust")
            .arg(&f.public),
    );
    assert!(out.contains("approval policy applied"), "{out}");
    let groups = json_of(ferry(&isolated).args(["groups", "list"]));
    for name in ["Workstations", "Pilot", "Servers"] {
        assert!(
            groups.as_array().unwrap().iter().any(|g| g["name"] == name),
            "{name} was created: {groups}"
        );
    }
    let rules = json_of(ferry(&isolated).args(["rules", "list"]));
    assert_eq!(
        rules[0]["name"].as_str().map(|n| n.starts_with("test-channel: ")),
        Some(true),
        "{rules}"
    );
    let approved: Vec<String> =
        json_of(ferry(&isolated).args(["updates", "list", "--approval", "approved"]))
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["update_id"].as_str().unwrap().to_string())
            .collect();
    assert!(approved.contains(&to_approve) && approved.contains(&cached), "{approved:?}");
    let declined = json_of(ferry(&isolated).args(["updates", "list", "--approval", "declined"]));
    assert_eq!(declined[0]["update_id"].as_str(), Some(to_decline.as_str()));

    // A policy naming an update the cache does not hold stops the export, naming it.
    let profile = std::fs::read_to_string(&f.profile).unwrap();
    std::fs::write(
        &f.profile,
        profile.replace(&format!("update = \"{to_approve}\""), "update = \"KB999999\""),
    )
    .unwrap();
    let err = fails(&mut f.export_command(&f.profile));
    assert!(err.contains("KB999999") && err.contains("[approvals]"), "{err}");
}

/// Approving an update for install approves the software updates it needs first (a real
/// Defender update as the prerequisite of a derived one), unless told not to.
#[test]
fn approving_an_update_approves_the_updates_it_needs_first() {
    let conformance = crate::conformance_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let docs = conformance.join("wsusss/docs");
    let base = "a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe";
    let real = std::fs::read_to_string(docs.join(format!("{base}-r200.xml"))).unwrap();
    let derive = |id: &str| {
        real.replacen(
            &format!("UpdateID=\"{base}\" RevisionNumber=\"200\""),
            &format!("UpdateID=\"{id}\" RevisionNumber=\"200\""),
            1,
        )
        .replacen(
            "<upd:Prerequisites>",
            &format!("<upd:Prerequisites><upd:UpdateIdentity UpdateID=\"{base}\" />"),
            1,
        )
    };
    let (needs, alone) =
        ("11111111-2222-4333-8444-555555555555", "66666666-7777-4888-8999-aaaaaaaaaaaa");
    std::fs::write(dir.path().join("needs.xml"), derive(needs)).unwrap();
    std::fs::write(dir.path().join("alone.xml"), derive(alone)).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&docs).unwrap().map(|e| e.unwrap().path()).collect();
    files.push(dir.path().join("needs.xml"));
    files.push(dir.path().join("alone.xml"));
    stdout_of(ferry(&data).args(["dev", "ingest"]).args(&files));

    let out = ferry(&data).args(["updates", "approve", needs]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("also approving 1 prerequisite") && err.contains(base), "{err}");
    let approved = || -> Vec<String> {
        json_of(ferry(&data).args(["updates", "list", "--approval", "approved"]))
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["update_id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut got = approved();
    got.sort();
    assert_eq!(got, [needs.to_string(), base.to_string()]);

    // Already approved prerequisites are not approved again; --without-prerequisites skips them.
    stdout_of(ferry(&data).args(["updates", "unapprove", base]));
    stdout_of(ferry(&data).args(["updates", "approve", alone, "--without-prerequisites"]));
    assert!(!approved().contains(&base.to_string()));
}
