//! Bundles signed by a trusted key and crafted to get past the checks (a stolen key, a
//! compromised exporter): each test is named after the hole it guards. None may reach outside
//! the store, leave anything behind, or roll a channel back.

use crate::bundles::{Fixture, assert_refused, entry_data_offset, manifest, refresh_volume};
use crate::util::{ferry, file_snapshot, snapshot, stdout_of};
use std::path::{Path, PathBuf};
use std::process::Output;

/// Every entry of a tar volume, as (name, bytes).
fn tar_entries(volume: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(std::fs::File::open(volume).unwrap());
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        out.push((name, data));
    }
    out
}

/// Writes `entries` as a fresh tar volume.
fn write_tar(volume: &Path, entries: &[(String, Vec<u8>)]) {
    let mut builder = tar::Builder::new(std::fs::File::create(volume).unwrap());
    for (name, data) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, &data[..]).unwrap();
    }
    builder.into_inner().unwrap();
}

/// The refusal's stderr, after checking the exit code and that the store did not change by a
/// byte (verify is not asked: these refusals need the update metadata, which verify does not
/// parse).
fn refused(f: &Fixture, store: &Path, bundle: &Path, code: i32) -> String {
    let before = snapshot(store);
    let out: Output = f.import(store, bundle);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}: expected exit {code}; stderr: {err}",
        bundle.display()
    );
    assert_eq!(before, snapshot(store), "{}: the store changed", bundle.display());
    err
}

/// A store that trusts the fixture's key and holds nothing yet.
fn empty_store(f: &Fixture, name: &str) -> PathBuf {
    let store = f.root.join(name);
    stdout_of(ferry(&store).args(["trust", "add"]).arg(&f.public));
    store
}

#[test]
fn a_bundle_id_that_names_a_path_outside_the_store_is_refused_and_nothing_outside_changes() {
    let f = Fixture::new(80, "4KiB");
    let good = f.export(&[]);
    let store = empty_store(&f, "iso");
    let victim = f.root.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), b"not the store's").unwrap();
    let b = f.copy(&good, "escaping-id");
    // The staging directory was `<store>/tmp/import-<bundle id>`.
    f.resign_json(&b, |m| m["bundle_id"] = "../../victim".into());
    let err = refused(&f, &store, &b, 13);
    assert!(err.contains("bundle id"), "{err}");
    assert_eq!(std::fs::read(victim.join("keep.txt")).unwrap(), b"not the store's");
}

#[test]
fn a_payload_that_contradicts_its_metadata_leaves_the_content_tree_untouched() {
    let f = Fixture::new(300, "16KiB");
    let good = f.export(&[]);
    let m = manifest(&good);
    let store = empty_store(&f, "iso");
    // The last payload: every other one is staged (and was moved into content/) before it.
    let last = m
        .members
        .iter()
        .rev()
        .find(|x| x.kind == ferry::bundle::manifest::MemberKind::Payload && x.chunks.is_empty())
        .unwrap();
    let b = f.copy(&good, "contradicting-payload");
    let volume = format!("vol-{:04}.tar", last.volume.unwrap());
    let mut entries = tar_entries(&b.join(&volume));
    let entry = entries.iter_mut().find(|(n, _)| n == last.path.as_str()).unwrap();
    entry.1[0] ^= 0x5a;
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&entry.1))
    };
    write_tar(&b.join(&volume), &entries);
    refresh_volume(&f, &b, &volume);
    let path = last.path.clone();
    // The manifest signs the changed bytes; only the update metadata knows better.
    f.resign(&b, |m| m.members.iter_mut().find(|x| x.path == path).unwrap().sha256 = sha256);
    let err = refused(&f, &store, &b, 11);
    assert!(err.contains("does not match the metadata of its update"), "{err}");
    let content = store.join("content");
    let files = file_snapshot(&content).len();
    assert_eq!(files, 0, "no payload of the refused bundle stays in the content tree");
    // The intact bundle still imports.
    let out = f.import(&store, &good);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_payload_stored_under_another_extension_is_refused() {
    let f = Fixture::new(120, "4KiB");
    let good = f.export(&[]);
    let m = manifest(&good);
    let store = empty_store(&f, "iso");
    let payload = m
        .members
        .iter()
        .find(|x| x.kind == ferry::bundle::manifest::MemberKind::Payload && x.chunks.is_empty())
        .unwrap();
    let (stem, extension) = payload.path.as_str().rsplit_once('.').unwrap();
    let other = format!("{stem}.{}", if extension == "bin" { "dat" } else { "bin" });
    let b = f.copy(&good, "other-extension");
    let volume = format!("vol-{:04}.tar", payload.volume.unwrap());
    let mut entries = tar_entries(&b.join(&volume));
    entries.iter_mut().find(|(n, _)| n == payload.path.as_str()).unwrap().0 = other.clone();
    write_tar(&b.join(&volume), &entries);
    refresh_volume(&f, &b, &volume);
    let path = payload.path.clone();
    f.resign(&b, |m| {
        m.members.iter_mut().find(|x| x.path == path).unwrap().path =
            ferry::bundle::safe_path::SafePath::new(&other).unwrap()
    });
    let err = refused(&f, &store, &b, 13);
    assert!(err.contains("is stored as .") && err.contains(&other), "{err}");
    assert!(stdout_of(ferry(&store).args(["check"])).starts_with("clean"));
}

