//! The cache of rendered answers (`server/answers.rs`) and of parsed request shapes
//! (`server/shapes.rs`): clients in the same state share one answer, clients of other groups
//! never get it, and nothing of one client (its cookie) reaches another.

use crate::served::{Agent, CLIENT, CLIENT_NS, Served};
use crate::util::{ferry, json_of, stdout_of, wait_until};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ferry::wsus::agent::{self as wire, SyncRequest};

fn metric(server: &Served, name: &str) -> u64 {
    let text = server.metrics();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// The answer's text with its `NewCookie` cut out, and the cookie.
fn split_cookie(body: &[u8]) -> (String, String) {
    let text = String::from_utf8(body.to_vec()).unwrap();
    let start = text.find("<NewCookie>").expect("a new cookie");
    let end = text.find("</NewCookie>").expect("closed") + "</NewCookie>".len();
    (format!("{}{}", &text[..start], &text[end..]), text[start..end].to_string())
}

#[test]
fn clients_in_the_same_state_share_answers_and_clients_of_other_groups_never_do() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    stdout_of(ferry(&data).args(["dev", "synth", "--updates", "300", "--payload-bytes", "1000"]));
    for group in ["Lab", "Kiosks"] {
        stdout_of(ferry(&data).args(["groups", "add", group]));
    }
    let ids =
        stdout_of(ferry(&data).args(["updates", "list", "--classification", "security", "--ids"]));
    let approved = ids.lines().next().expect("a security update").to_string();
    stdout_of(ferry(&data).args(["updates", "approve", &approved, "--group", "Lab"]));
    let server = Served::start(&data, &[]);
    let mut agents: Vec<Agent> = Vec::new();
    for (name, group) in [
        ("lab1.example", "Lab"),
        ("lab2.example", "Lab"),
        ("kiosk1.example", "Kiosks"),
        ("lab3.example", "Lab"),
    ] {
        let mut agent = Agent::new(&server);
        agent.handshake_as(name, &[group]);
        agents.push(agent);
    }
    wait_until("the computers are in their groups", || {
        let computers = json_of(ferry(&data).args(["computers", "list"]));
        computers
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["groups"].as_array().is_some_and(|g| !g.is_empty()))
            .count()
            == 4
    });
    let (hits, misses) = (
        metric(&server, "ferry_answer_cache_hits_total"),
        metric(&server, "ferry_answer_cache_misses_total"),
    );

    // Whole first scans: the computers of Lab ask exactly the same. An answer is kept the
    // second time it is asked for (lab2's), and served from then on (lab3's).
    let pages: Vec<usize> = agents.iter_mut().map(|a| a.scan().len()).collect();
    assert_eq!(
        metric(&server, "ferry_answer_cache_hits_total") - hits,
        pages[3] as u64,
        "every page of lab3 came from the cache"
    );
    let rendered = (pages[0] + pages[1] + pages[2]) as u64;
    assert_eq!(
        metric(&server, "ferry_answer_cache_misses_total") - misses,
        rendered,
        "lab1, lab2 and the kiosk rendered theirs"
    );
    let action = |a: &Agent| a.by_update().get(&approved).map(|u| u.action.clone());
    assert_eq!(action(&agents[0]).as_deref(), Some("Install"));
    assert_eq!(action(&agents[1]).as_deref(), Some("Install"));
    assert_ne!(
        action(&agents[2]).as_deref(),
        Some("Install"),
        "Lab's approval never reaches a kiosk"
    );

    // One request, byte for byte, but for the cookie: each gets its own groups' answer and its
    // own cookie, never the other's.
    let (installed, cached) = (agents[0].installed.clone(), agents[0].cached.clone());
    let request = SyncRequest {
        installed_non_leaf: &installed,
        other_cached: &cached[..cached.len() / 2],
        ..Default::default()
    };
    let shape_hits = metric(&server, "ferry_request_shape_hits_total");
    let mut replies = Vec::new();
    for agent in [0, 2, 1, 3] {
        let a = &mut agents[agent];
        let body = wire::sync_updates(&a.cookie, &request);
        let r = a.http.soap(CLIENT, &format!("{CLIENT_NS}/SyncUpdates"), &body);
        assert_eq!(r.status, 200, "{}", r.text());
        let (answer, cookie) = split_cookie(&r.body);
        let sent = B64.encode(a.cookie.data.as_ref().unwrap());
        replies.push((answer, cookie, sent));
    }
    // The request was parsed at most once (`server/shapes.rs`); the others only had their
    // cookie read.
    assert!(metric(&server, "ferry_request_shape_hits_total") - shape_hits >= 3);
    // A request with a forged cookie is refused and its shape is not kept: forged requests
    // cannot push out what the fleet shares.
    let (kept, shape_bytes) = (
        metric(&server, "ferry_request_shape_misses_total"),
        metric(&server, "ferry_request_shape_bytes"),
    );
    let mut forged = agents[0].cookie.clone();
    forged.data = Some(vec![7; 64]);
    let other = SyncRequest { installed_non_leaf: &installed, ..Default::default() };
    for _ in 0..2 {
        let body = wire::sync_updates(&forged, &other);
        let r = agents[0].http.soap(CLIENT, &format!("{CLIENT_NS}/SyncUpdates"), &body);
        assert_eq!(r.fault_code().as_deref(), Some("InvalidCookie"), "{}", r.text());
    }
    assert_eq!(metric(&server, "ferry_request_shape_misses_total"), kept);
    assert_eq!(metric(&server, "ferry_request_shape_bytes"), shape_bytes);
    let [lab1, kiosk, lab2, lab3] = &replies[..] else { unreachable!() };
    assert_eq!(lab1.0, lab2.0, "the same answer for the same state");
    assert_eq!(lab1.0, lab3.0);
    assert_ne!(lab1.0, kiosk.0, "another group's answer");
    assert!(
        lab1.0.contains("<Action>Install</Action>")
            && !kiosk.0.contains("<Action>Install</Action>")
    );
    // Nothing changed since their scans: each gets back the very cookie it sent, its own.
    for (_, cookie, sent) in &replies {
        assert!(
            cookie.contains(&format!("<EncryptedData>{sent}</EncryptedData>")),
            "{cookie} carries {sent}"
        );
    }
    let cookies: std::collections::HashSet<&String> = replies.iter().map(|r| &r.1).collect();
    assert_eq!(cookies.len(), 4, "four clients, four cookies");

    // With xpress the shared answer decodes to the same bytes.
    let body = wire::sync_updates(&agents[1].cookie, &request);
    let action = format!("\"{CLIENT_NS}/SyncUpdates\"");
    let headers = [
        ("Content-Type", "text/xml; charset=utf-8"),
        ("SOAPAction", action.as_str()),
        ("Accept-Encoding", "xpress"),
    ];
    for _ in 0..2 {
        let r = agents[1].http.request("POST", CLIENT, &headers, body.as_bytes());
        assert_eq!(r.header("content-encoding"), Some("xpress"));
        let plain = ferry::wsus::xpress::unframe(&r.body, 64 << 20).unwrap();
        assert_eq!(split_cookie(&plain).0, lab1.0);
    }
    assert!(
        metric(&server, "ferry_answer_cache_bytes")
            <= metric(&server, "ferry_answer_cache_limit_bytes")
    );
    assert!(metric(&server, "ferry_answer_cache_entries") > 0);

    // After an approval, the next answer carries a new cookie (what the client has seen moved).
    stdout_of(ferry(&data).args(["updates", "approve", &approved, "--group", "Kiosks"]));
    wait_until("the kiosk is offered the approval", || {
        let body = wire::sync_updates(&agents[2].cookie, &request);
        let r = agents[2].http.soap(CLIENT, &format!("{CLIENT_NS}/SyncUpdates"), &body);
        let (answer, cookie) = split_cookie(&r.body);
        let sent = B64.encode(agents[2].cookie.data.as_ref().unwrap());
        answer.contains("<Action>Install</Action>") && !cookie.contains(&sent)
    });
}

/// Sync times wait in memory for up to a second (a fleet's pages cost no write each): a scan
/// just before the server stops is still recorded, and the next second's syncs too.
#[test]
fn sync_times_are_written_within_a_second_and_when_the_server_stops() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    stdout_of(ferry(&data).args(["dev", "synth", "--updates", "50", "--payload-bytes", "1000"]));
    let last_sync = |name: &str| {
        let computers = json_of(ferry(&data).args(["computers", "list", "--name", name]));
        computers[0]["last_sync_at"].as_str().map(str::to_string)
    };
    let mut server = Served::start(&data, &[]);
    let mut early = Agent::new(&server);
    early.handshake_as("early.example", &[]);
    early.sync(&SyncRequest::default());
    wait_until("the sync time is written while the server runs", || last_sync("early").is_some());

    let mut late = Agent::new(&server);
    late.handshake_as("late.example", &[]);
    late.sync(&SyncRequest::default());
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_until("the server stops", || !server.alive());
    assert!(
        last_sync("late").is_some(),
        "the last sync before the stop was written:\n{}",
        server.log()
    );
}
