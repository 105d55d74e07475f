//! Local publishing's signing (issue 16): the publishing certificate `ferry publish cert new`
//! makes, and the Authenticode-signed CAB, checked with the real tools: `openssl` reads the
//! certificate and makes the bad ones and the PFX files, `osslsigncode verify` checks every
//! signature, `gcab` lists and extracts the CAB.

use crate::served::require;
use crate::util::ferry_without_backend;
use ferry::publish::cab::{self, CabError, SignedCab};
use ferry::publish::signing::{PublishingIdentity, SigningError};
use sha1::Digest as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TOOLS: &[&str] = &["osslsigncode", "gcab", "openssl"];

fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn succeed(dir: &Path, program: &str, args: &[&str]) -> String {
    crate::util::tool_stdout(Command::new(program).args(args).current_dir(dir))
}

/// `ferry publish cert new --out DIR/PREFIX --bits 2048` (2048 keeps the test quick; the
/// default is 3072).
fn cert_new(dir: &Path, prefix: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    ferry_without_backend(&dir.join("data"))
        .args(["publish", "cert", "new", "--bits", "2048", "--out"])
        .arg(dir.join(prefix))
        .args(extra)
        .assert()
}

/// An installer of three CAB blocks and a bit, not compressible.
/// The installer of `dir`, written once: its modification time is the CAB member's date, so
/// writing it again before each signature would let signatures of "the same" file differ.
fn installer(dir: &Path) -> PathBuf {
    let path = dir.join("setup.msi");
    if path.exists() {
        return path;
    }
    let mut state = 0x2545_f491_u32;
    let bytes: Vec<u8> = (0..100_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `ferry publish cert new --out DIR/site`, and the identity its files make.
fn site_identity(dir: &Path) -> (PathBuf, PublishingIdentity) {
    cert_new(dir, "site", &[]).success();
    let crt = dir.join("site.crt");
    let identity = PublishingIdentity::from_pem_files(&crt, &dir.join("site.key")).unwrap();
    (crt, identity)
}

fn sign(dir: &Path, identity: &PublishingIdentity, name: &str) -> SignedCab {
    cab::write_signed_cab(&installer(dir), "setup.msi", &dir.join(name), identity).unwrap()
}

/// `osslsigncode verify -CAfile TRUSTED -in CAB`. osslsigncode builds an OpenSSL store from
/// `-CAfile` alone (not the system's), so a self-signed certificate passed there is the trust
/// anchor for itself: that is the leaf trusted, as a client with it in Trusted Root is. No
/// `-ignore-crl` is needed: no certificate here names a CRL location (and Debian's stable
/// osslsigncode 2.5 does not have the flag).
fn verifies(dir: &Path, trusted: &Path, cab: &Path) -> bool {
    let out = run(dir, "osslsigncode", &["verify", "-CAfile", path(trusted), "-in", path(cab)]);
    out.status.success()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn publish_signing_cert_new_makes_an_rsa_sha256_code_signing_certificate() {
    let Some(()) = require(TOOLS) else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = cert_new(dir.path(), "site", &["--subject", "Contoso Publishing", "--years", "7"])
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for said in [
        "site.crt",
        "site.key",
        "Trusted Publishers",
        "Trusted Root Certification Authorities",
        "AcceptTrustedPublisherCerts",
        "Allow signed updates from an intranet Microsoft update service location",
    ] {
        assert!(stdout.contains(said), "{said} missing from:\n{stdout}");
    }
    let key_text = std::fs::read_to_string(dir.path().join("site.key")).unwrap();
    assert!(key_text.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!stdout.contains("PRIVATE KEY") && !stdout.contains(key_text.lines().nth(1).unwrap()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("site.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = succeed(dir.path(), "openssl", &["x509", "-in", "site.crt", "-noout", "-text"]);
    let bits: usize = text
        .split("Public-Key: (")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no key size in:\n{text}"));
    assert!(bits >= 2048, "{bits} bits");
    for said in [
        "rsaEncryption",
        "Signature Algorithm: sha256WithRSAEncryption",
        "Code Signing",
        "CA:FALSE",
        "Digital Signature",
        "Subject: CN = Contoso Publishing",
    ] {
        assert!(text.contains(said), "{said} missing from:\n{text}");
    }
    let dates = succeed(dir.path(), "openssl", &["x509", "-in", "site.crt", "-noout", "-enddate"]);
    let year = chrono::Utc::now().format("%Y").to_string().parse::<i32>().unwrap();
    assert!(dates.contains(&format!("{}", year + 7)), "7 years: {dates}");
    // The key is the certificate's: openssl's own check.
    let modulus = |args: &[&str]| succeed(dir.path(), "openssl", args);
    assert_eq!(
        modulus(&["x509", "-in", "site.crt", "-noout", "-modulus"]),
        modulus(&["rsa", "-in", "site.key", "-noout", "-modulus"])
    );
}

#[test]
fn publish_signing_an_existing_certificate_is_never_replaced() {
    let Some(()) = require(TOOLS) else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.crt"), "keep me").unwrap();
    let out = cert_new(dir.path(), "site", &[]).failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("site.crt exists already"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.path().join("site.crt")).unwrap(), "keep me");
    assert!(!dir.path().join("site.key").exists(), "no key without its certificate");
    // And an existing key alone stops it too.
    std::fs::write(dir.path().join("other.key"), "keep me too").unwrap();
    cert_new(dir.path(), "other", &[]).failure();
    assert_eq!(std::fs::read_to_string(dir.path().join("other.key")).unwrap(), "keep me too");
    assert!(!dir.path().join("other.crt").exists());
}

#[test]
fn publish_signing_a_signed_cab_verifies_lists_and_extracts() {
    let Some(()) = require(TOOLS) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (crt, identity) = site_identity(dir.path());
    let signed = sign(dir.path(), &identity, "0a1b2c3d-0000-4000-8000-000000000001_1.cab");
    let bytes = std::fs::read(&signed.path).unwrap();
    assert_eq!(signed.file_name, "0a1b2c3d-0000-4000-8000-000000000001_1.cab");
    assert_eq!(signed.size, bytes.len() as u64);
    assert_eq!(signed.sha1, <[u8; 20]>::from(sha1::Sha1::digest(&bytes)));
    assert_eq!(signed.sha256, <[u8; 32]>::from(sha2::Sha256::digest(&bytes)));
    assert!(verifies(dir.path(), &crt, &signed.path), "osslsigncode refused a CAB ferry signed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&signed.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "readable by whoever serves it");
    }
    let listed = succeed(dir.path(), "gcab", &["-l", path(&signed.path)]);
    assert!(listed.starts_with("setup.msi 100000 "), "gcab -l: {listed}");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    succeed(dir.path(), "gcab", &["-x", "-C", path(&out), path(&signed.path)]);
    assert_eq!(
        std::fs::read(out.join("setup.msi")).unwrap(),
        std::fs::read(dir.path().join("setup.msi")).unwrap()
    );
    // The cab crate reads it back as well, every block's checksum checked.
    let mut cabinet = ::cab::Cabinet::new(std::fs::File::open(&signed.path).unwrap()).unwrap();
    let mut member = Vec::new();
    std::io::Read::read_to_end(&mut cabinet.read_file("setup.msi").unwrap(), &mut member).unwrap();
    assert_eq!(member.len(), 100_000);
    // The same installer and certificate give the same bytes (no signing time, no timestamp).
    let again = sign(dir.path(), &identity, "again.cab");
    assert_eq!(again.sha256, signed.sha256);
    // Nothing but the CAB is left in the directory (the temporary file was renamed).
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "0a1b2c3d-0000-4000-8000-000000000001_1.cab",
            "again.cab",
            "out",
            "setup.msi",
            "site.crt",
            "site.key"
        ]
    );
}

#[test]
fn publish_signing_one_changed_byte_fails_verification() {
    let Some(()) = require(TOOLS) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (crt, identity) = site_identity(dir.path());
    let signed = sign(dir.path(), &identity, "good.cab");
    let bytes = std::fs::read(&signed.path).unwrap();
    let signature_at = u32::from_le_bytes(bytes[44..48].try_into().unwrap()) as usize;
    // The DER signature: SEQUENCE with a two-byte length; its last bytes are the RSA signature.
    assert_eq!(&bytes[signature_at..signature_at + 2], &[0x30, 0x82]);
    let der_len =
        4 + u16::from_be_bytes([bytes[signature_at + 2], bytes[signature_at + 3]]) as usize;
    let data_at = cab::HEADER_BYTES + 8 + 16 + "setup.msi".len() + 1 + 8;
    let places = [
        ("the member's data", data_at + 40_000),
        ("the signature's RSA value", signature_at + der_len - 20),
        ("the signed attributes", signature_at + der_len - 256 - 60),
    ];
    for (what, offset) in places {
        let mut changed = bytes.clone();
        changed[offset] ^= 0x01;
        let file = dir.path().join("changed.cab");
        std::fs::write(&file, &changed).unwrap();
        assert!(
            !verifies(dir.path(), &crt, &file),
            "a changed byte in {what} (offset {offset}) verified"
        );
    }
    assert!(verifies(dir.path(), &crt, &signed.path));
}

#[test]
fn publish_signing_a_certificate_issued_by_a_ca_signs_with_its_chain() {
    let Some(()) = require(TOOLS) else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeed(
        d,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=Test Root",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    succeed(
        d,
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=Test Publisher",
        ],
    );
    std::fs::write(
        d.join("leaf.ext"),
        "extendedKeyUsage=codeSigning\nkeyUsage=critical,digitalSignature\n",
    )
    .unwrap();
    succeed(
        d,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.crt",
        ],
    );
    let chain =
        [std::fs::read(d.join("leaf.crt")).unwrap(), std::fs::read(d.join("ca.crt")).unwrap()]
            .concat();
    std::fs::write(d.join("chain.crt"), chain).unwrap();
    // The key as PKCS#1 ("RSA PRIVATE KEY") this time.
    succeed(d, "openssl", &["rsa", "-in", "leaf.key", "-traditional", "-out", "leaf.rsa.key"]);
    let identity =
        PublishingIdentity::from_pem_files(&d.join("chain.crt"), &d.join("leaf.rsa.key")).unwrap();
    let signed = sign(d, &identity, "chain.cab");
    assert!(verifies(d, &d.join("ca.crt"), &signed.path), "trusted through the root");
    cert_new(d, "other", &[]).success();
    assert!(!verifies(d, &d.join("other.crt"), &signed.path), "another root does not vouch for it");
}

/// The PFX files `openssl pkcs12 -export` makes: OpenSSL 3's default (AES-256-CBC, PBKDF2,
/// HMAC-SHA-256), 3DES with a SHA-1 MAC, and `-legacy` (RC2-40 certificates, 3DES key), where
/// this OpenSSL has its legacy provider.
#[test]
fn publish_signing_pfx_files_sign_alike_and_a_wrong_password_is_refused() {
    let Some(()) = require(TOOLS) else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cert_new(d, "site", &[]).success();
    std::fs::write(d.join("pw.txt"), "correct horse\n").unwrap();
    std::fs::write(d.join("wrong.txt"), "battery staple\n").unwrap();
    let export = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            "site.key",
            "-in",
            "site.crt",
            "-passout",
            "file:pw.txt",
            "-out",
            name,
        ];
        args.extend_from_slice(extra);
        run(d, "openssl", &args)
    };
    let mut kinds = vec!["default.pfx"];
    assert!(export("default.pfx", &[]).status.success());
    assert!(
        export(
            "3des.pfx",
            &["-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"]
        )
        .status
        .success()
    );
    kinds.push("3des.pfx");
    if export("legacy.pfx", &["-legacy"]).status.success() {
        kinds.push("legacy.pfx");
    } else {
        eprintln!("openssl pkcs12 -legacy is not available here: the RC2 PFX is not tested");
    }
    let reference =
        PublishingIdentity::from_pem_files(&d.join("site.crt"), &d.join("site.key")).unwrap();
    let expected = sign(d, &reference, "pem.cab");
    // A PFX without a password (an empty one, as `-passout pass:` writes it) needs no file.
    let args = ["pkcs12", "-export", "-inkey", "site.key", "-in", "site.crt", "-passout", "pass:"];
    succeed(d, "openssl", &[&args[..], &["-out", "open.pfx"]].concat());
    let open = PublishingIdentity::from_pfx_file(&d.join("open.pfx"), None).unwrap();
    assert_eq!(open.thumbprint().unwrap(), reference.thumbprint().unwrap());
    for kind in kinds {
        let identity = PublishingIdentity::from_pfx_file(&d.join(kind), Some(&d.join("pw.txt")))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let signed = sign(d, &identity, &format!("{kind}.cab"));
        assert!(verifies(d, &d.join("site.crt"), &signed.path), "{kind}");
        assert_eq!(signed.sha256, expected.sha256, "{kind} signs as the PEM files do");
        let wrong = PublishingIdentity::from_pfx_file(&d.join(kind), Some(&d.join("wrong.txt")))
            .unwrap_err();
        assert!(matches!(wrong, SigningError::WrongPassword { .. }), "{kind}: {wrong}");
        let message = wrong.to_string();
        assert!(
            message.contains(kind)
                && message.contains("wrong password")
                && message.contains("wrong.txt"),
            "{message}"
        );
        let none = PublishingIdentity::from_pfx_file(&d.join(kind), None).unwrap_err();
        assert!(none.to_string().contains("no --password-file"), "{none}");
    }
}

