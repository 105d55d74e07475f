//! "xpress" HTTP compression (MS-WUSP §2.1.1): the answer is cut into blocks of at most 65,535
//! bytes, each sent as `u32le original size, u32le compressed size` and then the block in MS-XCA
//! Plain LZ77 (what MS-WUSP calls LZ77 + DIRECT2), or the block itself when compression would not
//! make it smaller (then the two sizes are equal). Every block stands alone: its matches never
//! reach into an earlier block.
//!
//! Written from the format's description in MS-XCA §2.3–2.4 (no code copied): a greedy matcher
//! over a hash chain of four-byte prefixes in the 8,192-byte window the format can address.
//!
//! Invariant: the decoder never panics and never allocates past the sizes the stream declares
//! (at most 65,535 bytes a block) nor past the caller's limit; corrupt input is an `Err`.

use thiserror::Error;

/// The largest block, original or compressed (MS-WUSP §2.1.1: "MUST NOT be greater than 65535").
pub const MAX_BLOCK: usize = 65_535;
/// The farthest back a match can reach: 13 bits of offset, plus one.
const WINDOW: usize = 8192;
const HASH_BITS: u32 = 14;
/// Candidates tried for each position: a few keep the speed and find most of XML's repeats.
const CHAIN_DEPTH: usize = 4;
/// A match this long is good enough: stop looking for a longer one.
const GOOD_ENOUGH: usize = 64;
const NONE: u16 = u16::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum XpressError {
    #[error("xpress: a block header is cut short")]
    Header,
    #[error("xpress: a block declares {0} bytes (1 to 65535 allowed)")]
    BlockSize(u32),
    #[error("xpress: the stream decodes to more than {0} bytes")]
    TooLarge(usize),
    #[error("xpress: compressed data ends before the block's declared size")]
    Truncated,
    #[error("xpress: a match reaches before the start of its block")]
    Offset,
    #[error("xpress: a match runs past the block's declared size")]
    Overrun,
    #[error("xpress: a match length is malformed")]
    Length,
}

