//! `ferry publish` end to end: real MSIs (`wixl`), the site's publishing certificate, the
//! signed CAB in the content tree (`osslsigncode verify`, `gcab`), and a served scan with the
//! real client request shapes: the published update is offered for checking, for install once
//! approved, its file location is given and its bytes match the metadata's SHA-1 and SHA-256,
//! and the product's next version supersedes it. Refused publishes change nothing.

use crate::publish_documents::{MsiCase, build_msi};
use crate::served::{Agent, Served, require};
use crate::util::{ferry, json_of, stdout_of, tool};
use sha1::Digest as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const WIDGET_1: MsiCase = MsiCase {
    file: "widget-1.0.msi",
    product_code: "6F1D3A52-5B0E-4C39-9B8A-0D7E5A2C1B01",
    name: "Contoso Widget",
    version: "1.0.0",
    language: 1033,
    manufacturer: "Contoso",
    upgrade_code: Some("6F1D3A52-5B0E-4C39-9B8A-0D7E5A2C1BFF"),
};

/// wixl writes non-ASCII names as Windows-1252 under the neutral code page, which reads them
/// as UTF-8: not text.
const ZAEHLER: MsiCase = MsiCase {
    file: "zaehler-1.0.msi",
    product_code: "6F1D3A52-5B0E-4C39-9B8A-0D7E5A2C1B03",
    name: "Zähler Pro",
    manufacturer: "Müller GmbH",
    upgrade_code: None,
    ..WIDGET_1
};

const WIDGET_2: MsiCase = MsiCase {
    file: "widget-2.0.msi",
    product_code: "6F1D3A52-5B0E-4C39-9B8A-0D7E5A2C1B02",
    version: "2.0.0",
    ..WIDGET_1
};

/// A store with Microsoft's classifications (a generated catalog), the site's certificate, and
/// MSIs to publish.
struct Site {
    dir: tempfile::TempDir,
    data: PathBuf,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        stdout_of(ferry(&data).args(["dev", "synth", "--updates", "200"]));
        let prefix = dir.path().join("site");
        let mut cert = ferry(&data);
        cert.args(["publish", "cert", "new", "--bits", "2048", "--out"]).arg(&prefix);
        stdout_of(&mut cert);
        Site { dir, data }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn msi(&self, case: &MsiCase) -> PathBuf {
        build_msi(self.dir.path(), case)
    }

    /// `ferry publish ... --cert --key --json` with `args` before the certificate.
    fn publish(&self, args: &[&str]) -> assert_cmd::Command {
        let mut c = ferry(&self.data);
        c.arg("publish").args(args);
        c.arg("--cert").arg(self.path("site.crt")).arg("--key").arg(self.path("site.key"));
        c
    }

    /// `ferry publish --exe` of a new installer of Contoso's `product` (named `NAME.exe`,
    /// detected by `%ProgramFiles%\Contoso\NAME.exe`).
    fn exe_publish(&self, name: &str, product: &str, title: &str) -> assert_cmd::Command {
        let exe = self.path(&format!("{name}-setup.exe"));
        std::fs::write(&exe, format!("MZ the installer of {product}")).unwrap();
        let detect = format!("file:%ProgramFiles%\\Contoso\\{name}.exe");
        let (exe, detect) = (exe.to_str().unwrap(), detect.as_str());
        let args = ["--exe", exe, "--vendor", "Contoso", "--product", product, "--title", title];
        self.publish(&[&args[..], &["--detect", detect]].concat())
    }

    /// [`Site::exe_publish`], run; the update's id.
    fn publish_exe(&self, name: &str, product: &str, title: &str) -> String {
        let published = json_of(&mut self.exe_publish(name, product, title));
        published["update_id"].as_str().unwrap().to_string()
    }

    fn publish_msi(&self, case: &MsiCase) -> serde_json::Value {
        let msi = self.msi(case);
        json_of(&mut self.publish(&["--msi", msi.to_str().unwrap()]))
    }