/// A self-signed certificate made by `openssl ca` (which, unlike `openssl req` in OpenSSL 3.0,
/// takes any validity), with `extensions` and a key of `bits`; returns (certificate, key).
fn openssl_certificate(
    dir: &Path,
    name: &str,
    bits: u32,
    extensions: &str,
    dates: (&str, &str),
) -> (PathBuf, PathBuf) {
    let ca = dir.join(format!("{name}-ca"));
    std::fs::create_dir(&ca).unwrap();
    std::fs::write(ca.join("index.txt"), "").unwrap();
    std::fs::write(ca.join("serial"), "01\n").unwrap();
    let config = format!(
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n[ext]\n{extensions}\n"
    );
    std::fs::write(ca.join("ca.cnf"), config).unwrap();
    let newkey = format!("rsa:{bits}");
    succeed(
        &ca,
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            &newkey,
            "-nodes",
            "-keyout",
            "cert.key",
            "-out",
            "cert.csr",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    succeed(
        &ca,
        "openssl",
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            "ca.cnf",
            "-selfsign",
            "-keyfile",
            "cert.key",
            "-in",
            "cert.csr",
            "-out",
            "cert.crt",
            "-startdate",
            dates.0,
            "-enddate",
            dates.1,
            "-extensions",
            "ext",
        ],
    );
    (ca.join("cert.crt"), ca.join("cert.key"))
}

