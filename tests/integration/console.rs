//! The admin API (bearer token) and the web console (headless Chromium, `tests/browser/`).

use crate::served::{Agent, Served, require};
use crate::util::{ferry, json_of, stdout_of, wait_until};
use std::path::Path;

fn catalog_with_token(dir: &Path) -> (std::path::PathBuf, String) {
    let data = dir.join("store");
    stdout_of(ferry(&data).args(["dev", "synth", "--updates", "600", "--payload-bytes", "1000"]));
    let token = stdout_of(ferry(&data).args(["admin", "token"])).trim().to_string();
    (data, token)
}

/// The API answers nothing without the token, and refuses bad changes with 4xx, changing nothing.
#[test]
fn the_admin_api_needs_the_token_and_refuses_bad_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (data, token) = catalog_with_token(dir.path());
    let out = ferry(&data).args(["admin", "token"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a second token needs --rotate");
    let server = Served::start(&data, &[]);
    let mut http = server.http();
    let auth = format!("Bearer {token}");
    let call = |http: &mut crate::served::Http, method: &str, path: &str, body: &str| {
        let r = http.request(
            method,
            path,
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            body.as_bytes(),
        );
        let json: serde_json::Value =
            serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
        (r.status, json)
    };
    let approvals_before = call(&mut http, "GET", "/api/v1/status", "").1["approvals"].clone();

    let r = http.request("GET", "/api/v1/status", &[], b"");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"ferry\""));
    let r = http.request(
        "POST",
        "/api/v1/updates/approve",
        &[("Authorization", "Bearer ferry_0000")],
        br#"{"ids":["KB1"]}"#,
    );
    assert_eq!(r.status, 403);
    // The token is checked before a body is read: a stranger's broken body gets 401, not 400.
    let r = http.request("POST", "/api/v1/updates/approve", &[], b"{not json");
    assert_eq!(r.status, 401);

    let id = stdout_of(ferry(&data).args([
        "updates",
        "list",
        "--approval",
        "unapproved",
        "--classification",
        "security",
        "--ids",
    ]))
    .lines()
    .next()
    .unwrap()
    .to_string();
    for (method, path, body, status) in [
        (
            "POST",
            "/api/v1/updates/approve",
            format!(r#"{{"ids":["{id}"],"group":"Nowhere"}}"#),
            404,
        ),
        (
            "POST",
            "/api/v1/updates/approve",
            format!(r#"{{"ids":["{id}"],"deadline":"2001-01-01"}}"#),
            422,
        ),
        ("POST", "/api/v1/updates/approve", format!(r#"{{"ids":["{id}"],"colour":"red"}}"#), 422),
        ("POST", "/api/v1/updates/approve", r#"{"ids":[]}"#.to_string(), 422),
        ("POST", "/api/v1/updates/approve", "{not json".to_string(), 400),
        (
            "POST",
            "/api/v1/groups/All%20Computers/move",
            r#"{"parent":"Unassigned Computers"}"#.to_string(),
            422,
        ),
        ("DELETE", "/api/v1/groups/Nowhere", String::new(), 404),
        ("GET", "/api/v1/nothing-here", String::new(), 404),
        ("PATCH", "/api/v1/groups", String::new(), 405),
        ("POST", "/api/v1/updates?approval=sideways", String::new(), 405),
        ("GET", "/api/v1/updates?approval=sideways", String::new(), 422),
        ("DELETE", "/api/v1/computers/nobody", String::new(), 404),
        ("PUT", "/api/v1/targeting", r#"{"mode":7}"#.to_string(), 422),
        ("PUT", "/api/v1/targeting", r#"{"max_client_groups":4000000000}"#.to_string(), 422),
        // A path segment that is not UTF-8 once decoded, and one longer than any name.
        ("DELETE", "/api/v1/groups/%ff%fe", String::new(), 400),
        ("DELETE", &format!("/api/v1/computers/{}", "x".repeat(5000)), String::new(), 404),
    ] {
        let (got, json) = call(&mut http, method, path, &body);
        assert_eq!(got, status, "{method} {path} {body}: {json}");
        let error = json["error"].as_str().unwrap_or_default();
        assert!(!error.is_empty() && error.len() < 400, "a short error, not an echo: {json}");
    }
    assert_eq!(
        call(&mut http, "GET", "/api/v1/status", "").1["approvals"],
        approvals_before,
        "refusals changed nothing"
    );

    // What the CLI does, the API does: a group, an approval for it, a rule, a report.
    let (status, group) = call(&mut http, "POST", "/api/v1/groups", r#"{"name":"Servers"}"#);
    assert_eq!(status, 201, "{group}");
    let (status, approved) = call(
        &mut http,
        "POST",
        "/api/v1/updates/approve",
        &format!(r#"{{"ids":["{id}"],"group":"Servers"}}"#),
    );
    assert_eq!((status, approved["approved"].as_u64()), (200, Some(1)), "{approved}");
    let listed = json_of(ferry(&data).args(["updates", "list", "--approval", "approved"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (status, declined) =
        call(&mut http, "POST", "/api/v1/updates/decline", &format!(r#"{{"ids":["{id}"]}}"#));
    assert_eq!((status, declined["declined"].as_u64()), (200, Some(1)));
    let (status, _) =
        call(&mut http, "POST", "/api/v1/updates/approve", &format!(r#"{{"ids":["{id}"]}}"#));
    assert_eq!(status, 422, "a declined update is not approved");
    let (status, rule) = call(
        &mut http,
        "POST",
        "/api/v1/rules",
        r#"{"classifications":["Critical Updates"],"group":"Servers","deadline_days":3}"#,
    );
    assert_eq!(status, 201, "{rule}");
    let (status, applied) = call(&mut http, "POST", "/api/v1/rules/apply", "");
    assert_eq!(status, 200, "{applied}");
    let (status, report) = call(&mut http, "GET", "/api/v1/report?group=Servers", "");
    assert_eq!((status, report["group"].as_str()), (200, Some("Servers")), "{report}");
    let (status, dry) =
        call(&mut http, "POST", "/api/v1/cleanup", r#"{"dry_run":true,"unneeded_content":true}"#);
    assert_eq!((status, dry["dry_run"].as_bool()), (200, Some(true)), "{dry}");

    // /metrics counts admin requests and their errors, and what the store holds.
    let metrics =
        crate::served::without_front_end(&http.request("GET", "/metrics", &[], b"").text());
    assert!(metrics.contains("ferry_faults_total{operation=\"admin POST updates\"}"), "{metrics}");
    assert!(
        metrics.contains("ferry_approvals ") && metrics.contains("ferry_imports 0"),
        "{metrics}"
    );

    // The client web services stay open, as on WSUS.
    let mut agent = Agent::new(&server);
    agent.handshake();

    let (status, targeting) = call(&mut http, "PUT", "/api/v1/targeting", r#"{"mode":"server"}"#);
    assert_eq!((status, targeting["mode"].as_str()), (200, Some("server")), "{targeting}");
    assert_eq!(call(&mut http, "PUT", "/api/v1/targeting", r#"{"mode":"sideways"}"#).0, 422);
    let (status, products) = call(&mut http, "GET", "/api/v1/products", "");
    assert!(
        status == 200 && products.as_array().unwrap().iter().any(|p| p["title"] == "Windows 11"),
        "{products}"
    );
    wait_until("the computer is recorded", || {
        !json_of(ferry(&data).args(["computers", "list"])).as_array().unwrap().is_empty()
    });
    let (status, removed) = call(&mut http, "DELETE", "/api/v1/computers/test-pc", "");
    assert_eq!((status, removed["removed"].as_u64()), (200, Some(1)), "{removed}");
    assert_eq!(call(&mut http, "DELETE", "/api/v1/computers/test-pc", "").0, 404);
}

/// An administrator logs in to the console in Chromium, approves an update, and a simulated
/// Windows client's next scan is offered it for install.
#[test]
fn the_console_approves_an_update_that_a_client_then_installs() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if require(&["node", "chromium"]).is_none() {
        return;
    }
    if !browser_dir.join("node_modules/playwright-core").exists() {
        assert!(
            std::env::var_os("FERRY_REQUIRE_TOOLS").is_none(),
            "run `npm install --prefix tests/browser` first"
        );
        eprintln!(
            "skipped: tests/browser/node_modules is missing (npm install --prefix tests/browser)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, token) = catalog_with_token(dir.path());
    let server = Served::start(&data, &[]);
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-dashboard.png");
    let out = std::process::Command::new("node")
        .arg(browser_dir.join("console.mjs"))
        .arg(server.url())
        .arg(&token)
        .arg(&shot)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let approved = result["approved"].as_str().unwrap().to_string();
    assert_eq!(
        result["needingAfter"].as_u64().unwrap() + 1,
        result["needingBefore"].as_u64().unwrap(),
        "{result}"
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot at {}",
        shot.display()
    );

    wait_until("the client is offered the approved update for install", || {
        let mut agent = Agent::new(&server);
        agent.handshake();
        agent.scan();
        agent.by_update().get(&approved).is_some_and(|u| u.action == "Install")
    });
    let listed = json_of(ferry(&data).args(["updates", "list", "--approval", "approved"]));
    assert!(
        listed.as_array().unwrap().iter().any(|u| u["update_id"] == approved.as_str()),
        "{listed}"
    );

    // The scanning computer has its own page, reached from the computers list.
    let mut http = server.http();
    let login = http.request(
        "POST",
        "/admin/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("token={token}").as_bytes(),
    );
    assert_eq!(login.status, 303);
    let cookie = login.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let list = http.request("GET", "/admin/computers", &[("Cookie", &cookie)], b"").text();
    let link = list
        .split("href=\"/admin/computers/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a computer link")
        .to_string();
    let page =
        http.request("GET", &format!("/admin/computers/{link}"), &[("Cookie", &cookie)], b"");
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("test-pc.example") && page.text().contains("Needed ("),
        "{}",
        page.text()
    );
    assert_eq!(
        http.request("GET", "/admin/computers/nobody", &[("Cookie", &cookie)], b"").status,
        404
    );
    let declined = json_of(ferry(&data).args(["updates", "list", "--approval", "declined"]));
    assert!(
        declined.as_array().unwrap().is_empty(),
        "the forged post declined nothing: {declined}"
    );
    let rules = json_of(ferry(&data).args(["rules", "list"]));
    assert_eq!(
        rules[0]["classifications"],
        serde_json::json!(["Critical Updates"]),
        "the console's rule: {rules}"
    );
    assert!(result["preview"].as_str().unwrap().contains("nothing changed"));
}
