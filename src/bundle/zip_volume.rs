//! Reading a zip volume by its central directory, with one interpretation: ours.
//!
//! A zip library indexes entries by name, so a volume with two entries of one name is read by
//! whichever copy it keeps, and the other is never seen. Bundles hold stored (uncompressed)
//! entries only, so the reading is small enough to own: the directory is parsed here, a second
//! entry of a name is an error before any data is read, and each entry's bytes are found through
//! its local header, whose name must agree with the directory.
//!
//! Invariant: no allocation or loop bound comes from the volume without a bound of its own: the
//! directory is at most the file, an entry at most what lies before the directory.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

/// One file of the central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: Vec<u8>,
    pub size: u64,
    /// Unix file mode when the archive says it was made on Unix.
    pub unix_mode: Option<u32>,
    /// Where the local header starts.
    local_header: u64,
    /// Where the central directory starts: the entry's data must end before it.
    directory: u64,
}

/// What is wrong with a zip volume's structure.
#[derive(Debug)]
pub enum ZipProblem {
    /// Not a zip we can read, or damaged.
    Damaged(io::Error),
    /// Two entries of one name: which one counts would depend on the tool.
    Duplicate(Vec<u8>),
}

impl From<io::Error> for ZipProblem {
    fn from(e: io::Error) -> ZipProblem {
        ZipProblem::Damaged(e)
    }
}

fn damaged(message: impl Into<String>) -> ZipProblem {
    ZipProblem::Damaged(io::Error::new(io::ErrorKind::InvalidData, message.into()))
}