#[test]
fn a_chunked_member_with_a_path_that_leaves_its_folder_is_refused() {
    let f = Fixture::new(700, "300KiB");
    let good = f.export(&["--volume-size", "1MiB"]);
    let m = manifest(&good);
    let store = empty_store(&f, "iso");
    let k = m.members.iter().position(|x| !x.chunks.is_empty()).expect("a chunked member");
    let name = m.members[k].path.as_str().to_string();
    for (case, field) in [("member", "path"), ("chunk", "chunks")] {
        let b = f.copy(&good, &format!("chunked-{case}"));
        let hostile = format!("{name}\\..\\..\\escape");
        f.resign_json(&b, |m| match field {
            "path" => m["members"][k]["path"] = hostile.clone().into(),
            _ => m["members"][k]["chunks"][0]["path"] = hostile.clone().into(),
        });
        let err = refused(&f, &store, &b, 13);
        assert!(err.contains("backslash"), "{case}: {err}");
    }
}

#[test]
fn sequences_beyond_a_signed_64_bit_column_are_refused_so_no_rollback_follows() {
    let f = Fixture::new(80, "4KiB");
    let first = f.export(&[]);
    let store = f.root.join("iso");
    assert!(f.import(&store, &first).status.success());
    let b = f.copy(&first, "huge-sequence");
    f.resign_json(&b, |m| {
        m["sequence"] = serde_json::json!(1u64 << 63);
        m["bundle_id"] = "00000000-0000-4000-8000-000000000001".into();
    });
    let err = refused(&f, &store, &b, 13);
    assert!(err.contains("sequence"), "{err}");
    // Bundle 1 is still the channel's last: another bundle 1 is a replay.
    let again = f.copy(&first, "replay");
    f.resign_json(&again, |m| m["bundle_id"] = "00000000-0000-4000-8000-000000000002".into());
    assert_refused(&f, &store, &again, 12, "not newer than the last import");
}

/// CRC-32 (IEEE), for the zip writer below.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A zip of stored entries, written by hand because zip writers refuse two entries of one name.
fn write_zip(path: &Path, entries: &[(String, Vec<u8>)]) {
    let (mut out, mut directory) = (Vec::new(), Vec::new());
    for (name, data) in entries {
        let offset = out.len() as u32;
        let (crc, size, name_len) = (crc32(data), data.len() as u32, name.len() as u16);
        let fixed = |sig: u32| {
            let mut h = sig.to_le_bytes().to_vec();
            h.extend_from_slice(&20u16.to_le_bytes()); // version needed
            h.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // flags, method (stored), time, date
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&name_len.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            h
        };
        out.extend(fixed(0x0403_4b50));
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        let mut central = 0x0201_4b50u32.to_le_bytes().to_vec();
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        central.extend(fixed(0).split_off(4));
        central.extend_from_slice(&[0; 8]); // comment length, disk, internal and external attributes
        central.extend_from_slice(&[0; 2]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        directory.extend(central);
    }
    let (start, count) = (out.len() as u32, entries.len() as u16);
    out.extend_from_slice(&directory);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(directory.len() as u32).to_le_bytes());
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    std::fs::write(path, out).unwrap();
}

