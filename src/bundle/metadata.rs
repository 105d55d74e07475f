//! The metadata member format: update documents, each stored as
//! `u32 LE compressed length || u32 LE document length || zstd frame`.
//!
//! Documents stay individually compressed (exactly as the store keeps them), so export copies
//! them without recompressing and import decompresses them on all cores.

use std::io::{self, Read, Write};

pub const RECORD_HEADER: usize = 8;

pub fn write_record(out: &mut impl Write, compressed: &[u8], size: u64) -> io::Result<u64> {
    out.write_all(&(compressed.len() as u32).to_le_bytes())?;
    out.write_all(&(size as u32).to_le_bytes())?;
    out.write_all(compressed)?;
    Ok((RECORD_HEADER + compressed.len()) as u64)
}

/// A record's header: `(compressed length, declared document size)`, refused when either is
/// beyond the document limit (before anything is allocated for it).
pub fn record_header(header: &[u8; RECORD_HEADER]) -> io::Result<(usize, u64)> {
    let clen = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let size = u32::from_le_bytes(header[4..].try_into().expect("4 bytes")) as u64;
    if clen > crate::catalog::MAX_DOCUMENT_BYTES || size > crate::catalog::MAX_DOCUMENT_BYTES as u64
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a metadata record declares {clen} compressed / {size} document bytes, above the limit"
            ),
        ));
    }
    Ok((clen, size))
}

/// Reads the next record: `(compressed frame, declared document size)`, or `None` at the end.
pub fn read_record(input: &mut impl Read) -> io::Result<Option<(Vec<u8>, u64)>> {
    let mut header = [0u8; RECORD_HEADER];
    match input.read_exact(&mut header[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    input.read_exact(&mut header[1..])?;
    let (clen, size) = record_header(&header)?;
    // As much as arrives, not as much as the header says: memory follows the data.
    let mut frame = Vec::new();
    input.take(clen as u64).read_to_end(&mut frame)?;
    if frame.len() != clen {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("a metadata record of {clen} bytes ends after {}", frame.len()),
        ));
    }
    Ok(Some((frame, size)))
}
