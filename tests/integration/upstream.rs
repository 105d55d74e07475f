//! The upstream client: real server-server answers parse and ingest; a sync against a loopback
//! upstream that answers with the recorded bodies survives expired cookies, server errors and
//! timeouts; broken upstreams give clear errors and leave the cache consistent; downloads resume
//! and refuse bytes that do not match.

use crate::fake_http::{FakeServer, Reply, Request};
use crate::util::location;
use ferry::bundle::profile::Profile;
use ferry::catalog::{Sha1Digest, Sha256Digest};
use ferry::store::{FragmentKind, Store};
use ferry::upstream::{DownloadOptions, SyncOptions, Transport, TransportOptions, Wanted};
use ferry::wsus::downstream as wire;
use sha1::Digest as _;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const DEFENDER: &str = "8c3fcc84-7410-4a95-8b89-a166a0190486";
const DEFINITIONS: &str = "e0789628-ce08-4437-be74-2495b842f43b";

fn read(p: &Path) -> String {
    String::from_utf8(crate::conformance::read(p)).unwrap()
}

/// `(update id, revision) -> document` of the real documents in `wsusss/docs/`.
fn real_documents(conformance: &Path) -> Vec<(String, i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(conformance.join("wsusss/docs")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        let (id, rev) = name.rsplit_once("-r").unwrap();
        out.push((id.to_string(), rev.parse().unwrap(), read(&p)));
    }
    out.sort();
    out
}