#[test]
fn publish_signing_unusable_certificates_are_refused_naming_the_problem() {
    let Some(()) = require(TOOLS) else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let code_signing = "extendedKeyUsage = codeSigning\nkeyUsage = critical,digitalSignature";
    let valid = ("20200101000000Z", "20991231000000Z");
    let refused = |(crt, key): (PathBuf, PathBuf)| {
        let e = PublishingIdentity::from_pem_files(&crt, &key).unwrap_err();
        (e.to_string(), e)
    };
    // The control: made the same way, usable.
    let (crt, key) = openssl_certificate(d, "good", 2048, code_signing, valid);
    let identity = PublishingIdentity::from_pem_files(&crt, &key).unwrap();
    assert!(verifies(d, &crt, &sign(d, &identity, "good.cab").path));

    let (message, e) = refused(openssl_certificate(
        d,
        "expired",
        2048,
        code_signing,
        ("20200101000000Z", "20210101000000Z"),
    ));
    assert!(matches!(e, SigningError::Expired { .. }), "{message}");
    assert!(
        message.contains("expired-ca/cert.crt")
            && message.contains("expired on 2021-01-01 00:00:00 UTC")
            && message.contains("2020-01-01"),
        "{message}"
    );

    let (message, e) = refused(openssl_certificate(
        d,
        "future",
        2048,
        code_signing,
        ("20980101000000Z", "20990101000000Z"),
    ));
    assert!(matches!(e, SigningError::NotYetValid { .. }), "{message}");
    assert!(message.contains("valid only from 2098-01-01"), "{message}");

    let (message, e) =
        refused(openssl_certificate(d, "tls", 2048, "extendedKeyUsage = serverAuth", valid));
    assert!(matches!(e, SigningError::NotCodeSigning { .. }), "{message}");
    assert!(
        message.contains("tls-ca/cert.crt") && message.contains("1.3.6.1.5.5.7.3.1"),
        "{message}"
    );
    assert!(message.contains("1.3.6.1.5.5.7.3.3"), "{message}");

    let (message, e) = refused(openssl_certificate(
        d,
        "no-eku",
        2048,
        "keyUsage = critical,digitalSignature",
        valid,
    ));
    assert!(
        matches!(e, SigningError::NotCodeSigning { .. })
            && message.contains("no extended key usage"),
        "{message}"
    );

    let (message, e) = refused(openssl_certificate(d, "small", 1024, code_signing, valid));
    assert!(matches!(e, SigningError::KeySize { bits: 1024, .. }), "{message}");
    assert!(
        message.contains("small-ca/cert.key")
            && message.contains("1024 bits")
            && message.contains("at least 2048"),
        "{message}"
    );

    // A key that is not the certificate's.
    let (message, e) = refused((crt.clone(), d.join("small-ca/../expired-ca/cert.key")));
    assert!(matches!(e, SigningError::KeyMismatch { .. }), "{message}");
    assert!(message.contains("does not belong to the certificate in"), "{message}");
}

