//! xpress-compressed answers (MS-WUSP §2.1.1) from `ferry serve`: only when the request asks,
//! only from the client and SimpleAuth services, and decoded by an implementation independent of
//! ferry's (PyPI `dissect.util`, through `xpress_tool.py`) to the very bytes of the plain answer.

use crate::served::{self, Agent, CLIENT, CLIENT_NS, Reply, SIMPLE_AUTH, SIMPLE_AUTH_NS, Served};
use crate::util::{ferry, stdout_of};
use ferry::wsus::agent::{self as wire, SyncRequest};
use ferry::wsus::xpress;
use std::path::{Path, PathBuf};

/// The helper that decodes with `dissect.util`.
pub fn xpress_tool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/xpress_tool.py")
}

/// Whether python3 has `dissect.util` (`.ci/run` installs it); without it the test is skipped,
/// unless `FERRY_REQUIRE_TOOLS` is set (CI), where that fails.
pub fn dissect_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import dissect.util.compression.lzxpress"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("FERRY_REQUIRE_TOOLS").is_none(),
            "python3 with dissect.util is required (pip install dissect.util)"
        );
        eprintln!("skipped: python3 with dissect.util is not installed");
    }
    ok
}

/// The streams decoded by `dissect.util`, in order.
fn decode_independently(streams: &[&[u8]]) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = streams
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let f = dir.path().join(format!("{i}.xpress"));
            std::fs::write(&f, s).unwrap();
            f
        })
        .collect();
    let out = std::process::Command::new("python3")
        .arg(xpress_tool())
        .arg("decode")
        .args(&files)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "xpress_tool.py decode: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    files.iter().map(|f| std::fs::read(f.with_extension("xpress.plain")).unwrap()).collect()
}

fn store(updates: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    stdout_of(ferry(&data).args([
        "dev",
        "synth",
        "--updates",
        &updates.to_string(),
        "--payload-bytes",
        "3000",
    ]));
    (dir, data)
}

fn post(
    server: &Served,
    path: &str,
    action: &str,
    body: &str,
    accept_encoding: Option<&str>,
) -> Reply {
    let quoted = format!("\"{action}\"");
    let mut headers =
        vec![("Content-Type", "text/xml; charset=utf-8"), ("SOAPAction", quoted.as_str())];
    if let Some(v) = accept_encoding {
        headers.push(("Accept-Encoding", v));
    }
    server.http().request("POST", path, &headers, body.as_bytes())
}

/// The text with what differs from call to call (fresh cookies) blanked out.
fn without_cookies(body: &[u8]) -> String {
    let mut text = String::from_utf8(body.to_vec()).expect("UTF-8 answer");
    for (open, close) in [
        ("<EncryptedData>", "</EncryptedData>"),
        ("<Expiration>", "</Expiration>"),
        ("<CookieData>", "</CookieData>"),
    ] {
        let mut from = 0;
        while let Some(start) = text[from..].find(open).map(|i| i + from + open.len()) {
            let end = text[start..].find(close).expect("closed") + start;
            text.replace_range(start..end, "");
            from = start;
        }
    }
    text
}

#[test]
fn xpress_answers_decode_with_an_independent_decoder_to_the_plain_answers_byte_for_byte() {
    if !dissect_available() {
        return;
    }
    let (_dir, data) = store(800);
    let server = Served::start(&data, &[]);
    let mut agent = Agent::new(&server);
    agent.handshake();
    let page = agent.sync(&SyncRequest::default());
    let ids: Vec<i32> = page.new_updates.iter().map(|u| u.revision_id).collect();
    agent.scan();
    let all: Vec<i32> = agent.seen.keys().copied().collect();
    let mut calls: Vec<(&str, String, String)> = vec![
        (CLIENT, format!("{CLIENT_NS}/GetConfig"), wire::get_config("2.90")),
        (
            SIMPLE_AUTH,
            format!("{SIMPLE_AUTH_NS}/GetAuthorizationCookie"),
            wire::get_authorization_cookie(&agent.id, "test-pc.example", &[]),
        ),
        (
            CLIENT,
            format!("{CLIENT_NS}/SyncUpdates"),
            wire::sync_updates(&agent.cookie, &SyncRequest::default()),
        ),
        (
            CLIENT,
            format!("{CLIENT_NS}/GetExtendedUpdateInfo"),
            wire::get_extended_update_info(&agent.cookie, &ids, &["en"]),
        ),
    ];
    // Every revision's Extended and Localized fragments, in batches of 50 (WSUS's limit).
    for batch in all.chunks(50) {
        calls.push((
            CLIENT,
            format!("{CLIENT_NS}/GetExtendedUpdateInfo"),
            wire::get_extended_update_info(&agent.cookie, batch, &["en"]),
        ));
    }
    let (mut plain, mut packed) = (Vec::new(), Vec::new());
    for (path, action, body) in &calls {
        let p = post(&server, path, action, body, None);
        let x = post(&server, path, action, body, Some("xpress"));
        assert_eq!((p.status, x.status), (200, 200), "{action}: {}", p.text());
        assert_eq!(p.header("content-encoding"), None, "{action}: not asked, not compressed");
        assert_eq!(x.header("content-encoding"), Some("xpress"), "{action}");
        for r in [&p, &x] {
            assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{action}");
            assert_eq!(r.header("content-type"), Some("text/xml; charset=utf-8"), "{action}");
        }
        if p.body.len() > 2000 {
            assert!(
                x.body.len() * 2 < p.body.len(),
                "{action}: {} bytes compressed to {}",
                p.body.len(),
                x.body.len()
            );
        }
        plain.push(p.body);
        packed.push(x.body);
    }
    // Answers over 32 KiB are compressed on the blocking pool (`COMPRESS_IN_PLACE`), the rest inline.
    let sizes: Vec<usize> = plain.iter().map(Vec::len).collect();
    assert!(
        sizes.iter().any(|&n| n > 32 << 10) && sizes.iter().any(|&n| n < 32 << 10),
        "both ways are tested: {sizes:?}"
    );
    let decoded = decode_independently(&packed.iter().map(Vec::as_slice).collect::<Vec<_>>());
    for (i, ((p, x), d)) in plain.iter().zip(&packed).zip(&decoded).enumerate() {
        assert_eq!(
            &xpress::unframe(x, 64 << 20).unwrap(),
            d,
            "{}: ferry's decoder and dissect.util agree",
            calls[i].1
        );
        assert_eq!(
            without_cookies(d),
            without_cookies(p),
            "{}: the decoded answer is the plain one",
            calls[i].1
        );
    }
    // Answers without cookies are the same bytes exactly.
    assert_eq!(decoded[0], plain[0], "GetConfig");
    assert_eq!(decoded[3], plain[3], "GetExtendedUpdateInfo");
    let metrics = server.metrics();
    let sent: u64 = packed.iter().map(|b| b.len() as u64).sum();
    let original: u64 = plain.iter().map(|b| b.len() as u64).sum();
    eprintln!(
        "xpress: {} answers, {original} bytes sent as {sent} ({:.3})",
        packed.len(),
        sent as f64 / original as f64
    );
    assert!(
        metrics.contains(&format!("ferry_xpress_sent_bytes_total {sent}")),
        "{sent}:\n{metrics}"
    );
    assert!(metrics.contains(&format!("ferry_xpress_answers_total {}", calls.len())), "{metrics}");
}