#[test]
fn real_server_server_answers_parse_and_their_documents_ingest_with_the_real_fragments() {
    let conformance = crate::conformance_or_skip!();
    let samples = conformance.join("samples");
    let sample = |name: &str| crate::conformance::read(&samples.join(name));
    assert_eq!(
        wire::read_auth_config(&sample("wsusss-realwsus-01-GetAuthConfig.response.xml")).unwrap(),
        "DssAuthWebService/DssAuthWebService.asmx"
    );
    assert!(
        wire::read_cookie(&sample("wsusss-realwsus-03-GetCookie.response.xml"))
            .unwrap()
            .expiration
            .starts_with("2026-")
    );
    let wsus =
        wire::read_config_data(&sample("wsusss-realwsus-05-GetConfigData.response.xml")).unwrap();
    let mu = wire::read_config_data(&sample("wsusss-microsoftupstream-GetConfigData.response.xml"))
        .unwrap();
    // The same fields in different orders: read by name.
    assert_eq!(
        (wsus.max_updates_per_request, wsus.catalog_only_sync, wsus.protocol_version.as_str()),
        (100, false, "1.20")
    );
    assert!(
        mu.catalog_only_sync && mu.protocol_version == "1.21" && mu.max_updates_per_request > 0,
        "{mu:?}"
    );
    assert!(wsus.languages.iter().any(|l| l.short == "en" && l.enabled) && mu.languages.len() > 30);
    let (anchor, ids) = wire::read_revision_id_list(&sample(
        "wsusss-realwsus-06-GetRevisionIdList-GetConfig.response.xml",
    ))
    .unwrap();
    assert_eq!((anchor.as_str(), ids.len()), ("9438,2026-10-04 16:33:26.671", 30));

    // GetUpdateData, compressed (CAB with LZX) and plain: the documents are the real ones.
    let docs: HashMap<(String, i32), String> =
        real_documents(&conformance).into_iter().map(|(i, r, d)| ((i, r), d)).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_or_create_at(&location(dir.path())).unwrap();
    let mut seen = 0;
    for name in [
        "wsusss-realwsus-14-GetUpdateData-compressed.response.xml",
        "wsusss-realwsus-15-GetUpdateData-uncompressed.response.xml",
    ] {
        let (updates, _) = wire::read_update_data(&sample(name)).unwrap();
        for u in updates {
            let id = u.id.to_string();
            assert_eq!(
                docs[&(id.clone(), u.revision)].trim_end(),
                u.document.trim_end(),
                "{name}: {id}"
            );
            let mut batch = store.begin_ingest().unwrap();
            batch.add_document(name, u.document.as_bytes()).unwrap();
            batch.commit().unwrap();
            let (revision_id, _) = store.stored_revision(&id, u.revision).unwrap().unwrap();
            let reference =
                conformance.join(format!("wsusss/wusp-reference/{id}-r{}.core.xml", u.revision));
            if reference.exists() {
                assert_eq!(
                    store.fragment(revision_id, &FragmentKind::Core).unwrap().unwrap(),
                    read(&reference).trim_end(),
                    "{id}"
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 2, "both forms were compared with what WSUS sent a client");

    // Every recorded exchange's answer reads (or is the fault it records).
    for e in std::fs::read_dir(conformance.join("wsusss/exchanges")).unwrap() {
        let dir = e.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let headers = read(&dir.join("request.headers")).to_ascii_lowercase();
        let op = headers
            .lines()
            .find_map(|l| l.strip_prefix("soapaction: "))
            .unwrap()
            .trim()
            .trim_matches('"')
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let body = crate::conformance::read(&dir.join("response.body"));
        let result: Result<(), String> = match op.as_str() {
            "getauthconfig" => wire::read_auth_config(&body).map(drop).map_err(|e| e.to_string()),
            "getauthorizationcookie" => {
                wire::read_authorization_cookie(&body).map(drop).map_err(|e| e.to_string())
            }
            "getcookie" => wire::read_cookie(&body).map(drop).map_err(|e| e.to_string()),
            "getconfigdata" => wire::read_config_data(&body).map(drop).map_err(|e| e.to_string()),
            "getrevisionidlist" => {
                wire::read_revision_id_list(&body).map(drop).map_err(|e| e.to_string())
            }
            "getupdatedata" => wire::read_update_data(&body).map(drop).map_err(|e| e.to_string()),
            other => panic!("{}: unexpected operation {other}", dir.display()),
        };
        let is_fault = String::from_utf8_lossy(&body).contains("<soap:Fault>");
        assert_eq!(result.is_err(), is_fault, "{}: {result:?}", dir.display());
        if let Err(e) = result {
            assert!(
                e.contains("InternalServerError")
                    || e.contains("InvalidParameters")
                    || e.contains("InvalidCookie"),
                "{e}"
            );
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let i = s.find(a)? + a.len();
    let j = s[i..].find(b)? + i;
    Some(&s[i..j])
}

/// Faults and failures a recorded upstream injects once each.
#[derive(Default)]
struct Injected {
    update_data_calls: AtomicUsize,
    config_calls: AtomicUsize,
    list_calls: AtomicUsize,
}

/// An upstream on loopback answering with the bodies a real WSUS sent
/// (`conformance/wsusss/exchanges/`), its lists holding the real documents of `wsusss/docs/`.
fn recorded_upstream(conformance: &Path, injected: Arc<Injected>) -> FakeServer {
    let ex = conformance.join("wsusss/exchanges");
    let body = |n: &str| read(&ex.join(n).join("response.body"));
    let docs = real_documents(conformance);
    let identity = |(id, rev, _): &(String, i32, String)| {
        format!(
            "<UpdateIdentity><UpdateID>{id}</UpdateID><RevisionNumber>{rev}</RevisionNumber></UpdateIdentity>"
        )
    };
    let categories: String =
        docs.iter().filter(|d| d.2.contains("UpdateType=\"Category\"")).map(identity).collect();
    let software: String =
        docs.iter().filter(|d| !d.2.contains("UpdateType=\"Category\"")).map(identity).collect();
    let with_list = |recorded: String, list: &str| {
        let inner = between(&recorded, "<NewRevisions>", "</NewRevisions>").unwrap().to_string();
        recorded.replace(&inner, list)
    };
    let config_list = with_list(body("000006"), &categories);
    let update_list = with_list(body("000009"), &software);
    // Recorded per-update answers where the capture has one; others in the same shape.
    let mut items: HashMap<String, (String, String)> = HashMap::new();
    for n in ["000013", "000014", "000015", "000016"] {
        let b = body(n);
        let id = between(&b, "<UpdateID>", "</UpdateID>").unwrap().to_string();
        let item = format!(
            "<ServerSyncUpdateData>{}</ServerSyncUpdateData>",
            between(&b, "<ServerSyncUpdateData>", "</ServerSyncUpdateData>").unwrap()
        );
        let urls = between(&b, "<fileUrls>", "</fileUrls>").unwrap_or_default().to_string();
        items.insert(id, (item, urls));
    }
    for (id, rev, doc) in &docs {
        items.entry(id.clone()).or_insert_with(|| {
            (format!("<ServerSyncUpdateData><Id><UpdateID>{id}</UpdateID><RevisionNumber>{rev}</RevisionNumber></Id><XmlUpdateBlob>{}</XmlUpdateBlob></ServerSyncUpdateData>", escape(doc)), String::new())
        });
    }
    let envelope = body("000015");
    let (before, after) = (
        envelope[..envelope.find("<updates>").unwrap()].to_string(),
        "</GetUpdateDataResult></GetUpdateDataResponse></soap:Body></soap:Envelope>",
    );
    let (auth_config, dss, cookie, config, invalid_cookie) =
        (body("000001"), body("000002"), body("000003"), body("000005"), body("000019"));
    FakeServer::start(move |r: &Request| match r.operation().as_str() {
        "GetAuthConfig" => Reply::xml(200, auth_config.clone()),
        "GetAuthorizationCookie" => Reply::xml(200, dss.clone()),
        "GetCookie" => Reply::xml(200, cookie.clone()),
        "GetConfigData" => {
            if injected.config_calls.fetch_add(1, Ordering::SeqCst) == 0 {
                // An IIS error page: a server in trouble, not a SOAP answer.
                return Reply::Full {
                    status: 500,
                    headers: vec![("Content-Type".into(), "text/html".into())],
                    body: b"<html>Service Unavailable</html>".to_vec(),
                };
            }
            Reply::xml(200, config.clone())
        }
        "GetRevisionIdList" => {
            if injected.list_calls.fetch_add(1, Ordering::SeqCst) == 0 {
                return Reply::Stall(Duration::from_secs(3));
            }
            Reply::xml(
                200,
                if r.text().contains("<GetConfig>true</GetConfig>") {
                    config_list.clone()
                } else {
                    update_list.clone()
                },
            )
        }
        "GetUpdateData" => {
            if injected.update_data_calls.fetch_add(1, Ordering::SeqCst) == 0 {
                // The cookie expired: the downstream authorizes again.
                return Reply::xml(500, invalid_cookie.clone());
            }
            let text = r.text();
            let mut updates = String::new();
            let mut urls = String::new();
            let mut rest = text.as_str();
            while let Some(id) = between(rest, "<UpdateID>", "</UpdateID>") {
                let (item, u) = &items[id];
                updates.push_str(item);
                urls.push_str(u);
                rest = &rest[rest.find("</UpdateID>").unwrap() + 11..];
            }
            let urls = if urls.is_empty() {
                "<fileUrls />".to_string()
            } else {
                format!("<fileUrls>{urls}</fileUrls>")
            };
            Reply::xml(200, format!("{before}<updates>{updates}</updates>{urls}{after}"))
        }
        other => Reply::xml(500, format!("unexpected {other}")),
    })
}

fn profile() -> Profile {
    Profile::parse(&format!("channel = \"defender\"\nproducts = [\"{DEFENDER}\"]\nclassifications = [\"{DEFINITIONS}\"]\n"), "test profile")
        .unwrap()
}

fn options(url: &str) -> SyncOptions {
    SyncOptions {
        upstream: url.to_string(),
        transport: TransportOptions {
            timeout: Some(Duration::from_secs(1)),
            attempts: Some(4),
            ..Default::default()
        },
        parallel: 2,
    }
}

#[test]
fn a_sync_from_recorded_answers_survives_an_expired_cookie_a_server_error_and_a_timeout() {
    let conformance = crate::conformance_or_skip!();
    let injected = Arc::new(Injected::default());
    let upstream = recorded_upstream(&conformance, injected.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut cache = Store::open_or_create_at(&location(dir.path())).unwrap();
    let report =
        ferry::upstream::sync(&mut cache, &profile(), &options(&upstream.url()), &mut |_| {})
            .unwrap();
    let docs = real_documents(&conformance);
    assert_eq!(report.revisions_fetched, docs.len(), "{report:?}");
    let stored = cache.stored_identities().unwrap();
    for (id, rev, _) in &docs {
        assert!(stored.contains(&(id.clone(), *rev)), "{id}/{rev} synced");
    }
    assert!(upstream.count("GetAuthConfig") >= 2, "authorized again after InvalidCookie");
    assert!(report.notes.iter().any(|n| n.contains("authorizing again")), "{:?}", report.notes);
    assert!(
        report.notes.iter().filter(|n| n.contains("retrying")).count() >= 2,
        "the 500 and the timeout were retried: {:?}",
        report.notes
    );
    // The update listing asks for the profile's languages (English, as WSUS numbers it), the
    // configuration pass for everything.
    let lists: Vec<String> = upstream
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.operation() == "GetRevisionIdList")
        .map(|r| r.text())
        .collect();
    let (config, updates): (Vec<&String>, Vec<&String>) =
        lists.iter().partition(|t| t.contains("<GetConfig>true</GetConfig>"));
    assert!(config.iter().all(|t| !t.contains("<Languages>")), "{config:?}");
    let filter = "<Languages><LanguageAndDelta><Id>1033</Id><Delta>false</Delta></LanguageAndDelta></Languages>";
    assert!(!updates.is_empty() && updates.iter().all(|t| t.contains(filter)), "{updates:?}");
    // The file URL the upstream gave (Microsoft Update's) is kept for the download step.
    assert!(
        cache.file_sources().unwrap().values().any(|u| u.contains("download.windowsupdate.com"))
    );

    // A second sync fetches nothing: everything listed is stored.
    let before = upstream.count("GetUpdateData");
    let again =
        ferry::upstream::sync(&mut cache, &profile(), &options(&upstream.url()), &mut |_| {})
            .unwrap();
    assert_eq!((again.revisions_fetched, upstream.count("GetUpdateData")), (0, before));
}

/// A store's revision count and `ferry check`, for "the cache stays consistent".
fn consistent(dir: &Path) -> usize {
    let out = crate::util::ferry(dir).arg("check").output().unwrap();
    assert!(out.status.success(), "ferry check: {}", String::from_utf8_lossy(&out.stderr));
    Store::open_at(&location(dir)).unwrap().stored_identities().unwrap().len()
}

#[test]
fn broken_upstreams_give_clear_errors_and_leave_the_cache_consistent() {
    let conformance = crate::conformance_or_skip!();
    let ex = conformance.join("wsusss/exchanges");
    let body = |n: &str| read(&ex.join(n).join("response.body"));
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    drop(Store::open_or_create_at(&location(&cache_dir)).unwrap());

    type Breaker = Box<dyn Fn(&Request) -> Option<Reply> + Send + Sync>;
    let compressed = body("000014");
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "malformed XML",
            Box::new(|r| {
                (r.operation() == "GetRevisionIdList").then(|| {
                    Reply::xml(200, "<soap:Envelope><soap:Body><GetRevisionIdListResponse")
                })
            }),
            "GetRevisionIdList",
        ),
        (
            "a corrupt cabinet",
            Box::new(move |r| {
                (r.operation() == "GetUpdateData").then(|| {
                    let blob = between(
                        &compressed,
                        "<XmlUpdateBlobCompressed>",
                        "</XmlUpdateBlobCompressed>",
                    )
                    .unwrap();
                    let mut bad = blob.to_string();
                    bad.replace_range(200..260, &"A".repeat(60));
                    Reply::xml(200, compressed.replace(blob, &bad))
                })
            }),
            "266f6222-c89d-43f2-9f8a-69340271e677",
        ),
        (
            "an answer far larger than any",
            Box::new(|r| {
                (r.operation() == "GetUpdateData").then(|| Reply::Announce {
                    status: 200,
                    declared: 40 << 30,
                    body: b"<".to_vec(),
                })
            }),
            "larger than",
        ),
        (
            "a redirect loop",
            Box::new(|r| {
                (r.operation() == "GetConfigData" || r.path == "/loop").then(|| Reply::Full {
                    status: 302,
                    headers: vec![("Location".into(), "/loop".into())],
                    body: Vec::new(),
                })
            }),
            "redirect",
        ),
    ];
    // Each breaker replaces one operation; the rest answers as the recorded upstream does (without its injected trouble).
    for (what, breaker, needle) in cases {
        let healthy = recorded_upstream(
            &conformance,
            Arc::new(Injected {
                config_calls: AtomicUsize::new(1),
                list_calls: AtomicUsize::new(1),
                update_data_calls: AtomicUsize::new(1),
            }),
        );
        let healthy_url = healthy.url();
        let proxy = FakeServer::start(move |r: &Request| {
            if let Some(reply) = breaker(r) {
                return reply;
            }
            // Everything else goes to the healthy recorded upstream.
            let client = ureq::Agent::new_with_defaults();
            let mut resp = client
                .post(format!("{healthy_url}{}", r.path))
                .header("SOAPAction", r.header("soapaction").unwrap_or_default())
                .header("Content-Type", "text/xml")
                .config()
                .http_status_as_error(false)
                .build()
                .send(&r.body[..])
                .unwrap();
            Reply::xml(resp.status().as_u16(), resp.body_mut().read_to_vec().unwrap())
        });
        let before = consistent(&cache_dir);
        let mut cache = Store::open_at(&location(&cache_dir)).unwrap();
        let err =
            ferry::upstream::sync(&mut cache, &profile(), &options(&proxy.url()), &mut |_| {})
                .expect_err(what)
                .to_string();
        assert!(err.contains(needle), "{what}: {err}");
        drop(cache);
        assert!(consistent(&cache_dir) >= before, "{what}: nothing stored was lost");
    }
    // A re-run against a healthy upstream completes what the broken ones left.
    let healthy = recorded_upstream(
        &conformance,
        Arc::new(Injected {
            config_calls: AtomicUsize::new(1),
            list_calls: AtomicUsize::new(1),
            update_data_calls: AtomicUsize::new(1),
        }),
    );
    let mut cache = Store::open_at(&location(&cache_dir)).unwrap();
    ferry::upstream::sync(&mut cache, &profile(), &options(&healthy.url()), &mut |_| {}).unwrap();
    assert_eq!(cache.stored_identities().unwrap().len(), real_documents(&conformance).len());
}

fn payload(size: usize) -> (Vec<u8>, Sha1Digest, Sha256Digest) {
    let bytes: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let sha1 = Sha1Digest(sha1::Sha1::digest(&bytes).into());
    let sha256 = Sha256Digest(sha2::Sha256::digest(&bytes).into());
    (bytes, sha1, sha256)
}

/// Serves `bytes` at any path with ranges and an ETag; `misbehave` decides per request.
fn content_server(
    bytes: Vec<u8>,
    misbehave: impl Fn(usize, &Request) -> Option<Reply> + Send + Sync + 'static,
) -> FakeServer {
    let calls = AtomicUsize::new(0);
    FakeServer::start(move |r: &Request| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        if let Some(reply) = misbehave(n, r) {
            return reply;
        }
        let etag = ("ETag".to_string(), "\"v1\"".to_string());
        match r
            .header("range")
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| v.strip_suffix('-'))
            .and_then(|v| v.parse::<usize>().ok())
        {
            Some(from) if r.header("if-range") == Some("\"v1\"") => Reply::Full {
                status: 206,
                headers: vec![
                    etag,
                    (
                        "Content-Range".into(),
                        format!("bytes {from}-{}/{}", bytes.len() - 1, bytes.len()),
                    ),
                ],
                body: bytes[from..].to_vec(),
            },
            _ => Reply::Full { status: 200, headers: vec![etag], body: bytes.clone() },
        }
    })
}

fn wanted(server: &FakeServer, sha1: Sha1Digest, sha256: Sha256Digest, size: usize) -> Wanted {
    Wanted {
        sha1,
        sha256: Some(sha256),
        size: size as u64,
        extension: "cab".into(),
        url: format!("{}/Content/x/file.cab", server.url()),
        owner: "Test Update KB1".into(),
    }
}

fn transport(attempts: u32) -> Transport {
    Transport::new(&TransportOptions {
        timeout: Some(Duration::from_secs(2)),
        attempts: Some(attempts),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn downloads_resume_where_they_stopped_and_land_only_when_both_digests_match() {
    let (bytes, sha1, sha256) = payload(3 << 20);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_or_create_at(&location(dir.path())).unwrap();
    let target: PathBuf = store.content().path(&sha1, "cab");

    // The first response stops after 1 MiB; the retry continues from there with Range + If-Range.
    let cut = bytes.clone();
    let server = content_server(bytes.clone(), move |n, _| {
        (n == 0).then(|| Reply::Cut {
            status: 200,
            headers: vec![("ETag".into(), "\"v1\"".into())],
            body: cut.clone(),
            send: 1 << 20,
        })
    });
    let report = ferry::upstream::download(
        &mut store,
        &transport(3),
        vec![wanted(&server, sha1, sha256, bytes.len())],
        &DownloadOptions { parallel: 2 },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), bytes);
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.method == "GET"));
    assert_eq!(requests[1].header("range"), Some("bytes=1048576-"));
    assert!(
        report.notes.iter().any(|n| n.contains("broke") || n.contains("stopped")),
        "{:?}",
        report.notes
    );

    // Across runs: a run gives up after 1 MiB; the next one resumes from the .part file.
    std::fs::remove_file(&target).unwrap();
    let cut = bytes.clone();
    let flaky = content_server(bytes.clone(), move |n, _| {
        (n == 0).then(|| Reply::Cut {
            status: 200,
            headers: vec![("ETag".into(), "\"v1\"".into())],
            body: cut.clone(),
            send: 1 << 20,
        })
    });
    let w = wanted(&flaky, sha1, sha256, bytes.len());
    let err = ferry::upstream::download(
        &mut store,
        &transport(1),
        vec![w.clone()],
        &DownloadOptions { parallel: 1 },
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("Test Update KB1") && err.contains("run again"), "{err}");
    assert!(!target.exists());
    let report = ferry::upstream::download(
        &mut store,
        &transport(1),
        vec![w],
        &DownloadOptions { parallel: 1 },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(report.resumed_bytes, 1 << 20);
    assert_eq!(std::fs::read(&target).unwrap(), bytes);

    // Bytes that are not the file: refused, named, removed.
    std::fs::remove_file(&target).unwrap();
    let mut wrong = bytes.clone();
    wrong[12345] ^= 1;
    let liar = content_server(wrong, |_, _| None);
    let err = ferry::upstream::download(
        &mut store,
        &transport(1),
        vec![wanted(&liar, sha1, sha256, bytes.len())],
        &DownloadOptions { parallel: 1 },
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("does not match") && err.contains("Test Update KB1") && err.contains("SHA-1"),
        "{err}"
    );
    assert!(!target.exists());
    let staging = store.content().staging_dir().join("downloads");
    assert_eq!(
        std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0),
        0,
        "no partial file is left"
    );

    // A server that sends more than the metadata says.
    let long = content_server([bytes.clone(), vec![0; 10]].concat(), |_, _| None);
    let err = ferry::upstream::download(
        &mut store,
        &transport(1),
        vec![wanted(&long, sha1, sha256, bytes.len())],
        &DownloadOptions { parallel: 1 },
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("metadata says"), "{err}");
}
