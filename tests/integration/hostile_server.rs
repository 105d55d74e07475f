//! `ferry serve` against what real networks and hostile clients do: cancelled downloads,
//! pathological XML, floods of names, answers nobody reads. Each test is named after the hole it
//! guards; the server must stay up and its memory must not follow the attacker.

use crate::served::{
    Agent, CLIENT, CLIENT_NS, Http, REPORTING, REPORTING_NS, Reply, Served, result,
};
use crate::util::{ferry, json_of, stdout_of, wait_until};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

/// A store whose payloads are a few MB each, and the content path of its largest payload.
fn store_with_big_payloads() -> (tempfile::TempDir, PathBuf, String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    stdout_of(ferry(&data).args(["dev", "synth", "--updates", "60", "--payload-bytes", "3MiB"]));
    let (path, size) = crate::served::payloads(&data)[0].clone();
    (dir, data, path, size)
}

fn soap_envelope(op: &str, inner: &str) -> String {
    format!(
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><{op} xmlns=\"{CLIENT_NS}\">{inner}</{op}></s:Body></s:Envelope>"
    )
}

/// Regression: the CLI restored SIGPIPE's default action for every command, so the first client
/// that closed its connection while a payload was being sent ended `ferry serve` (status 141).
#[test]
fn a_cancelled_download_does_not_end_the_server() {
    let (_dir, data, path, size) = store_with_big_payloads();
    assert!(size > 2 << 20, "a payload of a few MB ({size} bytes)");
    let mut server = Served::start(&data, &[]);
    for i in 0..20 {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        let range = if i % 2 == 0 { String::new() } else { "Range: bytes=0-\r\n".to_string() };
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{range}\r\n").as_bytes()).unwrap();
        if i % 3 == 0 {
            let mut some = [0u8; 8192];
            let _ = s.read(&mut some);
        }
        if i % 4 == 0 {
            // A reset rather than an orderly close.
            let _ = socket2_linger_zero(&s);
        }
        drop(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.alive(), "the server survived cancelled downloads:\n{}", server.log());
    let r = Http::new(&server.addr).request("GET", &path, &[("Range", "bytes=0-99")], b"");
    assert_eq!((r.status, r.body.len()), (206, 100));
    assert_eq!(Http::new(&server.addr).request("GET", "/healthz", &[], b"").status, 200);
}

/// SO_LINGER 0: closing sends a reset.
fn socket2_linger_zero(s: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket and a properly sized option value.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Regression: one element with 80,000 attributes took 11 s to parse, and 100,000 namespace
/// declarations stalled every request, because parsing was quadratic and ran on the threads
/// that answer everyone. Both are bounded now and answered with a WSUS fault.
#[test]
fn pathological_xml_is_answered_with_a_fault() {
    let (_dir, data, _, _) = store_with_big_payloads();
    let mut server = Served::start(&data, &[]);
    let attributes: String = (0..80_000).map(|i| format!(" a{i}=\"x\"")).collect();
    let bindings: String = (0..100_000).map(|i| format!(" xmlns:p{i}=\"urn:p{i}\"")).collect();
    let nested: String =
        (0..60).map(|i| format!("<q{i}:e xmlns:q{i}=\"urn:q\" xmlns:r{i}=\"urn:r\">")).collect();
    let cases = [
        (
            "attributes",
            soap_envelope(
                "GetConfig",
                &format!("<protocolVersion{attributes}>2.90</protocolVersion>"),
            ),
            "attributes",
        ),
        (
            "bindings",
            soap_envelope(
                "GetConfig",
                &format!("<p1:protocolVersion{bindings}>2.90</p1:protocolVersion>"),
            ),
            "namespace declarations",
        ),
        ("nested bindings", soap_envelope("GetConfig", &nested), "namespace declarations"),
    ];
    for (what, body, said) in cases {
        let r: Reply =
            Http::new(&server.addr).soap(CLIENT, &format!("{CLIENT_NS}/GetConfig"), &body);
        assert_eq!(r.status, 500, "{what}: {}", r.text());
        assert_eq!(r.fault_code().as_deref(), Some("InvalidParameters"), "{what}");
        assert!(r.text().contains(said), "{what}: {}", r.text());
    }
    assert!(server.alive());
    assert_eq!(Http::new(&server.addr).request("GET", "/healthz", &[], b"").status, 200);
}

/// Regression: every operation name a request sent became a `/metrics` label kept for the life
/// of the process (2,000 requests made `/metrics` 1.5 GB).
#[test]
fn unknown_operation_names_do_not_grow_metrics() {
    let (_dir, data, _, _) = store_with_big_payloads();
    let server = Served::start(&data, &[]);
    let mut http = server.http();
    let long = "x".repeat(10_000);
    for i in 0..2_000 {
        let op = format!("Op{i}{long}");
        let r = http.soap(CLIENT, &format!("{CLIENT_NS}/{op}"), &soap_envelope(&op, ""));
        assert_eq!(r.status, 500);
    }
    let metrics = http.request("GET", "/metrics", &[], b"");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.len() < 64 << 10, "/metrics is {} bytes", metrics.body.len());
    let text = crate::served::without_front_end(&metrics.text());
    assert!(text.contains("ferry_requests_total{operation=\"(other)\"} 2000"), "{text}");
}

/// Regression: client-side targeting created a group for every name a client sent, unchecked:
/// 10,002 groups from three requests, one named with 1 MiB, one with control characters.
#[test]
fn clients_create_groups_only_with_valid_names_and_within_the_limit() {
    let (_dir, data, _, _) = store_with_big_payloads();
    stdout_of(ferry(&data).args(["groups", "targeting", "--max-client-groups", "5"]));
    let server = Served::start(&data, &[]);
    let groups = || json_of(ferry(&data).args(["groups", "list"])).as_array().unwrap().len();
    let computers = || json_of(ferry(&data).args(["computers", "list"])).as_array().unwrap().len();
    let built_in = groups();

    let many: Vec<String> = (0..10_000).map(|i| format!("Site {i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let huge = "g".repeat(1 << 20);
    let mut a = Agent::new(&server);
    a.handshake_as("pc01.plant.example", &many);
    let mut b = Agent::new(&server);
    b.handshake_as("pc02.plant.example", &[huge.as_str(), "Lab\u{7}\u{1b}[31m", "Lab"]);
    wait_until("both computers are recorded", || computers() == 2);
    let names: Vec<String> = json_of(ferry(&data).args(["groups", "list"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        groups() - built_in,
        5,
        "at most --max-client-groups groups from clients: {names:?}"
    );
    assert!(
        names.iter().all(|n| n.chars().count() <= 256 && !n.chars().any(char::is_control)),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n == "Lab"), "the limit was reached before pc02 asked");
    // Beyond the limit a computer waits in Unassigned Computers.
    let pc02 = json_of(ferry(&data).args(["computers", "list", "--name", "pc02"]))[0].clone();
    assert_eq!(pc02["groups"][0].as_str(), Some(ferry::store::UNASSIGNED_COMPUTERS));
    // Both still work as clients.
    assert!(b.cookie.data.is_some());
    let root = b.call(CLIENT, CLIENT_NS, "GetConfig", ferry::wsus::agent::get_config("2.90"));
    result(&root, "GetConfig");
    // An administrator's group still may be created.
    stdout_of(ferry(&data).args(["groups", "add", "Lab"]));
}

/// Regression: a multi-range answer was assembled in memory (up to 64 MiB), and an answer the
/// client never read held its connection, and that memory, for as long as the client liked.
/// Now parts come from the file as the client reads, and a client that stops reading for the
/// client timeout is cut off.
#[test]
fn an_answer_nobody_reads_is_dropped_after_the_client_timeout() {
    let (_dir, data, path, size) = store_with_big_payloads();
    let server = Served::start(&data, &["--client-timeout", "2"]);
    // The whole file as each part, as often as the 64 MiB the server allows for a multi-range
    // answer: far more than socket buffers hold.
    let parts = (16u64).min((64 << 20) / size);
    assert!(parts >= 8, "payload of {size} bytes");
    let ranges: Vec<String> = (0..parts).map(|_| format!("0-{}", size - 1)).collect();
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes={}\r\n\r\n", ranges.join(","))
            .as_bytes(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let mut received = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let ended = s.read_to_end(&mut received).is_ok();
    assert!(ended, "the server closed the connection");
    let head = String::from_utf8_lossy(&received[..received.len().min(400)]).to_string();
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(
        (received.len() as u64) < parts * size / 2,
        "{} of {} bytes arrived before the cut",
        received.len(),
        parts * size
    );
    assert_eq!(Http::new(&server.addr).request("GET", "/healthz", &[], b"").status, 200);
}

/// A downstream server's cookie for ServerSync, as `ferry export` gets one.
pub fn server_cookie(server: &Served) -> ferry::wsus::client::WireCookie {
    use ferry::wsus::downstream as ds;
    let r = server.soap(
        "/DssAuthWebService/DssAuthWebService.asmx",
        &ds::dss_auth_action(),
        &ds::get_authorization_cookie("downstream.example", &ferry::random::guid()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let auth = ds::read_authorization_cookie(&r.body).unwrap();
    let r = server.soap(SERVER_SYNC, &ds::action("GetCookie"), &ds::get_cookie(&auth, None));
    assert_eq!(r.status, 200, "{}", r.text());
    ds::read_cookie(&r.body).unwrap()
}

const SERVER_SYNC: &str = "/ServerSyncWebService/ServerSyncWebService.asmx";

/// Found by attack: GetUpdateData naming the largest revision 100 times built 100 copies of its
/// document in memory (a 9 KB request, 800 MB). Each revision is answered once now, and what an
/// answer takes to build is counted in the memory budget first.
#[test]
fn get_update_data_answers_each_revision_once_however_often_it_is_named() {
    use ferry::wsus::downstream as ds;
    let (_dir, data, _, _) = store_with_big_payloads();
    let server = Served::start(&data, &[]);
    let cookie = server_cookie(&server);
    let update = json_of(ferry(&data).args(["updates", "list"]))[0].clone();
    let id = ferry::catalog::Guid::parse(update["update_id"].as_str().unwrap()).unwrap();
    let revision = update["revision_number"].as_i64().unwrap() as i32;
    let r = server.soap(
        SERVER_SYNC,
        &ds::action("GetUpdateData"),
        &ds::get_update_data(&cookie, &vec![(id, revision); 100]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (updates, _) = ds::read_update_data(&r.body).unwrap();
    assert_eq!(updates.len(), 1, "one answer per revision");
}

/// Found by attack: ReportEventBatch took any number of events and queued them outside any
/// bound (24 connections made the server 4.5 GB). A batch is at most 1,000 events now, queued
/// events count in the memory budget, and a computer keeps its newest 10,000.
#[test]
fn reported_events_are_bounded_per_batch() {
    let (_dir, data, _, _) = store_with_big_payloads();
    let server = Served::start(&data, &[]);
    let mut agent = Agent::new(&server);
    agent.handshake();
    let batch = |n: usize| {
        let events: Vec<ferry::wsus::agent::Event<'_>> = (0..n)
            .map(|_| ferry::wsus::agent::Event {
                instance_id: ferry::random::guid(),
                event_id: 183,
                update_id: ferry::catalog::Guid::NIL,
                revision_number: 0,
                hresult: 0,
                time: "2026-12-01T00:00:00",
                misc: Vec::new(),
            })
            .collect();
        ferry::wsus::agent::report_event_batch(
            &agent.cookie,
            &agent.id,
            "2026-12-01T00:00:00",
            &events,
        )
    };
    let r = server.soap(REPORTING, &format!("{REPORTING_NS}/ReportEventBatch"), &batch(1001));
    assert_eq!(
        (r.status, r.fault_code().as_deref()),
        (500, Some("InvalidParameters")),
        "{}",
        r.text()
    );
    let r = server.soap(REPORTING, &format!("{REPORTING_NS}/ReportEventBatch"), &batch(1000));
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Found by attack: while an import held the store's write lock, every GetAuthorizationCookie
/// failed at once with InternalServerError ("database is locked") and the writes were lost.
/// Client writes wait for the lock now, and clients are answered meanwhile. On PostgreSQL an
/// import blocks no client write; what does is a transaction that holds the computers table
/// (another front end's, an administrator's), so that is the lock held here.
#[test]
fn clients_are_answered_and_recorded_while_another_process_holds_the_write_lock() {
    let (_dir, data, _, _) = store_with_big_payloads();
    let server = Served::start(&data, &[]);
    let release: Box<dyn FnOnce()> = match crate::util::database_url(&data) {
        None => {
            let db = rusqlite::Connection::open(data.join("ferry.db")).unwrap();
            db.execute_batch("BEGIN IMMEDIATE").unwrap();
            Box::new(move || db.execute_batch("COMMIT").unwrap())
        }
        Some(url) => {
            let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            db.batch_execute("BEGIN; LOCK TABLE computers IN EXCLUSIVE MODE").unwrap();
            Box::new(move || db.batch_execute("COMMIT").unwrap())
        }
    };
    let mut agent = Agent::new(&server);
    agent.handshake_as("during-import.example", &[]);
    std::thread::sleep(Duration::from_secs(1));
    let listed = json_of(ferry(&data).args(["computers", "list", "--name", "during-import"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "the write waits for the lock");
    release();
    wait_until("the computer is recorded after the lock is released", || {
        json_of(ferry(&data).args(["computers", "list", "--name", "during-import"]))
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
}