#[test]
fn zip_volumes_with_two_entries_of_one_name_are_refused_whichever_copy_is_bad() {
    let f = Fixture::new(80, "4KiB");
    let good = f.export(&["--format", "zip"]);
    let store = empty_store(&f, "iso");
    let volume = good.join("vol-0001.zip");
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&volume).unwrap()).unwrap();
    let entries: Vec<(String, Vec<u8>)> = (0..archive.len())
        .map(|i| {
            let mut e = archive.by_index(i).unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (e.name().to_string(), data)
        })
        .collect();
    let target = entries.iter().position(|(n, _)| n.starts_with("content/")).expect("a payload");
    let mut bad = entries[target].clone();
    bad.1[0] ^= 0x5a;
    for (case, first, second) in
        [("bad-first", &bad, &entries[target]), ("bad-last", &entries[target], &bad)]
    {
        let b = f.copy(&good, case);
        let mut twice = entries.clone();
        twice[target] = first.clone();
        twice.insert(target + 1, second.clone());
        write_zip(&b.join("vol-0001.zip"), &twice);
        refresh_volume(&f, &b, "vol-0001.zip");
        let err = refused(&f, &store, &b, 13);
        assert!(err.contains("twice"), "{case}: {err}");
        let v = ferry(&store).arg("verify").arg(&b).arg("--trust").arg(&f.public).output().unwrap();
        assert_eq!(
            v.status.code(),
            Some(13),
            "verify, {case}: {}",
            String::from_utf8_lossy(&v.stdout)
        );
    }
    // The hand-written zip is a valid volume: the same entries once each import.
    let b = f.copy(&good, "rewritten");
    write_zip(&b.join("vol-0001.zip"), &entries);
    refresh_volume(&f, &b, "vol-0001.zip");
    let out = f.import(&store, &b);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_export_killed_around_its_final_rename_is_settled_by_the_next_export() {
    let f = Fixture::new(200, "4KiB");
    // Killed after the rename, before the channel state knew: the bundle is out there and counts.
    let crashed =
        f.export_command(&f.profile).env("FERRY_CRASH_AT", "export.renamed").output().unwrap();
    assert!(!crashed.status.success(), "the export should have died");
    let first = f.out.join("test-channel-000001");
    assert!(first.join("manifest.json").exists());
    let second = f.export(&[]);
    assert_eq!(second, f.out.join("test-channel-000002"));
    let m = manifest(&second);
    assert_eq!(m.base_sequence.map(|s| s.get()), Some(1), "a delta on the bundle that got out");
    let store = f.root.join("iso");
    assert!(f.import(&store, &first).status.success());
    let out = f.import(&store, &second);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Killed after recording, before the rename: the bundle never got out and is written again.
    let crashed =
        f.export_command(&f.profile).env("FERRY_CRASH_AT", "export.recorded").output().unwrap();
    assert!(!crashed.status.success(), "the export should have died");
    assert!(!f.out.join("test-channel-000003").exists());
    let third = f.export(&[]);
    assert_eq!(third, f.out.join("test-channel-000003"));
    assert!(!f.out.join("test-channel-000003.partial").exists());
    let out = f.import(&store, &third);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Killed after the rename, and the bundle carried away before the next export: only the
    // operator knows whether it got out, so the export asks instead of guessing.
    stdout_of(ferry(&f.cache).args([
        "dev",
        "synth",
        "--updates",
        "300",
        "--payload-bytes",
        "4KiB",
    ]));
    let crashed =
        f.export_command(&f.profile).env("FERRY_CRASH_AT", "export.renamed").output().unwrap();
    assert!(!crashed.status.success(), "the export should have died");
    let fourth = f.out.join("test-channel-000004");
    let carried = f.root.join("courier").join("test-channel-000004");
    std::fs::create_dir_all(carried.parent().unwrap()).unwrap();
    std::fs::rename(&fourth, &carried).unwrap();
    let asked = f.export_command(&f.profile).output().unwrap();
    let err = String::from_utf8_lossy(&asked.stderr);
    assert_eq!(asked.status.code(), Some(1), "{err}");
    assert!(err.contains("--confirm-pending") && err.contains("--forget-pending"), "{err}");
    let fifth =
        PathBuf::from(stdout_of(f.export_command(&f.profile).arg("--confirm-pending")).trim());
    assert_eq!(fifth, f.out.join("test-channel-000005"));
    assert_eq!(manifest(&fifth).base_sequence.map(|s| s.get()), Some(4));
    for bundle in [&carried, &fifth] {
        let out = f.import(&store, bundle);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// One metadata member of `records` appended to the last volume of a copy of `good`.
fn with_metadata_member(
    f: &Fixture,
    good: &Path,
    name: &str,
    records: &[(Vec<u8>, u64)],
) -> PathBuf {
    let m = manifest(good);
    let b = f.copy(good, name);
    let mut member = Vec::new();
    for (frame, size) in records {
        ferry::bundle::metadata::write_record(&mut member, frame, *size).unwrap();
    }
    let last = m.volumes.last().unwrap().name.clone();
    crate::bundles::append_tar_entry(
        &b.join(&last),
        b"metadata/revisions-0099.bin",
        tar::EntryType::Regular,
        &member,
        None,
    );
    refresh_volume(f, &b, &last);
    let (size, sha256) = {
        use sha2::Digest;
        (member.len() as u64, hex::encode(sha2::Sha256::digest(&member)))
    };
    let (declared, documents) = (records.iter().map(|r| r.1).sum::<u64>(), records.len() as u64);
    let volume = m.volumes.len() as u32;
    f.resign(&b, |m| {
        m.members.insert(
            0,
            ferry::bundle::manifest::MemberEntry {
                path: ferry::bundle::safe_path::SafePath::new("metadata/revisions-0099.bin")
                    .unwrap(),
                kind: ferry::bundle::manifest::MemberKind::Metadata,
                size,
                sha256,
                volume: Some(volume),
                sha1: None,
                uncompressed_size: Some(declared),
                documents: Some(documents),
                chunks: Vec::new(),
            },
        )
    });
    b
}

#[test]
fn bad_documents_end_an_import_with_their_problem_and_code_not_a_stopped_ingest() {
    let f = Fixture::new(80, "4KiB");
    let good = f.export(&[]);
    let store = empty_store(&f, "iso");
    // A bomb (64 MiB of zeros declared as 100 bytes) followed by many ordinary records: the
    // ingest stops at the bomb while the walk still has documents to hand over.
    let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 19).unwrap();
    let small = zstd::bulk::compress(&[b'x'; 100], 3).unwrap();
    let mut records = vec![(bomb, 100u64)];
    records.extend(std::iter::repeat_n((small, 100u64), 20_000));
    let b = with_metadata_member(&f, &good, "bomb-then-many", &records);
    let err = refused(&f, &store, &b, 13);
    assert!(
        err.contains("metadata/revisions-0099.bin document 1") && err.contains("declared"),
        "{err}"
    );
    assert!(!err.contains("ingest stopped"), "{err}");

    let text =
        b"<upd:Update xmlns:upd=\"http://schemas.microsoft.com/msus/2002/12/Update\"><unclosed>"
            .to_vec();
    let frame = zstd::bulk::compress(&text, 3).unwrap();
    let b = with_metadata_member(&f, &good, "unparsable", &[(frame, text.len() as u64)]);
    let err = refused(&f, &store, &b, 13);
    assert!(err.contains("metadata/revisions-0099.bin document 1"), "{err}");
    assert_eq!(
        err.matches("metadata/revisions-0099.bin document 1").count(),
        1,
        "said once: {err}"
    );
}

#[test]
fn a_refused_import_into_a_new_data_directory_leaves_nothing_behind() {
    let f = Fixture::new(80, "4KiB");
    let good = f.export(&[]);
    let m = manifest(&good);
    let b = f.copy(&good, "damaged");
    let payload = m.members.iter().find(|x| x.path.as_str().starts_with("content/")).unwrap();
    let volume = b.join(format!("vol-{:04}.tar", payload.volume.unwrap()));
    crate::bundles::flip_byte(
        &volume,
        entry_data_offset(&volume, payload.path.as_str()).unwrap() + 1,
    );
    let fresh = f.root.join("never-existed");
    let out = f.import(&fresh, &b);
    assert_eq!(out.status.code(), Some(11), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!fresh.exists(), "no empty store is left behind");
    // The message is said once, not once per error in its chain.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("does not match its hash").count(), 1, "{err}");
    // A directory that existed keeps what it held, and gets no store either.
    let existing = f.root.join("existing");
    std::fs::create_dir_all(&existing).unwrap();
    std::fs::write(existing.join("notes.txt"), b"mine").unwrap();
    assert_eq!(f.import(&existing, &b).status.code(), Some(11));
    let left: Vec<String> = std::fs::read_dir(&existing)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["notes.txt".to_string()]);
}