/// Whether a request's `Accept-Encoding` values accept `xpress`: only when a value names it
/// (case-insensitively) with a weight above zero, and none gives it weight zero. `*` does not
/// count: a client that has not named xpress may not know it.
pub fn accepts_xpress<'a>(values: impl IntoIterator<Item = &'a str>) -> bool {
    let mut named = false;
    for value in values {
        for element in value.split(',') {
            let mut parts = element.split(';');
            let coding = parts.next().unwrap_or("").trim();
            if !coding.eq_ignore_ascii_case("xpress") {
                continue;
            }
            let mut weight_ok = true;
            for param in parts {
                let Some((name, v)) = param.split_once('=') else {
                    weight_ok = false;
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("q") {
                    weight_ok &= weight_above_zero(v.trim());
                }
            }
            if !weight_ok {
                return false;
            }
            named = true;
        }
    }
    named
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` (RFC 9110 §12.4.2), and above
/// zero. Anything malformed is not a yes.
fn weight_above_zero(q: &str) -> bool {
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    match int {
        "1" => frac.bytes().all(|b| b == b'0'),
        "0" => frac.bytes().any(|b| b != b'0'),
        _ => false,
    }
}

/// How far a block's compressed output may run past the block's size before the encoder gives
/// up on it (a flag word and the longest match token).
const GIVE_UP_SLACK: usize = 32;

/// The most bytes `frame` can produce for `len` bytes of input: every block stored raw.
pub fn framed_bound(len: usize) -> usize {
    len + 8 * len.div_ceil(MAX_BLOCK)
}

/// The memory `frame` takes for `len` bytes of input, at most (what a caller counts).
pub fn frame_capacity(len: usize) -> usize {
    framed_bound(len) + GIVE_UP_SLACK
}

/// A Plain LZ77 compressor; its tables (48 KiB) are reused from block to block.
pub struct Encoder {
    /// The newest position of each hashed four-byte prefix in the block.
    head: Vec<u16>,
    /// For each position (modulo the window), the previous one with the same hash.
    prev: Vec<u16>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

fn read4(src: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([src[at], src[at + 1], src[at + 2], src[at + 3]])
}

fn hash(v: u32) -> usize {
    (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

/// How many bytes from `b` on repeat those from `a` on (`a < b`), to the end of `src`.
fn match_len(src: &[u8], a: usize, b: usize) -> usize {
    let max = src.len() - b;
    let mut n = 0;
    while n + 8 <= max {
        let x = u64::from_le_bytes(src[a + n..a + n + 8].try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(src[b + n..b + n + 8].try_into().expect("8 bytes"));
        let diff = x ^ y;
        if diff != 0 {
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < max && src[a + n] == src[b + n] {
        n += 1;
    }
    n
}

/// The output of one block: literal and match symbols, 32 flags to a little-endian word that
/// precedes them, and the half-byte length slots shared by two matches.
struct Sink<'o> {
    out: &'o mut Vec<u8>,
    flag_at: usize,
    flags: u32,
    count: u32,
    half_byte: Option<usize>,
}

impl Sink<'_> {
    fn new(out: &mut Vec<u8>) -> Sink<'_> {
        let flag_at = out.len();
        out.extend_from_slice(&[0; 4]);
        Sink { out, flag_at, flags: 0, count: 0, half_byte: None }
    }

    fn flag(&mut self, bit: u32) {
        self.flags = (self.flags << 1) | bit;
        self.count += 1;
        if self.count == 32 {
            self.out[self.flag_at..self.flag_at + 4].copy_from_slice(&self.flags.to_le_bytes());
            self.flag_at = self.out.len();
            self.out.extend_from_slice(&[0; 4]);
            self.flags = 0;
            self.count = 0;
        }
    }

    fn literal(&mut self, b: u8) {
        self.out.push(b);
        self.flag(0);
    }

    /// A match of `len` (3 to 65,535) bytes `offset` (1 to 8,192) back.
    fn copy(&mut self, offset: usize, len: usize) {
        debug_assert!((1..=WINDOW).contains(&offset) && (3..=MAX_BLOCK).contains(&len));
        let len = len - 3;
        let high = ((offset - 1) << 3) as u16;
        if len < 7 {
            self.out.extend_from_slice(&(high | len as u16).to_le_bytes());
        } else {
            self.out.extend_from_slice(&(high | 7).to_le_bytes());
            let rest = len - 7;
            let nibble = rest.min(15) as u8;
            match self.half_byte.take() {
                Some(at) => self.out[at] |= nibble << 4,
                None => {
                    self.half_byte = Some(self.out.len());
                    self.out.push(nibble);
                }
            }
            if rest >= 15 {
                let rest = rest - 15;
                if rest < 255 {
                    self.out.push(rest as u8);
                } else {
                    // The whole length less 3; blocks are short enough that 16 bits always hold it.
                    self.out.push(255);
                    self.out.extend_from_slice(&(len as u16).to_le_bytes());
                }
            }
        }
        self.flag(1);
    }

    /// The last flag word: the unused flags are ones, which the decoder reads as the end.
    fn finish(self) {
        let last = if self.count == 0 {
            u32::MAX
        } else {
            let unused = 32 - self.count;
            (self.flags << unused) | ((1u32 << unused) - 1)
        };
        self.out[self.flag_at..self.flag_at + 4].copy_from_slice(&last.to_le_bytes());
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder { head: vec![NONE; 1 << HASH_BITS], prev: vec![NONE; WINDOW] }
    }

    fn insert(&mut self, src: &[u8], at: usize) -> u16 {
        let h = hash(read4(src, at));
        let before = self.head[h];
        self.prev[at & (WINDOW - 1)] = before;
        self.head[h] = at as u16;
        before
    }

    /// Appends `src` (at most `MAX_BLOCK` bytes) compressed with Plain LZ77 to `out`, as MS-XCA
    /// §2.3 lays it out, however long that is.
    pub fn compress_block(&mut self, src: &[u8], out: &mut Vec<u8>) {
        self.lz77(src, out, usize::MAX);
    }

    /// `compress_block`, giving up (`false`, `out` partly written) as soon as the output reaches
    /// `give_up` bytes.
    fn lz77(&mut self, src: &[u8], out: &mut Vec<u8>, give_up: usize) -> bool {
        assert!(src.len() <= MAX_BLOCK, "a block is at most {MAX_BLOCK} bytes");
        self.head.fill(NONE);
        let start = out.len();
        let n = src.len();
        let mut sink = Sink::new(out);
        let mut p = 0;
        while p < n {
            let (mut best_len, mut best_off) = (0, 0);
            if p + 4 <= n {
                let mut candidate = self.insert(src, p);
                let mut depth = CHAIN_DEPTH;
                while candidate != NONE && depth > 0 {
                    let c = candidate as usize;
                    if c >= p || p - c > WINDOW {
                        break;
                    }
                    // A longer match must also differ nowhere up to the best one's length.
                    if p + best_len < n && src[c + best_len] == src[p + best_len] {
                        let len = match_len(src, c, p);
                        if len > best_len {
                            (best_len, best_off) = (len, p - c);
                            if len >= GOOD_ENOUGH || p + len == n {
                                break;
                            }
                        }
                    }
                    candidate = self.prev[c & (WINDOW - 1)];
                    depth -= 1;
                }
            }
            if best_len >= 3 {
                sink.copy(best_off, best_len);
                let end = p + best_len;
                for q in p + 1..end.min(n.saturating_sub(3)) {
                    self.insert(src, q);
                }
                p = end;
            } else {
                sink.literal(src[p]);
                p += 1;
            }
            if sink.out.len() - start >= give_up {
                return false;
            }
        }
        sink.finish();
        out.len() - start < give_up
    }

    /// `pieces` (one answer, in order) as an xpress stream: blocks of at most `MAX_BLOCK` bytes.
    pub fn frame<'a>(&mut self, pieces: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let pieces: Vec<&[u8]> = pieces.into_iter().collect();
        // Room for the worst case up front: the stream never grows past it (the caller counts
        // `frame_capacity` in its memory budget), and never doubles on the way.
        let mut out = Vec::with_capacity(frame_capacity(pieces.iter().map(|p| p.len()).sum()));
        let mut staged: Vec<u8> = Vec::new();
        for piece in pieces {
            let mut rest = piece;
            while !rest.is_empty() {
                if staged.is_empty() && rest.len() >= MAX_BLOCK {
                    let (block, after) = rest.split_at(MAX_BLOCK);
                    self.emit(block, &mut out);
                    rest = after;
                    continue;
                }
                let take = rest.len().min(MAX_BLOCK - staged.len());
                staged.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if staged.len() == MAX_BLOCK {
                    self.emit(&staged, &mut out);
                    staged.clear();
                }
            }
        }
        if !staged.is_empty() {
            self.emit(&staged, &mut out);
        }
        if out.capacity() - out.len() > out.len() / 4 {
            out.shrink_to_fit();
        }
        out
    }

    fn emit(&mut self, block: &[u8], out: &mut Vec<u8>) {
        let header = out.len();
        out.extend_from_slice(&[0; 8]);
        let compressed = if self.lz77(block, out, block.len()) {
            out.len() - header - 8
        } else {
            out.truncate(header + 8);
            out.extend_from_slice(block);
            block.len()
        };
        out[header..header + 4].copy_from_slice(&(block.len() as u32).to_le_bytes());
        out[header + 4..header + 8].copy_from_slice(&(compressed as u32).to_le_bytes());
    }
}

/// `pieces` as an xpress stream of stored (uncompressed) blocks: for a few hundred bytes of
/// random-looking text (a cookie), where compressing gains nothing and costs the tables' reset.
pub fn frame_stored<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut input = Vec::new();
    for piece in pieces {
        input.extend_from_slice(piece);
    }
    let mut out = Vec::with_capacity(framed_bound(input.len()));
    for block in input.chunks(MAX_BLOCK) {
        let len = (block.len() as u32).to_le_bytes();
        out.extend_from_slice(&len);
        out.extend_from_slice(&len);
        out.extend_from_slice(block);
    }
    out
}

/// `input` as an xpress stream (`Encoder::frame` of one piece).
pub fn frame(input: &[u8]) -> Vec<u8> {
    Encoder::new().frame([input])
}

/// Decodes a Plain LZ77 block that must produce exactly `size` bytes, appended to `out`.
pub fn decompress_block(src: &[u8], size: usize, out: &mut Vec<u8>) -> Result<(), XpressError> {
    let start = out.len();
    let end = start + size;
    out.reserve(size);
    let mut at = 0;
    let byte = |at: &mut usize| -> Result<u8, XpressError> {
        let b = *src.get(*at).ok_or(XpressError::Truncated)?;
        *at += 1;
        Ok(b)
    };
    let (mut flags, mut count) = (0u32, 0u32);
    let mut half_byte: Option<usize> = None;
    while out.len() < end {
        if count == 0 {
            let word = src.get(at..at + 4).ok_or(XpressError::Truncated)?;
            flags = u32::from_le_bytes(word.try_into().expect("4 bytes"));
            at += 4;
            count = 32;
        }
        count -= 1;
        if flags & (1 << count) == 0 {
            out.push(byte(&mut at)?);
            continue;
        }
        // At the end of the input a set flag ends the stream: too early here.
        let md = u16::from_le_bytes([byte(&mut at)?, byte(&mut at)?]) as usize;
        let offset = (md >> 3) + 1;
        let mut len = md & 7;
        if len == 7 {
            len = match half_byte.take() {
                Some(shared) => (src[shared] >> 4) as usize,
                None => {
                    half_byte = Some(at);
                    (byte(&mut at)? & 0x0f) as usize
                }
            };
            if len == 15 {
                len = byte(&mut at)? as usize;
                if len == 255 {
                    len = u16::from_le_bytes([byte(&mut at)?, byte(&mut at)?]) as usize;
                    if len == 0 {
                        let word = src.get(at..at + 4).ok_or(XpressError::Truncated)?;
                        len = u32::from_le_bytes(word.try_into().expect("4 bytes")) as usize;
                        at += 4;
                    }
                    len = len.checked_sub(15 + 7).ok_or(XpressError::Length)?;
                }
                len = len.saturating_add(15);
            }
            len = len.saturating_add(7);
        }
        len = len.saturating_add(3);
        if offset > out.len() - start {
            return Err(XpressError::Offset);
        }
        if len > end - out.len() {
            return Err(XpressError::Overrun);
        }
        let from = out.len() - offset;
        if offset >= len {
            out.extend_from_within(from..from + len);
        } else {
            for i in from..from + len {
                let b = out[i];
                out.push(b);
            }
        }
    }
    Ok(())
}

/// Decodes an xpress stream of at most `limit` bytes (a larger one is an error before anything
/// past `limit` is allocated).
pub fn unframe(input: &[u8], limit: usize) -> Result<Vec<u8>, XpressError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let header = input.get(at..at + 8).ok_or(XpressError::Header)?;
        let original = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let compressed = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        at += 8;
        for size in [original, compressed] {
            if size == 0 || size as usize > MAX_BLOCK {
                return Err(XpressError::BlockSize(size));
            }
        }
        let (original, compressed) = (original as usize, compressed as usize);
        let payload = input.get(at..at + compressed).ok_or(XpressError::Truncated)?;
        at += compressed;
        if out.len() + original > limit {
            return Err(XpressError::TooLarge(limit));
        }
        if compressed == original {
            out.extend_from_slice(payload);
        } else {
            decompress_block(payload, original, &mut out)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plain(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Encoder::new().compress_block(src, &mut out);
        out
    }

    fn unplain(src: &[u8], size: usize) -> Result<Vec<u8>, XpressError> {
        let mut out = Vec::new();
        decompress_block(src, size, &mut out).map(|()| out)
    }

    #[test]
    fn stored_blocks_decode_to_their_input_and_follow_compressed_ones() {
        for len in [0usize, 1, 300, MAX_BLOCK, MAX_BLOCK + 1, 3 * MAX_BLOCK + 7] {
            let input: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let (a, b) = input.split_at(len / 3);
            let stored = frame_stored([a, b]);
            assert_eq!(stored.len(), len + 8 * len.div_ceil(MAX_BLOCK), "{len}");
            let mut joined = frame(&input);
            joined.extend_from_slice(&stored);
            assert_eq!(
                unframe(&joined, 2 * len).unwrap(),
                [&input[..], &input[..]].concat(),
                "{len}"
            );
        }
    }

    /// MS-XCA §3.1, the first Plain LZ77 example: no repeats, 26 literals and six unused flags.
    #[test]
    fn the_specifications_alphabet_example() {
        let input = b"abcdefghijklmnopqrstuvwxyz";
        let mut expected = vec![0x3f, 0, 0, 0];
        expected.extend_from_slice(input);
        assert_eq!(plain(input), expected);
        assert_eq!(unplain(&expected, 26).unwrap(), input);
    }

    /// MS-XCA §3.1, the second: "abc" 100 times is three literals and one match of 297 bytes
    /// three back, whose length takes the half byte, a byte and 16 bits.
    #[test]
    fn the_specifications_abc_example() {
        let input = b"abc".repeat(100);
        let expected =
            [0xff, 0xff, 0xff, 0x1f, 0x61, 0x62, 0x63, 0x17, 0x00, 0x0f, 0xff, 0x26, 0x01];
        assert_eq!(plain(&input), expected);
        assert_eq!(unplain(&expected, 300).unwrap(), input);
    }

    #[test]
    fn every_length_encoding_and_the_shared_half_byte_round_trip() {
        // Lengths on each side of each encoding's edge: 3 bits, half byte, byte, 16 bits.
        let mut input = Vec::new();
        for (i, len) in
            [3usize, 9, 10, 24, 25, 279, 280, 281, 9000, 4, 11, 26, 300].into_iter().enumerate()
        {
            input.extend(std::iter::repeat_n(b'a' + i as u8, 1));
            input.extend(std::iter::repeat_n(b'A' + i as u8, len + 1));
        }
        let packed = plain(&input);
        assert!(packed.len() < input.len() / 10, "{} of {}", packed.len(), input.len());
        assert_eq!(unplain(&packed, input.len()).unwrap(), input);
    }

    #[test]
    fn thirty_two_symbols_exactly_end_with_a_flag_word_of_ones() {
        let input: Vec<u8> = (0..32u8).collect();
        let packed = plain(&input);
        assert_eq!(&packed[..4], &[0, 0, 0, 0]);
        assert_eq!(&packed[36..], &[0xff; 4]);
        assert_eq!(unplain(&packed, 32).unwrap(), input);
    }

    #[test]
    fn framing_splits_at_65535_and_stores_what_does_not_compress_raw() {
        assert!(frame(b"").is_empty());
        let text =
            b"<UpdateInfo><ID>1</ID><Deployment><Action>Install</Action></Deployment></UpdateInfo>"
                .repeat(2000);
        let framed = frame(&text);
        assert_eq!(u32::from_le_bytes(framed[..4].try_into().unwrap()), 65_535);
        assert!(framed.len() < text.len() / 10);
        assert_eq!(unframe(&framed, text.len()).unwrap(), text);
        assert_eq!(unframe(&framed, text.len() - 1), Err(XpressError::TooLarge(text.len() - 1)));

        let noise = noise(1, 70_000);
        let framed = frame(&noise);
        assert_eq!(framed.len(), framed_bound(noise.len()));
        assert_eq!(&framed[..8], &[0xff, 0xff, 0, 0, 0xff, 0xff, 0, 0], "raw: both sizes equal");
        assert_eq!(&framed[8..8 + 65_535], &noise[..65_535]);
        assert_eq!(unframe(&framed, usize::MAX).unwrap(), noise);
    }

    #[test]
    fn pieces_frame_as_their_concatenation() {
        let a = b"<a>xyz</a>".repeat(5000);
        let b = noise(2, 100_000);
        let c = b"tail".to_vec();
        let whole = [a.clone(), b.clone(), c.clone()].concat();
        assert_eq!(Encoder::new().frame([&a[..], &b[..], &c[..]]), frame(&whole));
    }

    fn noise(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn corrupt_streams_are_errors() {
        let good = frame(&b"abcdefgh".repeat(100));
        for cut in 0..good.len() {
            let r = unframe(&good[..cut], 1 << 20);
            assert!(cut == 0 || r.is_err(), "cut at {cut}: {r:?}");
        }
        let block = |orig: u32, comp: u32, payload: &[u8]| {
            let mut v = orig.to_le_bytes().to_vec();
            v.extend_from_slice(&comp.to_le_bytes());
            v.extend_from_slice(payload);
            v
        };
        assert_eq!(unframe(&block(0, 0, &[]), 100), Err(XpressError::BlockSize(0)));
        assert_eq!(
            unframe(&block(65_536, 4, &[0; 4]), 1 << 20),
            Err(XpressError::BlockSize(65_536))
        );
        assert_eq!(
            unframe(&block(u32::MAX, 4, &[0; 4]), usize::MAX),
            Err(XpressError::BlockSize(u32::MAX))
        );
        assert_eq!(
            unframe(&block(10, 70_000, &[0; 4]), 1 << 20),
            Err(XpressError::BlockSize(70_000))
        );
        // A match before anything was written.
        assert_eq!(
            unframe(&block(10, 6, &[0, 0, 0, 0x80, 0x00, 0x00]), 100),
            Err(XpressError::Offset)
        );
        // A literal, then a match past the declared size.
        assert_eq!(
            unframe(&block(5, 7, &[0, 0, 0, 0x40, b'a', 0x06, 0x00]), 100),
            Err(XpressError::Overrun)
        );
        // The 16-bit length below its minimum.
        assert_eq!(
            unframe(&block(200, 10, &[0, 0, 0, 0x40, b'a', 0x07, 0x00, 0x0f, 0xff, 0x01]), 1000),
            Err(XpressError::Truncated)
        );
        assert_eq!(
            unframe(
                &block(200, 11, &[0, 0, 0, 0x40, b'a', 0x07, 0x00, 0x0f, 0xff, 0x01, 0x00]),
                1000
            ),
            Err(XpressError::Length)
        );
        // The 32-bit length far past the block.
        assert_eq!(
            unframe(
                &block(
                    200,
                    15,
                    &[0, 0, 0, 0x40, b'a', 0x07, 0x00, 0x0f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff]
                ),
                1000
            ),
            Err(XpressError::Overrun)
        );
        // The end marker before the declared size.
        assert_eq!(unplain(&[0xff, 0xff, 0xff, 0x3f, b'a', b'b'], 3), Err(XpressError::Truncated));
    }

    #[test]
    fn accept_encoding_is_read_as_http_says() {
        let yes = [
            "xpress",
            "XPRESS",
            "gzip, xpress",
            "xpress, gzip",
            " xpress ;q=0.5",
            "xpress;q=1",
            "xpress;q=1.000",
            "xpress;q=0.001",
        ];
        for v in yes {
            assert!(accepts_xpress([v]), "{v:?}");
        }
        let no = [
            "",
            "identity",
            "gzip, deflate",
            "*",
            "*;q=0",
            "xpress;q=0",
            "xpress;q=0.000",
            "xpress; q=0",
            "xpress;q=",
            "xpress;q=2",
            "xpress;q=0.0001",
            "xpress;q=abc",
            "xpress;garbage",
            "xpressx",
            "x-xpress",
            "\u{0}xpress\u{7f}",
            ",,;;==",
            "xpress, xpress;q=0",
        ];
        for v in no {
            assert!(!accepts_xpress([v]), "{v:?}");
        }
        assert!(accepts_xpress(["gzip", "xpress"]), "over several header lines");
        assert!(!accepts_xpress(["xpress", "xpress;q=0"]));
    }

    proptest! {
        #[test]
        fn random_bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..200_000)) {
            let framed = frame(&data);
            prop_assert!(framed.len() <= framed_bound(data.len()));
            prop_assert!(framed.capacity() <= frame_capacity(data.len()), "the stream never outgrew what was counted");
            prop_assert_eq!(unframe(&framed, data.len()).unwrap(), data);
        }

        #[test]
        fn repetitive_bytes_round_trip(
            alphabet in 1u8..6,
            runs in proptest::collection::vec((0u8..6, 1usize..400), 1..800),
            period in 1usize..9000,
        ) {
            let mut data: Vec<u8> = Vec::new();
            for (i, (b, n)) in runs.into_iter().enumerate() {
                if i % 3 == 0 && data.len() > period {
                    let from = data.len() - period;
                    data.extend_from_within(from..from + n.min(period));
                } else {
                    data.extend(std::iter::repeat_n(b % alphabet, n));
                }
            }
            let framed = frame(&data);
            prop_assert_eq!(unframe(&framed, data.len()).unwrap(), data);
        }

        #[test]
        fn exact_blocks_round_trip(seed in any::<u64>(), blocks in 1usize..4, repetitive in any::<bool>()) {
            let data = if repetitive {
                noise(seed, 300).repeat(MAX_BLOCK * blocks / 300 + 1)[..MAX_BLOCK * blocks].to_vec()
            } else {
                noise(seed, MAX_BLOCK * blocks)
            };
            let framed = frame(&data);
            let mut at = 0;
            let mut count = 0;
            while at < framed.len() {
                prop_assert_eq!(u32::from_le_bytes(framed[at..at + 4].try_into().unwrap()) as usize, MAX_BLOCK);
                at += 8 + u32::from_le_bytes(framed[at + 4..at + 8].try_into().unwrap()) as usize;
                count += 1;
            }
            prop_assert_eq!(count, blocks);
            prop_assert_eq!(unframe(&framed, data.len()).unwrap(), data);
        }

        #[test]
        fn any_input_decodes_or_fails_without_panicking(data in proptest::collection::vec(any::<u8>(), 0..2000), size in 0usize..70_000) {
            let _ = unframe(&data, 1 << 20);
            let mut out = Vec::new();
            let _ = decompress_block(&data, size.min(MAX_BLOCK), &mut out);
            prop_assert!(out.len() <= size.min(MAX_BLOCK));
        }

        #[test]
        fn mutated_streams_decode_or_fail_without_panicking(seed in any::<u64>(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let text = [noise(seed, 50), b"<a>b</a>".repeat(500), noise(seed + 1, 50)].concat();
            let mut framed = frame(&text);
            for (at, x) in flips {
                let i = at % framed.len();
                framed[i] ^= x;
            }
            if let Ok(out) = unframe(&framed, 1 << 20) {
                prop_assert!(out.len() <= 1 << 20);
            }
        }
    }
}