    /// What may not change when a publish is refused: every file of the store (and its
    /// database's rows on PostgreSQL).
    fn snapshot(&self) -> Vec<(String, String)> {
        crate::util::snapshot(&self.data)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn cab_path(data: &Path, sha1_hex: &str) -> PathBuf {
    data.join("content").join(&sha1_hex[38..]).join(format!("{sha1_hex}.cab"))
}

/// Invariant: a published MSI reaches clients as any update does (offered for checking,
/// installed once approved, its signed CAB downloadable and matching its metadata), and the
/// product's next version supersedes it.
#[test]
fn a_published_msi_is_offered_downloaded_and_superseded_by_its_next_version() {
    if require(&["wixl", "osslsigncode", "gcab"]).is_none() {
        return;
    }
    let site = Site::new();
    let first = site.publish_msi(&WIDGET_1);
    let (id, sha1) = (first["update_id"].as_str().unwrap(), first["sha1"].as_str().unwrap());
    assert_eq!(first["title"], "Contoso Widget 1.0.0");
    assert_eq!(
        (first["vendor"].as_str(), first["product"].as_str()),
        (Some("Contoso"), Some("Contoso Widget"))
    );

    // The CAB in the content tree: signed by the site's certificate, holding the MSI.
    let cab = cab_path(&site.data, sha1);
    let (ok, said) = tool(
        Command::new("osslsigncode")
            .args(["verify", "-CAfile"])
            .arg(site.path("site.crt"))
            .arg("-in")
            .arg(&cab),
    );
    assert!(ok, "{said}");
    let (ok, listed) = tool(Command::new("gcab").arg("-l").arg(&cab));
    assert!(ok && listed.contains("widget-1.0.msi"), "{listed}");

    let server = Served::start(&site.data, &[]);
    let mut agent = Agent::new(&server);
    agent.handshake();
    agent.scan();
    let offered = agent.by_update().get(id).map(|u| (u.action.clone(), u.revision_id));
    let (action, revision_id) = offered.expect("the published update is offered");
    assert_eq!(action, "PreDeploymentCheck", "not approved yet");

    stdout_of(ferry(&site.data).args(["updates", "approve", id]));
    crate::util::wait_until("the approval reaches the server", || {
        let mut scan = Agent::new(&server);
        scan.handshake();
        scan.scan();
        scan.by_update().get(id).is_some_and(|u| u.action == "Install")
    });

    // The compliance report names its vendor and product, as does the console's update list.
    let report = stdout_of(ferry(&site.data).args(["report", "--by", "update"]));
    assert!(report.contains("Contoso Widget 1.0.0 (Contoso / Contoso Widget)"), "{report}");
    let token = stdout_of(ferry(&site.data).args(["admin", "token"])).trim().to_string();
    let mut http = server.http();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let login = http.request("POST", "/admin/login", &form, format!("token={token}").as_bytes());
    let cookie = login.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let cookie = [("Cookie", cookie.as_str())];
    let page = http.request("GET", "/admin/updates?approval=approved", &cookie, b"").text();
    let row = page.split("<tr>").find(|r| r.contains(id)).unwrap_or_else(|| panic!("{page}"));
    assert!(row.contains("<td>Contoso / Contoso Widget</td>"), "{row}");

    // GetExtendedUpdateInfo names the file; the bytes served are the ones the metadata says.
    let locations = agent.file_locations(&[revision_id]);
    let (digest, url) = locations.first().expect("a file location").clone();
    assert_eq!(hex::encode_upper(&digest), sha1);
    let path = url.split_once("/Content/").map(|(_, p)| format!("/Content/{p}")).expect(&url);
    let body = server.http().request("GET", &path, &[], b"").body;
    assert_eq!(hex::encode_upper(sha1::Sha1::digest(&body)), sha1);
    assert_eq!(sha256_hex(&body), first["sha256"].as_str().unwrap());

    // The next version supersedes it, in the next scan's metadata.
    let second = site.publish_msi(&WIDGET_2);
    assert_eq!(second["supersedes"], serde_json::json!([id]));
    let second_id = second["update_id"].as_str().unwrap().to_string();
    crate::util::wait_until("the next version is offered and names what it supersedes", || {
        let mut scan = Agent::new(&server);
        scan.handshake();
        scan.scan();
        let core = scan.by_update().get(&second_id).and_then(|u| u.xml.clone());
        core.is_some_and(|xml| {
            xml.contains(&format!("<SupersededUpdates><UpdateIdentity UpdateID=\"{id}\""))
        })
    });
    let listed = json_of(ferry(&site.data).args(["publish", "list"]));
    let versions: Vec<&str> =
        listed.as_array().unwrap().iter().map(|p| p["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["1.0.0", "2.0.0"]);
    // Expired: no longer offered; the list says so; expiring it again is refused.
    let expired = json_of(ferry(&site.data).args(["publish", "expire", id]));
    assert_eq!(expired["revision_number"], 101);
    crate::util::wait_until("the expired update is no longer offered", || {
        let mut scan = Agent::new(&server);
        scan.handshake();
        scan.scan();
        !scan.by_update().contains_key(id) && scan.by_update().contains_key(&second_id)
    });
    let listed = json_of(ferry(&site.data).args(["publish", "list"]));
    assert_eq!(listed[0]["state"], "Expired");
    assert_eq!(
        (listed[1]["state"].as_str(), listed[0]["revision_number"].as_i64()),
        (Some("Published"), Some(101))
    );
    let out = ferry(&site.data).args(["publish", "expire", id]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(1) && err.contains("is expired"), "{err}");
    let check = stdout_of(ferry(&site.data).args(["check", "--deep"]));
    assert!(check.starts_with("clean"), "{check}");
}

/// Invariant: a refused publish names its problem, exits 1 and changes nothing: not an MSI, an
/// id already taken, another vendor's product, an EXE without detection rules, a wrong PFX
/// password, an installer too large for a CAB (never read into memory).
#[test]
fn refused_publishes_say_why_and_change_nothing() {
    if require(&["wixl", "openssl"]).is_none() {
        return;
    }
    let site = Site::new();
    let first = site.publish_msi(&WIDGET_1);
    let id = first["update_id"].as_str().unwrap().to_string();
    let before = site.snapshot();
    let msi = site.msi(&WIDGET_2);
    let msi = msi.to_str().unwrap();
    let zaehler = site.msi(&ZAEHLER);
    let zaehler = zaehler.to_str().unwrap();
    let text = site.path("notes.txt");
    std::fs::write(&text, "not an installer").unwrap();
    // A FIFO named as an installer: refused at once, never waited on.
    let fifo = site.path("fifo.msi");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let huge = site.path("huge.exe");
    std::fs::File::create(&huge).unwrap().set_len(4 << 30).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--msi", text.to_str().unwrap()], "not an MSI"),
        (vec!["--msi", fifo.to_str().unwrap()], "not a regular file"),
        (vec!["--msi", msi, "--id", &id], "already in the store"),
        (vec!["--msi", msi, "--title", "two\nlines"], "title contains a control character"),
        (vec!["--msi", zaehler, "--vendor", "Mueller"], "ProductName"),
        (vec!["--msi", msi, "--vendor", "Con\u{202e}toso"], "invisible formatting character"),
        (vec!["--msi", msi, "--product", "\u{200b}"], "category name"),
        (vec!["--msi", zaehler, "--product", "Zaehler", "--title", "Z 1"], "give --vendor"),
        (vec!["--msi", msi, "--vendor", "Fabrikam"], "another vendor's product"),
        (
            vec!["--msi", msi, "--vendor", "Fabrikam", "--product", "Contoso Widget\t"],
            "another vendor's product",
        ),
        (
            vec!["--msi", msi, "--vendor", "Microsoft", "--product", "Tools"],
            "already another company",
        ),
        (
            vec!["--msi", msi, "--prerequisite", "00000000-0000-4000-8000-0000000000ab"],
            "the store holds no such update",
        ),
        (
            vec![
                "--msi",
                msi,
                "--id",
                "6f1d3a52-0000-4000-8000-000000000009",
                "--prerequisite",
                "6f1d3a52-0000-4000-8000-000000000009",
            ],
            "cannot need itself",
        ),
        (
            vec![
                "--exe",
                text.to_str().unwrap(),
                "--vendor",
                "Contoso",
                "--product",
                "Tools",
                "--title",
                "Tools 1",
            ],
            "detection rule",
        ),
        (
            vec![
                "--exe",
                huge.to_str().unwrap(),
                "--vendor",
                "Contoso",
                "--product",
                "Big",
                "--title",
                "Big 1",
                "--detect",
                "file:C:\\big.exe",
            ],
            "4294967296",
        ),
        (
            vec![
                "--msi",
                msi,
                "--classification",
                "tools",
                "--supersedes",
                "00000000-0000-0000-0000-000000000001",
            ],
            "not an update published here",
        ),
    ];
    for (args, said) in cases {
        let out = site.publish(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
        assert_eq!(site.snapshot(), before, "{args:?} changed the store");
    }

    // A PFX with the wrong password.
    let pfx = site.path("site.pfx");
    let (ok, said) = tool(
        Command::new("openssl")
            .args(["pkcs12", "-export", "-passout", "pass:right", "-inkey"])
            .arg(site.path("site.key"))
            .arg("-in")
            .arg(site.path("site.crt"))
            .arg("-out")
            .arg(&pfx),
    );
    assert!(ok, "{said}");
    let wrong = site.path("wrong.txt");
    std::fs::write(&wrong, "wrong\n").unwrap();
    let mut c = ferry(&site.data);
    c.args(["publish", "--msi", msi, "--pfx"]).arg(&pfx).arg("--password-file").arg(&wrong);
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("password"), "{err}");
    assert_eq!(site.snapshot(), before);

    // A FIFO or a device as the key: refused at once, never waited on or read without end.
    for key in [fifo.as_path(), Path::new("/dev/zero")] {
        let mut c = ferry(&site.data);
        c.args(["publish", "--msi", msi, "--cert"])
            .arg(site.path("site.crt"))
            .arg("--key")
            .arg(key);
        let out = c.timeout(std::time::Duration::from_secs(60)).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{key:?}: {err}");
        assert!(err.contains("not a regular file"), "{key:?}: {err}");
    }
    assert_eq!(site.snapshot(), before);
    // Named by the operator, the same MSI publishes with its names as given.
    let named = json_of(&mut site.publish(&[
        "--msi",
        zaehler,
        "--vendor",
        "Müller GmbH",
        "--product",
        "Zähler Pro",
        "--title",
        "Zähler Pro 1.0",
    ]));
    assert_eq!(
        (named["vendor"].as_str(), named["title"].as_str()),
        (Some("Müller GmbH"), Some("Zähler Pro 1.0"))
    );
}

/// Invariant: a revision of a published update is its next revision number with the new
/// details (and an EXE's new detection rules), read by clients at their next scan; the
/// installer and its CAB stay. A revision that would be wrong, or change nothing, is refused
/// and changes nothing.
#[test]
fn a_published_exe_is_revised_and_clients_read_the_revision() {
    if require(&["openssl"]).is_none() {
        return;
    }
    let site = Site::new();
    // What a killed publish left behind goes with the next publish.
    let leftover = site.data.join("tmp/publish/.ferry-cab-killed.partial");
    std::fs::create_dir_all(leftover.parent().unwrap()).unwrap();
    std::fs::write(&leftover, b"half a CAB").unwrap();
    // A key others can read still signs, with a warning.
    let key = site.path("site.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out =
        site.exe_publish("tool", "Contoso Tool", "Contoso Tool 1").arg("--json").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("can be read by other users"), "{err}");
    let published: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!leftover.exists(), "the killed publish's partial CAB is gone");
    let id = published["update_id"].as_str().unwrap().to_string();
    let server = Served::start(&site.data, &[]);
    let core_of = |id: &str| {
        let mut scan = Agent::new(&server);
        scan.handshake();
        scan.scan();
        scan.by_update().get(id).map(|u| (u.revision_id, u.xml.clone().unwrap_or_default()))
    };
    let (first_revision, core) = core_of(&id).expect("the published EXE is offered");
    assert!(core.contains("tool.exe"), "{core}");

    let revised = json_of(ferry(&site.data).args([
        "publish",
        "revise",
        &id,
        "--title",
        "Contoso Tool 1 (fixed detection)",
        "--detect",
        "file:%ProgramFiles%\\Contoso\\tool2.exe",
        "--severity",
        "critical",
    ]));
    assert_eq!(revised["revision_number"], 101);
    crate::util::wait_until("clients read the revised detection rules", || {
        core_of(&id).is_some_and(|(revision, core)| {
            revision != first_revision && core.contains("tool2.exe") && !core.contains("tool.exe")
        })
    });
    let listed = json_of(ferry(&site.data).args(["publish", "list"]));
    assert_eq!(
        (listed[0]["title"].as_str(), listed[0]["revision_number"].as_i64()),
        (Some("Contoso Tool 1 (fixed detection)"), Some(101))
    );
    let cab = cab_path(&site.data, published["sha1"].as_str().unwrap());
    assert!(cab.is_file(), "the same signed CAB serves the revision");

    let msi = site.publish_msi(&WIDGET_1);
    let msi_id = msi["update_id"].as_str().unwrap();
    let before = site.snapshot();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![&id], "change nothing"),
        (vec![&id, "--title", "Contoso Tool 1 (fixed detection)"], "change nothing"),
        (vec![&id, "--title", "two\nlines"], "control character"),
        (vec![&id, "--supersedes", &id], "cannot supersede itself"),
        (
            vec![&id, "--supersedes", "00000000-0000-4000-8000-000000000001"],
            "not an update published here",
        ),
        (vec![&id, "--prerequisite", "00000000-0000-4000-8000-0000000000ab"], "no such update"),
        (vec![msi_id, "--detect", "file:C:\\x.exe"], "only an EXE's detection rules"),
        (
            vec!["00000000-0000-4000-8000-000000000002", "--title", "x"],
            "not an update published here",
        ),
        (vec![&id, "--clear", "title"], "one of description"),
        (vec![&id, "--description", "x", "--clear", "description"], "also given a value"),
        (vec![&id, "--title", "one\u{2028}line"], "control character"),
    ];
    for (args, said) in cases {
        let out = ferry(&site.data).args(["publish", "revise"]).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(matches!(out.status.code(), Some(1 | 2)), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
        assert_eq!(site.snapshot(), before, "{args:?} changed the store");
    }
    // Cleared fields go.
    let cleared =
        json_of(ferry(&site.data).args(["publish", "revise", &id, "--clear", "severity"]));
    assert_eq!(cleared["revision_number"], 102);
    let revise = |args: &[&str]| {
        let out = ferry(&site.data).args(["publish", "revise"]).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // No loop of prerequisites or supersedence: such updates could never be installed.
    assert_eq!(revise(&[msi_id, "--prerequisite", &id]).0, Some(0));
    let (code, err) = revise(&[&id, "--prerequisite", msi_id]);
    assert!(code == Some(1) && err.contains("neither could ever be installed"), "{err}");
    assert_eq!(revise(&[&id, "--supersedes", msi_id]).0, Some(0));
    let (code, err) = revise(&[msi_id, "--supersedes", &id]);
    assert!(code == Some(1) && err.contains("cannot go round"), "{err}");
    // Through a third update too: it needs the widget, which needs the tool, which needs it.
    let third = site.publish_exe("third", "Contoso Third", "Third 1");
    let third = third.as_str();
    assert_eq!(revise(&[&id, "--prerequisite", third]).0, Some(0));
    let (code, err) = revise(&[third, "--prerequisite", msi_id]);
    assert!(code == Some(1) && err.contains("neither could ever be installed"), "{err}");
    assert_eq!(revise(&[&id, "--no-prerequisites"]).0, Some(0));
    // An update another needs is not expired; an expired one is not revised, nor needed.
    let out = ferry(&site.data).args(["publish", "expire", &id]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(1) && err.contains(&format!("{msi_id} needs")), "{err}");
    assert_eq!(revise(&[msi_id, "--no-prerequisites"]).0, Some(0));
    stdout_of(ferry(&site.data).args(["publish", "expire", &id]));
    let (code, err) = revise(&[&id, "--title", "x"]);
    assert!(code == Some(1) && err.contains("is expired"), "{err}");
    let (code, err) = revise(&[msi_id, "--prerequisite", &id]);
    assert!(code == Some(1) && err.contains("could never be installed"), "{err}");
    let check = stdout_of(ferry(&site.data).args(["check", "--deep"]));
    assert!(check.starts_with("clean"), "{check}");
}

/// Invariant: revisions racing for one update each get their own revision number or are
/// refused saying another came first; none is lost or stored twice. Racing revisions never
/// make a loop between them.
#[test]
fn revisions_racing_for_one_update_are_numbered_or_refused() {
    if require(&["openssl"]).is_none() {
        return;
    }
    let site = Site::new();
    let id = site.publish_exe("tool", "Contoso Tool", "Tool 1");
    let racers: Vec<_> = (0..6)
        .map(|i| {
            let mut c = crate::util::ferry_process(&site.data);
            c.args(["publish", "revise", &id, "--title"]);
            c.arg(format!("Tool 1, take {i}"));
            c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let mut stored = 0;
    for racer in racers {
        let out = racer.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => stored += 1,
            Some(1) => assert!(err.contains("meanwhile"), "{err}"),
            other => panic!("{other:?}: {err}"),
        }
    }
    let listed = json_of(ferry(&site.data).args(["publish", "list"]));
    assert_eq!(listed[0]["revision_number"].as_i64(), Some(100 + stored), "{listed}");
    // Two updates made to need each other at the same moment: one of the two is refused.
    let other = site.publish_exe("other", "Contoso Other", "Other 1");
    for round in 0..2 {
        let revise = |id: &str, needs: &str| {
            let mut c = crate::util::ferry_process(&site.data);
            // Each waits between its checks and its write: without the store's publish lock,
            // both would pass their checks.
            c.env("FERRY_PAUSE_AT", "publish.revise.checked").env("FERRY_PAUSE_MS", "400");
            c.args(["publish", "revise", id, "--prerequisite", needs]);
            c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        };
        let racers = [revise(&id, &other), revise(&other, &id)];
        let codes: Vec<_> =
            racers.map(|r| r.wait_with_output().unwrap().status.code()).into_iter().collect();
        assert!(codes.contains(&Some(1)), "round {round}: both made the loop: {codes:?}");
        for update in [&id, &other] {
            let out = ferry(&site.data)
                .args(["publish", "revise", update, "--no-prerequisites"])
                .output()
                .unwrap();
            assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
        }
    }
    let check = stdout_of(ferry(&site.data).args(["check", "--deep"]));
    assert!(check.starts_with("clean"), "{check}");
}