/// Verify listed missing members by searching every problem so far for each one (40,000
/// missing members took 51 s, a million never finished); now each is a set lookup.
#[test]
fn verify_reports_every_missing_member_of_a_large_manifest() {
    let f = Fixture::new(60, "4KiB");
    let good = f.export(&[]);
    let b = f.copy(&good, "many-missing");
    let missing = 40_000;
    f.resign(&b, |m| {
        for i in 0..missing {
            let sha1 = format!("{i:040X}");
            let path = format!("content/{}/{sha1}.cab", &sha1[38..]);
            m.members.push(ferry::bundle::manifest::MemberEntry {
                path: ferry::bundle::safe_path::SafePath::new(&path).unwrap(),
                kind: ferry::bundle::manifest::MemberKind::Payload,
                size: 1,
                sha256: "00".repeat(32),
                volume: Some(1),
                sha1: Some(sha1.to_lowercase()),
                uncompressed_size: None,
                documents: None,
                chunks: Vec::new(),
            });
        }
    });
    let out = ferry(&f.root.join("unused"))
        .args(["verify", "--json"])
        .arg(&b)
        .arg("--trust")
        .arg(&f.public)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(11));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), missing, "one problem per missing member");
    assert!(
        problems
            .iter()
            .all(|p| p["message"].as_str().unwrap().contains("is missing from volume 1"))
    );
}