#[test]
fn only_what_accept_encoding_accepts_and_only_the_client_and_simpleauth_services_are_compressed() {
    let (_dir, data) = store(100);
    let server = Served::start(&data, &[]);
    let get_config = wire::get_config("2.90");
    let action = format!("{CLIENT_NS}/GetConfig");
    let plain = post(&server, CLIENT, &action, &get_config, None);
    assert_eq!(plain.status, 200);
    let cases = [
        ("xpress", true),
        ("XPRESS", true),
        ("xpress, gzip", true),
        ("gzip, deflate, xpress;q=0.5", true),
        ("identity", false),
        ("gzip", false),
        ("*", false),
        ("*;q=0", false),
        ("xpress;q=0", false),
        ("xpress;q=0.000, gzip", false),
        ("xpress;q=bogus", false),
        ("x-press", false),
        ("🦀 garbage ;;; ,,, q=", false),
    ];
    for (value, compressed) in cases {
        let r = post(&server, CLIENT, &action, &get_config, Some(value));
        assert_eq!(r.status, 200, "{value:?}");
        if compressed {
            assert_eq!(r.header("content-encoding"), Some("xpress"), "{value:?}");
            assert_eq!(xpress::unframe(&r.body, 1 << 20).unwrap(), plain.body, "{value:?}");
        } else {
            assert_eq!(r.header("content-encoding"), None, "{value:?}");
            assert_eq!(r.body, plain.body, "{value:?}");
        }
    }

    // Never content, nor the other services, nor faults, nor the endpoint's page.
    let (path, bytes) = served::payloads(&data).into_iter().next().expect("a payload");
    let r = server.http().request("GET", &path, &[("Accept-Encoding", "xpress")], b"");
    assert_eq!((r.status, r.header("content-encoding")), (200, None), "{path}");
    assert_eq!(r.body.len() as u64, bytes, "{path}");
    let sync = "http://www.microsoft.com/SoftwareDistribution";
    let r = post(
        &server,
        "/ServerSyncWebService/ServerSyncWebService.asmx",
        &format!("{sync}/ServerSyncWebService/GetAuthConfig"),
        &format!(
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><GetAuthConfig xmlns=\"{sync}\"/></s:Body></s:Envelope>"
        ),
        Some("xpress"),
    );
    assert_eq!(
        (r.status, r.header("content-encoding")),
        (200, None),
        "server-server: {}",
        r.text()
    );
    let r = post(
        &server,
        "/ReportingWebService/ReportingWebService.asmx",
        "x",
        "<not-soap/>",
        Some("xpress"),
    );
    assert_eq!(r.header("content-encoding"), None, "reporting");
    let r =
        post(&server, CLIENT, &format!("{CLIENT_NS}/SyncUpdates"), "<truncated", Some("xpress"));
    assert_eq!(
        (r.status, r.header("content-encoding")),
        (500, None),
        "faults are sent plain: {}",
        r.text()
    );
    let r = server.http().request("GET", CLIENT, &[("Accept-Encoding", "xpress")], b"");
    assert_eq!((r.status, r.header("content-encoding")), (200, None), "the endpoint's page");
}