#[test]
fn publish_signing_an_installer_a_cab_cannot_hold_is_refused_before_anything_is_written() {
    let Some(()) = require(TOOLS) else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cert_new(d, "site", &[]).success();
    let identity =
        PublishingIdentity::from_pem_files(&d.join("site.crt"), &d.join("site.key")).unwrap();
    // 4 GiB, sparse: nothing is read before the size is refused.
    let big = d.join("big.exe");
    std::fs::File::create(&big).unwrap().set_len(4 << 30).unwrap();
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();
    let e = cab::write_signed_cab(&big, "big.exe", &out.join("big.cab"), &identity).unwrap_err();
    assert!(matches!(e, CabError::TooLarge { size: 4294967296, .. }), "{e}");
    let message = e.to_string();
    assert!(
        message.contains("big.exe") && message.contains("4294967296 bytes (4.0 GiB)"),
        "{message}"
    );
    let empty = d.join("empty.msi");
    std::fs::write(&empty, "").unwrap();
    let e =
        cab::write_signed_cab(&empty, "empty.msi", &out.join("empty.cab"), &identity).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "nothing written");
}

/// The largest installer a CAB holds, signed and verified, and one byte more refused. It
/// writes a 2 GiB CAB, so it runs by hand:
/// `cargo test --release --test integration -- --ignored publish_signing_the_largest`.
#[test]
#[ignore = "writes a 2 GiB CAB"]
fn publish_signing_the_largest_installer_a_cab_holds_is_signed_and_verifies() {
    let Some(()) = require(TOOLS) else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cert_new(d, "site", &[]).success();
    let identity =
        PublishingIdentity::from_pem_files(&d.join("site.crt"), &d.join("site.key")).unwrap();
    let max = cab::max_installer_bytes("big.exe", &identity).unwrap();
    assert!(max > 2_146_000_000 && max < 1 << 31, "{max}");
    let big = d.join("big.exe");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(max + 1).unwrap();
    let e = cab::write_signed_cab(&big, "big.exe", &d.join("big.cab"), &identity).unwrap_err();
    assert!(matches!(e, CabError::TooLarge { .. }), "{e}");
    file.set_len(max).unwrap();
    let signed = cab::write_signed_cab(&big, "big.exe", &d.join("big.cab"), &identity).unwrap();
    // Streamed: this process's peak memory stays far below the 2 GiB it wrote.
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let peak_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap();
        assert!(peak_kib < 256 * 1024, "peak resident memory {peak_kib} KiB");
        eprintln!("peak resident memory while writing 2 GiB: {peak_kib} KiB");
    }
    assert!(signed.size <= cab::MAX_CABINET_BYTES);
    assert!(signed.size > max);
    assert!(verifies(d, &d.join("site.crt"), &signed.path));
    let listed = succeed(d, "gcab", &["-l", path(&signed.path)]);
    assert!(listed.starts_with(&format!("big.exe {max} ")), "{listed}");
}

/// Invariant: what is signed is the installer that was opened (and read for its description),
/// even if another file is renamed over its path before signing.
#[test]
fn publish_signing_signs_the_installer_opened_even_if_its_path_is_replaced() {
    let Some(()) = require(TOOLS) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_, identity) = site_identity(dir.path());
    let original = installer(dir.path());
    let opened = cab::open_installer(&original).unwrap();
    let swapped = dir.path().join("swapped.msi");
    let mut other = std::fs::read(&original).unwrap();
    other[0] ^= 0xff;
    std::fs::write(&swapped, &other).unwrap();
    std::fs::rename(&swapped, &original).unwrap();
    let cab = dir.path().join("opened.cab");
    let signed =
        cab::write_signed_cab_from(&opened, &original, "setup.msi", &cab, &identity).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    succeed(dir.path(), "gcab", &["-x", "-C", path(&out), path(&signed.path)]);
    let member = std::fs::read(out.join("setup.msi")).unwrap();
    assert_eq!(member[0], other[0] ^ 0xff, "the opened file's bytes, not the new one's");
    assert_eq!(&member[1..], &other[1..]);
}