/// Two exports of one channel from one cache would take the same sequence number and write the
/// same directory: the second waits for nothing and says so.
#[test]
fn a_second_export_of_a_channel_is_refused_while_one_runs() {
    use std::os::fd::AsRawFd;
    let f = Fixture::new(60, "4KiB");
    let lock_path = f.cache.join("tmp").join("export-test-channel.lock");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    // SAFETY: flock on a descriptor this test keeps open: an export in progress.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    let out = f.export_command(&f.profile).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("another export of channel test-channel is running"), "{err}");
    assert!(!f.out.join("test-channel-000001").exists());
    drop(held);
    let bundle = f.export(&[]);
    assert_eq!(bundle, f.out.join("test-channel-000001"));
}

/// Found by attack: a GNU long-name entry (a changed header, no key needed: import does not
/// check volume hashes) was read whole into memory before any check, 9 GB for a 1 GB volume,
/// and its name went into the message. Special entries are refused as they come now.
#[test]
fn a_long_name_entry_is_refused_without_reading_it_into_memory() {
    let f = Fixture::new(60, "4KiB");
    let good = f.export(&[]);
    let store = empty_store(&f, "iso");
    let last = manifest(&good).volumes.last().unwrap().name.clone();
    let b = f.copy(&good, "long-name");
    let name = vec![b'n'; 8 << 20];
    crate::bundles::append_tar_entry(
        &b.join(&last),
        b"././@LongLink",
        tar::EntryType::GNULongName,
        &name,
        None,
    );
    refresh_volume(&f, &b, &last);
    let err = refused(&f, &store, &b, 13);
    assert!(err.len() < 4096, "the message holds {} bytes", err.len());
    assert!(err.contains("never extract this bundle"), "{err}");
}

