//! `XmlUpdateBlobCompressed`: a Microsoft Cabinet (LZX, MSZIP or stored) holding one file,
//! `blob`, whose bytes are the update document in UTF-16LE (WSUS-PROTOCOL.md §4.8).

use super::downstream::MAX_DOCUMENT_BYTES;
use std::io::{Cursor, Read};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the compressed blob is not a readable cabinet: {0}")]
    Cabinet(String),
    #[error("the cabinet holds no file")]
    Empty,
    #[error("the document in the cabinet is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("the document in the cabinet is not UTF-16LE text")]
    NotUtf16,
}

/// The update document inside a compressed blob.
pub fn blob_document(cab: &[u8]) -> Result<String, BlobError> {
    let mut cabinet =
        cab::Cabinet::new(Cursor::new(cab)).map_err(|e| BlobError::Cabinet(e.to_string()))?;
    // The member is `blob`; any single member is taken (the name carries no meaning).
    let name = cabinet
        .folder_entries()
        .flat_map(|f| f.file_entries())
        .map(|f| f.name().to_string())
        .find(|n| n.eq_ignore_ascii_case("blob"))
        .or_else(|| {
            cabinet
                .folder_entries()
                .flat_map(|f| f.file_entries())
                .map(|f| f.name().to_string())
                .next()
        })
        .ok_or(BlobError::Empty)?;
    let reader = cabinet.read_file(&name).map_err(|e| BlobError::Cabinet(e.to_string()))?;
    let mut bytes = Vec::new();
    // A decompression bomb stops at the limit.
    reader
        .take(MAX_DOCUMENT_BYTES as u64 * 2 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| BlobError::Cabinet(e.to_string()))?;
    if bytes.len() > MAX_DOCUMENT_BYTES * 2 {
        return Err(BlobError::TooLarge);
    }
    utf16le(&bytes)
}

fn utf16le(bytes: &[u8]) -> Result<String, BlobError> {
    if bytes.len() % 2 != 0 {
        return Err(BlobError::NotUtf16);
    }
    let units = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    let text: String =
        char::decode_utf16(units).collect::<Result<_, _>>().map_err(|_| BlobError::NotUtf16)?;
    Ok(text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text))
}

/// A cabinet holding `document` as `blob` in UTF-16LE, MSZIP-compressed (what a downstream
/// decodes; used by tests and by upstreams that choose to compress).
pub fn compressed_blob(document: &str) -> Vec<u8> {
    let mut utf16 = Vec::with_capacity(document.len() * 2);
    for unit in document.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let mut builder = cab::CabinetBuilder::new();
    builder.add_folder(cab::CompressionType::MsZip).add_file("blob");
    let mut writer = builder.build(Cursor::new(Vec::new())).expect("writing a cabinet into memory");
    while let Some(mut file) = writer.next_file().expect("writing a cabinet into memory") {
        std::io::Write::write_all(&mut file, &utf16).expect("writing a cabinet into memory");
    }
    writer.finish().expect("writing a cabinet into memory").into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_through_a_cabinet() {
        let doc = "<upd:Update xmlns:upd=\"x\">é 漢字 𝄞</upd:Update>";
        assert_eq!(blob_document(&compressed_blob(doc)).unwrap(), doc);
        assert!(matches!(blob_document(b"MSCF garbage"), Err(BlobError::Cabinet(_))));
        assert!(matches!(utf16le(&[0x00, 0xd8]), Err(BlobError::NotUtf16)));
    }
}