const EOCD: u32 = 0x0605_4b50;
const EOCD64: u32 = 0x0606_4b50;
const EOCD64_LOCATOR: u32 = 0x0706_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;
const EOCD_LEN: usize = 22;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: u64 = 30;
/// A million entries with names of 100 bytes; any larger directory is not a bundle's (its size
/// comes from the end record, which nothing has checked yet).
const MAX_DIRECTORY_BYTES: u64 = 256 << 20;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn read_at(file: &mut File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// Where the central directory is and how many entries it declares.
struct Directory {
    offset: u64,
    size: u64,
    entries: u64,
}

/// The end record: the last `EOCD` signature whose comment reaches exactly to the end of the
/// file (a signature inside a comment does not), then its ZIP64 form when it defers to one.
fn find_directory(file: &mut File, file_size: u64) -> Result<Directory, ZipProblem> {
    let tail_len = file_size.min((EOCD_LEN + u16::MAX as usize) as u64) as usize;
    let tail = read_at(file, file_size - tail_len as u64, tail_len)?;
    let at = (0..tail_len.saturating_sub(EOCD_LEN - 1))
        .rev()
        .find(|&i| {
            u32_at(&tail, i) == EOCD && i + EOCD_LEN + u16_at(&tail, i + 20) as usize == tail_len
        })
        .ok_or_else(|| {
            damaged("no end of central directory record: not a zip file, or cut short")
        })?;
    let eocd_offset = file_size - (tail_len - at) as u64;
    let (entries, size, offset) =
        (u16_at(&tail, at + 10), u32_at(&tail, at + 12), u32_at(&tail, at + 16));
    if entries != u16::MAX && size != u32::MAX && offset != u32::MAX {
        return Ok(Directory { offset: offset.into(), size: size.into(), entries: entries.into() });
    }
    let locator_offset =
        eocd_offset.checked_sub(20).ok_or_else(|| damaged("ZIP64 end record locator missing"))?;
    let locator = read_at(file, locator_offset, 20)?;
    if u32_at(&locator, 0) != EOCD64_LOCATOR {
        return Err(damaged("ZIP64 end record locator missing"));
    }
    let record_offset = u64_at(&locator, 8);
    if record_offset.checked_add(56).is_none_or(|end| end > locator_offset) {
        return Err(damaged("ZIP64 end record out of place"));
    }
    let record = read_at(file, record_offset, 56)?;
    if u32_at(&record, 0) != EOCD64 {
        return Err(damaged("ZIP64 end record missing"));
    }
    Ok(Directory {
        entries: u64_at(&record, 32),
        size: u64_at(&record, 40),
        offset: u64_at(&record, 48),
    })
}

/// The ZIP64 extra field supplies, in order, the values the fixed fields mark as 0xFFFFFFFF.
fn zip64_values(extra: &[u8], want: usize) -> Result<Vec<u64>, ZipProblem> {
    let mut rest = extra;
    while rest.len() >= 4 {
        let (id, len) = (u16_at(rest, 0), u16_at(rest, 2) as usize);
        let body =
            rest.get(4..4 + len).ok_or_else(|| damaged("an extra field runs past its entry"))?;
        if id == 0x0001 {
            if body.len() < want * 8 {
                return Err(damaged("a ZIP64 extra field is too short"));
            }
            return Ok((0..want).map(|i| u64_at(body, i * 8)).collect());
        }
        rest = &rest[4 + len..];
    }
    Err(damaged("an entry needs a ZIP64 extra field and has none"))
}

/// Every entry of the central directory, in its order; an error for a second entry of a name,
/// an encrypted or compressed entry, or a directory that does not add up.
pub fn entries(file: &mut File) -> Result<Vec<ZipEntry>, ZipProblem> {
    let file_size = file.metadata()?.len();
    let dir = find_directory(file, file_size)?;
    if dir.offset.checked_add(dir.size).is_none_or(|end| end > file_size)
        || dir.entries > dir.size / CENTRAL_LEN as u64
    {
        return Err(damaged("the central directory does not fit the file"));
    }
    if dir.size > MAX_DIRECTORY_BYTES {
        return Err(damaged(format!(
            "a central directory of {} bytes, more than a bundle volume needs",
            dir.size
        )));
    }
    let bytes = read_at(file, dir.offset, dir.size as usize)?;
    let mut out = Vec::with_capacity(dir.entries as usize);
    let mut names = HashSet::with_capacity(dir.entries as usize);
    let mut at = 0usize;
    for _ in 0..dir.entries {
        let fixed = bytes
            .get(at..at + CENTRAL_LEN)
            .ok_or_else(|| damaged("the central directory ends early"))?;
        if u32_at(fixed, 0) != CENTRAL {
            return Err(damaged("a central directory entry has no signature"));
        }
        let (name_len, extra_len, comment_len) =
            (u16_at(fixed, 28) as usize, u16_at(fixed, 30) as usize, u16_at(fixed, 32) as usize);
        let variable = bytes
            .get(at + CENTRAL_LEN..at + CENTRAL_LEN + name_len + extra_len)
            .ok_or_else(|| damaged("an entry name runs past the directory"))?;
        let (name, extra) = variable.split_at(name_len);
        if u16_at(fixed, 8) & 1 != 0 || u16_at(fixed, 10) != 0 {
            return Err(damaged(format!(
                "entry {:?} is encrypted or compressed; bundles hold stored entries",
                String::from_utf8_lossy(name)
            )));
        }
        let mut fields =
            [u32_at(fixed, 24) as u64, u32_at(fixed, 20) as u64, u32_at(fixed, 42) as u64];
        let deferred = fields.iter().filter(|v| **v == u32::MAX as u64).count();
        if deferred > 0 {
            let mut values = zip64_values(extra, deferred)?.into_iter();
            for f in fields.iter_mut().filter(|v| **v == u32::MAX as u64) {
                *f = values.next().expect("as many as deferred");
            }
        }
        let [size, compressed, local_header] = fields;
        if size != compressed {
            return Err(damaged(format!(
                "entry {:?} says it is stored but changes size",
                String::from_utf8_lossy(name)
            )));
        }
        if !names.insert(name.to_vec()) {
            return Err(ZipProblem::Duplicate(name.to_vec()));
        }
        let unix_mode = (u16_at(fixed, 4) >> 8 == 3).then(|| u32_at(fixed, 38) >> 16);
        out.push(ZipEntry {
            name: name.to_vec(),
            size,
            unix_mode,
            local_header,
            directory: dir.offset,
        });
        at += CENTRAL_LEN + name_len + extra_len + comment_len;
    }
    Ok(out)
}

/// The bytes of `entry`, after its local header (whose name must be the directory's), within
/// what lies before the central directory.
pub fn open_entry<'a>(
    file: &'a mut BufReader<File>,
    entry: &ZipEntry,
) -> Result<io::Take<&'a mut BufReader<File>>, ZipProblem> {
    let shown = || String::from_utf8_lossy(&entry.name[..entry.name.len().min(200)]).into_owned();
    let data_end = entry
        .local_header
        .checked_add(LOCAL_LEN + entry.name.len() as u64)
        .and_then(|s| s.checked_add(entry.size));
    if data_end.is_none_or(|end| end > entry.directory) {
        return Err(damaged(format!("entry {:?} runs into the central directory", shown())));
    }
    file.seek(SeekFrom::Start(entry.local_header))?;
    let mut fixed = [0u8; LOCAL_LEN as usize];
    file.read_exact(&mut fixed)?;
    if u32_at(&fixed, 0) != LOCAL {
        return Err(damaged(format!(
            "entry {:?} has no local header where the directory says",
            String::from_utf8_lossy(&entry.name)
        )));
    }
    let (name_len, extra_len) = (u16_at(&fixed, 26) as usize, u16_at(&fixed, 28) as u64);
    let mut name = vec![0u8; name_len];
    file.read_exact(&mut name)?;
    if name != entry.name {
        return Err(damaged(format!(
            "the local header of {:?} names {:?}",
            String::from_utf8_lossy(&entry.name),
            String::from_utf8_lossy(&name)
        )));
    }
    let data_start = entry.local_header + LOCAL_LEN + name_len as u64 + extra_len;
    if data_start + entry.size > entry.directory {
        return Err(damaged(format!("entry {:?} runs into the central directory", shown())));
    }
    file.seek(SeekFrom::Current(extra_len as i64))?;
    Ok(Read::take(file, entry.size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(
                *name,
                zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Stored),
            )
            .unwrap();
            w.write_all(data).unwrap();
        }
        file.write_all(&w.finish().unwrap().into_inner()).unwrap();
        file
    }

    #[test]
    fn reads_what_a_zip_writer_wrote() {
        let z = zip_of(&[("a/one.bin", b"first"), ("b/two.bin", b"second entry")]);
        let mut file = File::open(z.path()).unwrap();
        let list = entries(&mut file).unwrap();
        assert_eq!(
            list.iter().map(|e| (e.name.as_slice(), e.size)).collect::<Vec<_>>(),
            vec![(&b"a/one.bin"[..], 5), (&b"b/two.bin"[..], 12)]
        );
        let mut reader = BufReader::new(file);
        let mut data = Vec::new();
        open_entry(&mut reader, &list[1]).unwrap().read_to_end(&mut data).unwrap();
        assert_eq!(data, b"second entry");
    }

    #[test]
    fn garbage_and_cut_files_are_damaged_not_panics() {
        let z = zip_of(&[("a", b"x")]);
        let bytes = std::fs::read(z.path()).unwrap();
        for cut in 0..bytes.len() {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(&bytes[..cut]).unwrap();
            assert!(
                matches!(entries(&mut File::open(f.path()).unwrap()), Err(ZipProblem::Damaged(_))),
                "cut at {cut}"
            );
        }
    }
}