/// Found by attack: a zip end record declaring a huge central directory was allocated as given.
#[test]
fn a_zip_end_record_that_lies_is_damage_not_an_allocation() {
    let f = Fixture::new(60, "4KiB");
    let good = f.export(&["--format", "zip"]);
    let store = empty_store(&f, "iso");
    let b = f.copy(&good, "lying-end-record");
    let volume = b.join("vol-0001.zip");
    let mut bytes = std::fs::read(&volume).unwrap();
    let at = bytes.len() - 22;
    assert_eq!(&bytes[at..at + 4], b"PK\x05\x06");
    bytes[at + 12..at + 16].copy_from_slice(&u32::MAX.to_le_bytes()); // directory size
    bytes[at + 16..at + 20].copy_from_slice(&0u32.to_le_bytes()); // directory offset
    std::fs::write(&volume, bytes).unwrap();
    let err = refused(&f, &store, &b, 11);
    assert!(err.contains("damaged"), "{err}");
}

/// Found by attack: a manifest that is a link to /dev/zero (or a FIFO) was read until memory ran
/// out (or for ever) before any check.
#[test]
fn a_manifest_that_is_not_a_regular_file_is_refused() {
    let f = Fixture::new(60, "4KiB");
    let good = f.export(&[]);
    let store = empty_store(&f, "iso");
    let b = f.copy(&good, "device-manifest");
    std::fs::remove_file(b.join("manifest.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", b.join("manifest.json")).unwrap();
    let err = refused(&f, &store, &b, 13);
    assert!(err.contains("not a regular file"), "{err}");
    let verify =
        ferry(&store).arg("verify").arg(&b).arg("--trust").arg(&f.public).output().unwrap();
    assert_eq!(
        verify.status.code(),
        Some(13),
        "verify: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let inspect = ferry(&store).arg("inspect").arg(&b).output().unwrap();
    assert_eq!(
        inspect.status.code(),
        Some(13),
        "inspect: {}",
        String::from_utf8_lossy(&inspect.stderr)
    );
}

/// Found by attack: the staging name of `content/A5/X.psf` was `content_A5_X.psf`, which a
/// metadata member could also be called: verify passed and import failed with a wrong message.
/// Members of each kind live in their own folder now.
#[test]
fn members_outside_their_kinds_folder_are_refused() {
    let f = Fixture::new(60, "4KiB");
    let good = f.export(&[]);
    let store = empty_store(&f, "iso");
    let m = manifest(&good);
    let meta = m
        .members
        .iter()
        .position(|x| x.kind == ferry::bundle::manifest::MemberKind::Metadata)
        .unwrap();
    let b = f.copy(&good, "metadata-elsewhere");
    f.resign_json(&b, |m| m["members"][meta]["path"] = "content_A5_X.psf".into());
    let err = refused(&f, &store, &b, 13);
    assert!(err.contains("not in metadata/"), "{err}");
}

/// Found by attack: chunk sizes that add up past 2^64 wrapped (and panicked in a debug build).
#[test]
fn chunk_sizes_that_overflow_are_refused() {
    let f = Fixture::new(700, "300KiB");
    let good = f.export(&["--volume-size", "1MiB"]);
    let store = empty_store(&f, "iso");
    let k = manifest(&good)
        .members
        .iter()
        .position(|x| x.chunks.len() >= 2)
        .expect("a member in two chunks or more");
    let b = f.copy(&good, "overflowing-chunks");
    f.resign_json(&b, |m| {
        let size = m["members"][k]["size"].as_u64().unwrap();
        m["members"][k]["chunks"][0]["size"] = serde_json::json!(u64::MAX);
        m["members"][k]["chunks"][1]["size"] = serde_json::json!(size + 1);
    });
    let err = refused(&f, &store, &b, 11);
    assert!(err.contains("do not add up"), "{err}");
}

/// Found by attack: rule names of an approval policy reached the store and the terminal as
/// they were (escape sequences, 200,000 characters), and a policy could carry thousands of rules.
#[test]
fn approval_policies_with_unprintable_names_or_too_many_rules_are_refused() {
    let f = Fixture::new(60, "4KiB");
    let good = f.export(&[]);
    let store = empty_store(&f, "iso");
    let rule = |name: &str| serde_json::json!({ "name": name, "group": "Pilot" });
    let cases = [
        ("escape", serde_json::json!([rule("\u{1b}[2J\u{7}")])),
        (
            "right-to-left override",
            serde_json::json!([serde_json::json!({ "group": "Lab\u{202e}exe.txt" })]),
        ),
        ("long", serde_json::json!([rule(&"r".repeat(200_000))])),
        ("many", serde_json::Value::Array((0..3000).map(|i| rule(&format!("r{i}"))).collect())),
    ];
    for (case, rules) in cases {
        let b = f.copy(&good, &format!("policy-{}", case.replace(' ', "-")));
        f.resign_json(&b, |m| m["approval_policy"] = serde_json::json!({ "rules": rules }));
        let err = refused(&f, &store, &b, 13);
        assert!(err.contains("approval policy"), "{case}: {err}");
        assert!(!err.contains('\u{1b}'), "{case}: no escape reaches the terminal");
    }
}

/// Found by attack: update metadata naming a payload by a SHA-1 that is not its bytes' (SHA-256
/// and size right) imported, and `ferry check --deep` failed afterwards. The staging writer
/// hashes SHA-1 now, and the name must be the bytes'.
#[test]
fn a_payload_whose_name_is_not_its_sha1_is_refused() {
    use ferry::bundle::manifest::MemberKind;
    let f = Fixture::new(120, "4KiB");
    let good = f.export(&[]);
    let store = empty_store(&f, "iso");
    let m = manifest(&good);
    let payload = m
        .members
        .iter()
        .find(|x| x.kind == MemberKind::Payload && x.chunks.is_empty() && x.volume == Some(1))
        .unwrap();
    let meta =
        m.members.iter().find(|x| x.kind == MemberKind::Metadata && x.volume == Some(1)).unwrap();
    let old = hex::decode(payload.sha1.as_deref().unwrap()).unwrap();
    let mut new = old.clone();
    new[0] ^= 1;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (old_b64, new_b64) = (b64.encode(&old), b64.encode(&new));
    let b = f.copy(&good, "sha1-lie");
    let volume = b.join("vol-0001.tar");
    let mut entries = tar_entries(&volume);
    // The metadata names the file by the other SHA-1.
    let records = &mut entries.iter_mut().find(|(n, _)| n == meta.path.as_str()).unwrap().1;
    let mut input = &records[..];
    let (mut rewritten, mut total, mut changed) = (Vec::new(), 0u64, 0);
    while let Some((frame, size)) = ferry::bundle::metadata::read_record(&mut input).unwrap() {
        let mut doc =
            String::from_utf8(zstd::bulk::decompress(&frame, size as usize).unwrap()).unwrap();
        if doc.contains(&old_b64) {
            doc = doc.replace(&old_b64, &new_b64);
            changed += 1;
        }
        let frame = zstd::bulk::compress(doc.as_bytes(), 3).unwrap();
        ferry::bundle::metadata::write_record(&mut rewritten, &frame, doc.len() as u64).unwrap();
        total += doc.len() as u64;
    }
    assert!(changed > 0, "the payload's update is in volume 1's metadata");
    *records = rewritten.clone();
    // The payload member is named by it too (its bytes stay).
    let new_hex = hex::encode_upper(&new);
    let extension = payload.path.as_str().rsplit_once('.').map(|(_, e)| e).unwrap();
    let new_path = format!("content/{}/{new_hex}.{extension}", &new_hex[38..]);
    entries.iter_mut().find(|(n, _)| n == payload.path.as_str()).unwrap().0 = new_path.clone();
    write_tar(&volume, &entries);
    refresh_volume(&f, &b, "vol-0001.tar");
    let (meta_path, payload_path) = (meta.path.clone(), payload.path.clone());
    f.resign(&b, |m| {
        let x = m.members.iter_mut().find(|x| x.path == meta_path).unwrap();
        x.size = rewritten.len() as u64;
        x.sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&rewritten));
        x.uncompressed_size = Some(total);
        let p = m.members.iter_mut().find(|x| x.path == payload_path).unwrap();
        p.path = ferry::bundle::safe_path::SafePath::new(&new_path).unwrap();
        p.sha1 = Some(hex::encode(&new));
    });
    let err = refused(&f, &store, &b, 11);
    assert!(err.contains("does not match the metadata of its update"), "{err}");
}
