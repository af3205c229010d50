//! The send stream's wire format (docs/design.md §8.3): header, record heads, the
//! per-record seal (checksum or MAC chain), the END record's payload, the codec of DATA
//! payloads and the refusal of bytes that break the format (`ERR_STREAM_CORRUPT`). The
//! sender (`send`) and the receiver (`receive`) both build on this module and on
//! nothing of each other.
//!
//! Why one module: the format is a contract between two builds on two hosts, so its
//! every byte is written and read in one place. Version 2 (written) adds to version 1
//! (still read): the volume's kind, compressed DATA records (zstd), keyed streams
//! (a BLAKE3 keyed-hash chain over the header and every record, so a record can be
//! neither altered, reordered, dropped nor spliced in from another stream without the
//! key) and a resume offset. Unkeyed streams keep the XXH3-128 record checksums of
//! version 1: they catch accidents, not an adversary.

use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use crate::diff::BLOCK;
use crate::error::{codes, Error, Result};

/// First bytes of every stream.
pub const MAGIC: [u8; 8] = *b"RFPSEND\n";
/// The format version this code writes.
pub const VERSION: u32 = 2;
/// The oldest format version this code reads.
pub const OLDEST_VERSION: u32 = 1;
/// Bytes to read before a header can be decoded: the longest header (a keyed v2 one).
/// Every valid stream is longer (a header and at least an END record).
pub const MAX_HEADER_LEN: usize = V2_FIELDS + MAC_LEN;
/// Bytes of an XXH3-128 checksum.
pub const SUM_LEN: usize = 16;
/// Bytes of a MAC (BLAKE3 keyed hash, untruncated).
pub const MAC_LEN: usize = 32;
/// Bytes of a stream key.
pub const KEY_LEN: usize = 32;
/// Largest DATA payload, compressed or not: bounds what a receiver buffers.
pub const MAX_DATA: u64 = 1 << 20;
/// zstd level of compressed streams (the level `zstd` uses by default).
pub const ZSTD_LEVEL: i32 = 3;
/// Payloads from this size are MACed with BLAKE3's multithreaded mode (below it the
/// hand-off to the worker threads costs more than it saves; blake3 documents 128 KiB).
const PARALLEL_MAC_MIN: usize = 128 << 10;

/// Bytes of a v1 header (its checksum included).
const V1_LEN: usize = 104;
/// Bytes of a v2 header before its seal.
const V2_FIELDS: usize = 112;
const V1_HEAD: usize = 24;
const V2_HEAD: usize = 32;

const FLAG_INCREMENTAL: u32 = 1;
const FLAG_COMPRESSED: u32 = 2;
const FLAG_KEYED: u32 = 4;
const FLAG_RESUMED: u32 = 8;
const V2_FLAGS: u32 = FLAG_INCREMENTAL | FLAG_COMPRESSED | FLAG_KEYED | FLAG_RESUMED;

/// Record kinds.
pub const KIND_DATA: u8 = 1;
pub const KIND_HOLE: u8 = 2;
pub const KIND_END: u8 = 3;
/// DATA whose payload is one zstd frame of exactly `length` bytes (v2, compressed streams).
pub const KIND_ZDATA: u8 = 4;

/// An identity of a committed state: 16 random bytes.
pub type StateId = [u8; 16];
/// A stream key (docs/design.md §8.8).
pub type StreamKey = [u8; KEY_LEN];

/// The volume a stream comes from, so a receiver can create it (docs/design.md §8.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VolumeKind {
    pub save_on_stop: bool,
    pub snap_on_start: bool,
    pub rw: bool,
}

impl VolumeKind {
    fn encode(self) -> u8 {
        u8::from(self.save_on_stop) | u8::from(self.snap_on_start) << 1 | u8::from(self.rw) << 2
    }

    fn decode(b: u8) -> Option<VolumeKind> {
        (b & !7 == 0).then_some(VolumeKind {
            save_on_stop: b & 1 != 0,
            snap_on_start: b & 2 != 0,
            rw: b & 4 != 0,
        })
    }
}

/// The state a stream was computed against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseRef {
    pub id: StateId,
    pub size: u64,
    /// The base's image hash (`imagehash`).
    pub hash: u128,
}

/// The stream header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The format version (what `encode` writes is always `VERSION`).
    pub version: u32,
    /// Size of the target image in bytes (the volume's size).
    pub size: u64,
    pub target_id: StateId,
    pub base: Option<BaseRef>,
    /// The volume's kind (v1: unknown, all false).
    pub volume: VolumeKind,
    /// DATA records may be compressed (KIND_ZDATA).
    pub compressed: bool,
    /// Records are sealed by a MAC chain under a key, not by checksums.
    pub keyed: bool,
    /// A resumed stream: its records start at this image offset; 0 otherwise.
    pub resume_from: Option<u64>,
}

/// `ERR_STREAM_CORRUPT`: what a receiver says of bytes that break the format.
pub(crate) fn corrupt(detail: impl Into<String>) -> Error {
    Error::lib(codes::ERR_STREAM_CORRUPT, "receive", detail)
}

fn auth(detail: impl Into<String>) -> Error {
    Error::lib(codes::ERR_STREAM_AUTH, "receive", detail)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn u128_at(b: &[u8], at: usize) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    u128::from_le_bytes(a)
}

fn id_at(b: &[u8], at: usize) -> StateId {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    a
}

/// The seal of a keyed stream's header: the MAC of its fields, which also starts the chain.
fn header_mac(key: &StreamKey, fields: &[u8]) -> blake3::Hash {
    blake3::keyed_hash(key, fields)
}

impl Header {
    /// A v2 header of a stream that is neither compressed, keyed nor resumed.
    pub fn new(size: u64, target_id: StateId, base: Option<BaseRef>) -> Header {
        Header {
            version: VERSION,
            size,
            target_id,
            base,
            volume: VolumeKind::default(),
            compressed: false,
            keyed: false,
            resume_from: None,
        }
    }

    /// Bytes of this header on the wire.
    pub fn wire_len(&self) -> usize {
        match (self.version, self.keyed) {
            (1, _) => V1_LEN,
            (_, false) => V2_FIELDS + SUM_LEN,
            (_, true) => V2_FIELDS + MAC_LEN,
        }
    }

    /// Bytes of a record head.
    pub fn head_len(&self) -> usize {
        if self.version == 1 {
            V1_HEAD
        } else {
            V2_HEAD
        }
    }

    /// Bytes of a record's seal.
    pub fn seal_len(&self) -> usize {
        if self.keyed {
            MAC_LEN
        } else {
            SUM_LEN
        }
    }

    fn flags(&self) -> u32 {
        let mut f = 0;
        if self.base.is_some() {
            f |= FLAG_INCREMENTAL;
        }
        if self.compressed {
            f |= FLAG_COMPRESSED;
        }
        if self.keyed {
            f |= FLAG_KEYED;
        }
        if self.resume_from.is_some() {
            f |= FLAG_RESUMED;
        }
        f
    }

    /// The v2 header (this code never writes v1) and the seal that starts its records.
    /// `key` must be given exactly when `self.keyed`.
    pub fn encode(&self, key: Option<&StreamKey>) -> Result<(Vec<u8>, Seal)> {
        let mut h = vec![0u8; V2_FIELDS];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&self.flags().to_le_bytes());
        h[16..24].copy_from_slice(&self.size.to_le_bytes());
        h[32..36].copy_from_slice(&(BLOCK as u32).to_le_bytes());
        h[36] = self.volume.encode();
        h[40..56].copy_from_slice(&self.target_id);
        if let Some(b) = &self.base {
            h[24..32].copy_from_slice(&b.size.to_le_bytes());
            h[56..72].copy_from_slice(&b.id);
            h[72..88].copy_from_slice(&b.hash.to_le_bytes());
        }
        h[88..96].copy_from_slice(&self.resume_from.unwrap_or(0).to_le_bytes());
        let seal = match (self.keyed, key) {
            (true, Some(k)) => {
                let mac = header_mac(k, &h);
                h.extend_from_slice(mac.as_bytes());
                Seal::Keyed {
                    key: *k,
                    chain: *mac.as_bytes(),
                }
            }
            (false, None) => {
                h.extend_from_slice(&xxh3_128(&h).to_le_bytes());
                Seal::Sum { seed: self.seed() }
            }
            _ => {
                return Err(Error::lib(
                    codes::ERR_INVALID_ARG_VALUE,
                    "send",
                    "a keyed header needs a key, and a key needs a keyed header",
                ))
            }
        };
        Ok((h, seal))
    }

    /// Parse and check a header (v1 or v2) and give the seal its records are checked
    /// with: `ERR_STREAM_CORRUPT` for anything but our header, `ERR_STREAM_VERSION`
    /// for a version this code does not read, `ERR_STREAM_AUTH` when the stream is
    /// keyed and `key` is not its key (or absent), or `key` is given and the stream is
    /// not keyed.
    pub fn decode(h: &[u8], key: Option<&StreamKey>) -> Result<(Header, Seal)> {
        if h.len() < 12 {
            return Err(short(h.len(), 12));
        }
        if h[0..8] != MAGIC {
            return Err(corrupt("not a reflink-pool send stream (bad magic)"));
        }
        let version = u32_at(h, 8);
        if !(OLDEST_VERSION..=VERSION).contains(&version) {
            return Err(Error::lib(
                codes::ERR_STREAM_VERSION,
                "receive",
                format!("stream format version {version} is not supported (this build reads versions {OLDEST_VERSION} to {VERSION})"),
            ));
        }
        let flags = if h.len() >= 16 { u32_at(h, 12) } else { 0 };
        let keyed = version >= 2 && flags & FLAG_KEYED != 0;
        let fields = if version == 1 {
            V1_LEN - SUM_LEN
        } else {
            V2_FIELDS
        };
        let len = fields + if keyed { MAC_LEN } else { SUM_LEN };
        if h.len() < len {
            return Err(short(h.len(), len));
        }
        let seal = match (keyed, key) {
            (true, None) => {
                return Err(auth(
                    "the stream is authenticated (keyed): give the key file it was sent with",
                ))
            }
            (false, Some(_)) => {
                return Err(auth(
                    "the stream is not authenticated, but a key file was given: refusing an unkeyed stream",
                ))
            }
            (true, Some(k)) => {
                let mac = header_mac(k, &h[..fields]);
                let mut got = [0u8; MAC_LEN];
                got.copy_from_slice(&h[fields..len]);
                // blake3::Hash compares in constant time.
                if mac != blake3::Hash::from_bytes(got) {
                    return Err(auth(
                        "the stream's header does not authenticate under this key (another key, or altered)",
                    ));
                }
                Seal::Keyed {
                    key: *k,
                    chain: got,
                }
            }
            (false, None) => {
                if u128_at(h, fields) != xxh3_128(&h[..fields]) {
                    return Err(corrupt("header checksum mismatch"));
                }
                Seal::Sum {
                    seed: u64_at(h, 40),
                }
            }
        };
        let known = if version == 1 {
            FLAG_INCREMENTAL
        } else {
            V2_FLAGS
        };
        let volume = if version == 1 {
            Some(VolumeKind::default())
        } else {
            VolumeKind::decode(h[36])
        };
        let reserved_zero = if version == 1 {
            u32_at(h, 36) == 0
        } else {
            h[37..40] == [0, 0, 0] && h[96..112].iter().all(|&b| b == 0)
        };
        let Some(volume) = volume.filter(|_| flags & !known == 0 && reserved_zero) else {
            return Err(corrupt(
                "header has unknown flags or non-zero reserved bytes",
            ));
        };
        if u32_at(h, 32) != BLOCK as u32 {
            return Err(corrupt("header has another block size"));
        }
        let base = (flags & FLAG_INCREMENTAL != 0).then(|| BaseRef {
            id: id_at(h, 56),
            size: u64_at(h, 24),
            hash: u128_at(h, 72),
        });
        let header = Header {
            version,
            size: u64_at(h, 16),
            target_id: id_at(h, 40),
            base,
            volume,
            compressed: version >= 2 && flags & FLAG_COMPRESSED != 0,
            keyed,
            resume_from: (version >= 2 && flags & FLAG_RESUMED != 0).then(|| u64_at(h, 88)),
        };
        if let Some(at) = header.resume_from {
            if at % BLOCK != 0 || at > header.size {
                return Err(corrupt("header has a resume offset outside the image"));
            }
        }
        Ok((header, seal))
    }

    /// Seed of an unkeyed stream's record checksums: binds every record to its target.
    pub fn seed(&self) -> u64 {
        u64_at(&self.target_id, 0)
    }

    /// Whether the image hash can be updated record by record (a full stream, or an
    /// incremental of the same size, not resumed), rather than computed over the whole
    /// target at the end.
    pub fn updates_hash(&self) -> bool {
        self.resume_from.is_none() && self.base.map_or(true, |b| b.size == self.size)
    }

    /// The image hash a receiver starts from.
    pub fn start_hash(&self) -> u128 {
        self.base.map_or(0, |b| b.hash)
    }
}

fn short(got: usize, want: usize) -> Error {
    corrupt(format!(
        "the stream ended inside its header ({got} of {want} bytes)"
    ))
}

/// A record head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHead {
    pub kind: u8,
    pub seq: u32,
    /// Offset in the image (END: the image size).
    pub offset: u64,
    /// Bytes of the image covered (END: 16).
    pub length: u64,
    /// Bytes of payload on the wire (v1: implied by the kind and length).
    pub stored: u64,
}

impl RecordHead {
    /// A head whose payload is stored as is (DATA, HOLE, END).
    pub fn plain(kind: u8, seq: u32, offset: u64, length: u64) -> RecordHead {
        let stored = match kind {
            KIND_DATA => length,
            KIND_END => SUM_LEN as u64,
            _ => 0,
        };
        RecordHead {
            kind,
            seq,
            offset,
            length,
            stored,
        }
    }

    /// The END record of a stream of a `size`-byte image: its head and its payload, the
    /// image hash (`SUM_LEN` bytes, little-endian).
    pub fn end(seq: u32, size: u64, image_hash: u128) -> (RecordHead, [u8; SUM_LEN]) {
        let head = RecordHead::plain(KIND_END, seq, size, SUM_LEN as u64);
        (head, image_hash.to_le_bytes())
    }

    /// The image hash an END record's payload announces (`payload` is the `SUM_LEN`
    /// bytes its head states, as the receiver checked).
    pub fn end_hash(payload: &[u8; SUM_LEN]) -> u128 {
        u128::from_le_bytes(*payload)
    }

    /// The v2 head (32 bytes).
    pub fn encode(&self) -> [u8; V2_HEAD] {
        let mut h = [0u8; V2_HEAD];
        h[0] = self.kind;
        h[4..8].copy_from_slice(&self.seq.to_le_bytes());
        h[8..16].copy_from_slice(&self.offset.to_le_bytes());
        h[16..24].copy_from_slice(&self.length.to_le_bytes());
        h[24..28].copy_from_slice(&(self.stored as u32).to_le_bytes());
        h
    }

    /// Parse a head of `header`'s version (`h` is exactly `header.head_len()` bytes).
    /// What the kind implies about `stored` is checked here; ranges by the receiver.
    pub fn decode(header: &Header, h: &[u8]) -> Result<RecordHead> {
        let v2 = header.version >= 2;
        if h[1..4] != [0, 0, 0] || (v2 && h[28..32] != [0, 0, 0, 0]) {
            return Err(corrupt("record head has non-zero reserved bytes"));
        }
        let (kind, seq, offset, length) = (h[0], u32_at(h, 4), u64_at(h, 8), u64_at(h, 16));
        let plain = RecordHead::plain(kind, seq, offset, length);
        if !v2 {
            return if kind == KIND_ZDATA {
                Err(corrupt(format!("unknown record kind {kind}")))
            } else {
                Ok(plain)
            };
        }
        let stored = u64::from(u32_at(h, 24));
        let ok = match kind {
            // A frame that does not shrink the data is sent plain.
            KIND_ZDATA => header.compressed && stored > 0 && stored < length,
            _ => stored == plain.stored,
        };
        if !ok {
            return Err(corrupt(format!(
                "record {seq} has a payload length ({stored}) that does not fit its kind {kind}"
            )));
        }
        Ok(RecordHead { stored, ..plain })
    }
}

/// What seals each record (its last `Header::seal_len` bytes).
#[derive(Clone)]
pub enum Seal {
    /// XXH3-128 of head and payload, seeded from the target identity (unkeyed).
    Sum { seed: u64 },
    /// BLAKE3 keyed hash of the previous seal (the header's for the first record),
    /// head and payload: a chain, so every record is bound to the header and to its
    /// place in the stream.
    Keyed {
        key: StreamKey,
        chain: [u8; MAC_LEN],
    },
}

/// Never prints the key.
impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Seal::Sum { .. } => "Seal::Sum",
            Seal::Keyed { .. } => "Seal::Keyed",
        })
    }
}

impl Seal {
    /// The seal of the next record, advancing the chain.
    pub fn next(&mut self, head: &[u8], payload: &[u8]) -> Vec<u8> {
        match self {
            Seal::Sum { seed } => {
                let mut h = Xxh3::with_seed(*seed);
                h.update(head);
                h.update(payload);
                h.digest128().to_le_bytes().to_vec()
            }
            Seal::Keyed { key, chain } => {
                let mut h = blake3::Hasher::new_keyed(key);
                h.update(chain);
                h.update(head);
                // A DATA payload is hashed on every core: the MAC is the one cost a key
                // adds to a stream (docs/design.md §8.8).
                if payload.len() >= PARALLEL_MAC_MIN {
                    h.update_rayon(payload);
                } else {
                    h.update(payload);
                }
                *chain = *h.finalize().as_bytes();
                chain.to_vec()
            }
        }
    }

    /// Check the seal `got` of the next record, advancing the chain; the error names
    /// the record. A keyed mismatch is `ERR_STREAM_AUTH`, an unkeyed one `ERR_STREAM_CORRUPT`.
    pub fn check(
        &mut self,
        head: &RecordHead,
        body: &[u8],
        payload_at: usize,
        got: &[u8],
    ) -> Result<()> {
        let keyed = matches!(self, Seal::Keyed { .. });
        let want = self.next(&body[..payload_at], &body[payload_at..]);
        let ok = if keyed {
            let mut g = [0u8; MAC_LEN];
            g.copy_from_slice(got);
            let mut w = [0u8; MAC_LEN];
            w.copy_from_slice(&want);
            // blake3::Hash compares in constant time.
            blake3::Hash::from_bytes(g) == blake3::Hash::from_bytes(w)
        } else {
            want == got
        };
        match (ok, keyed) {
            (true, _) => Ok(()),
            (false, true) => Err(auth(format!(
                "record {} at offset {} does not authenticate (altered, reordered or from another stream)",
                head.seq, head.offset
            ))),
            (false, false) => Err(corrupt(format!(
                "checksum mismatch in record {} at offset {}",
                head.seq, head.offset
            ))),
        }
    }
}

/// The codec of DATA payloads: zstd at `ZSTD_LEVEL`, one frame per record, with
/// contexts reused across records (no allocation per record).
pub struct Codec {
    compressor: Option<zstd::bulk::Compressor<'static>>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
}

impl Codec {
    pub fn new() -> Codec {
        Codec {
            compressor: None,
            decompressor: None,
        }
    }

    /// Compress `data` into `out` (appended); returns the frame's length, or None when
    /// it would not be shorter than `data` (then nothing is appended).
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>> {
        if self.compressor.is_none() {
            self.compressor =
                Some(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| Error::io(e, "zstd"))?);
        }
        let c = self.compressor.as_mut().expect("set above");
        let at = out.len();
        // Room for a frame one byte shorter than the data: a longer one is not used.
        out.resize(at + data.len().saturating_sub(1), 0);
        match c.compress_to_buffer(data, &mut out[at..]) {
            Ok(n) => {
                out.truncate(at + n);
                Ok(Some(n))
            }
            // The frame did not fit: the data does not compress.
            Err(_) => {
                out.truncate(at);
                Ok(None)
            }
        }
    }

    /// Decompress one frame into `out`, which it must fill exactly.
    pub fn decompress(&mut self, frame: &[u8], out: &mut [u8]) -> Result<()> {
        if self.decompressor.is_none() {
            self.decompressor =
                Some(zstd::bulk::Decompressor::new().map_err(|e| Error::io(e, "zstd"))?);
        }
        let d = self.decompressor.as_mut().expect("set above");
        match d.decompress_to_buffer(frame, out) {
            Ok(n) if n == out.len() => Ok(()),
            Ok(n) => Err(corrupt(format!(
                "a compressed record holds {n} bytes where {} were announced",
                out.len()
            ))),
            Err(e) => Err(corrupt(format!(
                "a compressed record does not decompress: {e}"
            ))),
        }
    }
}

impl Default for Codec {
    fn default() -> Self {
        Codec::new()
    }
}

/// Parse a stream key file's contents: exactly 32 bytes, or 64 hex digits with an
/// optional trailing newline (docs/design.md §8.8).
pub fn parse_key(bytes: &[u8]) -> Result<StreamKey> {
    let bad = || {
        Error::lib(
            codes::ERR_INVALID_ARG_VALUE,
            "validate",
            "a stream key is 32 raw bytes or 64 hex digits (one optional newline after them)",
        )
    };
    let mut key = [0u8; KEY_LEN];
    if bytes.len() == KEY_LEN {
        key.copy_from_slice(bytes);
        return Ok(key);
    }
    let hex = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if hex.len() != 2 * KEY_LEN || !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    for (k, pair) in key.iter_mut().zip(hex.chunks(2)) {
        let s = std::str::from_utf8(pair).map_err(|_| bad())?;
        *k = u8::from_str_radix(s, 16).map_err(|_| bad())?;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_keys_are_enforced() {
        let key = [7u8; KEY_LEN];
        let mut h = Header::new(
            1 << 30,
            [3; 16],
            Some(BaseRef {
                id: [4; 16],
                size: 1 << 30,
                hash: 99,
            }),
        );
        h.volume = VolumeKind {
            save_on_stop: true,
            snap_on_start: false,
            rw: true,
        };
        h.compressed = true;
        let (plain, _) = h.encode(None).unwrap();
        assert_eq!(plain.len(), h.wire_len());
        assert_eq!(Header::decode(&plain, None).unwrap().0, h);
        let err = Header::decode(&plain, Some(&key)).unwrap_err();
        assert_eq!(err.code, Some(codes::ERR_STREAM_AUTH));

        h.keyed = true;
        h.resume_from = Some(8192);
        let (sealed, _) = h.encode(Some(&key)).unwrap();
        assert_eq!(sealed.len(), MAX_HEADER_LEN);
        assert_eq!(Header::decode(&sealed, Some(&key)).unwrap().0, h);
        for other in [None, Some(&[8u8; KEY_LEN])] {
            let err = Header::decode(&sealed, other).unwrap_err();
            assert_eq!(err.code, Some(codes::ERR_STREAM_AUTH));
        }
        let mut altered = sealed.clone();
        altered[16] ^= 1;
        let err = Header::decode(&altered, Some(&key)).unwrap_err();
        assert_eq!(err.code, Some(codes::ERR_STREAM_AUTH));
    }

    #[test]
    fn codec_round_trips_and_refuses_incompressible_data() {
        let mut c = Codec::new();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i / 1000) as u8).collect();
        let mut frame = Vec::new();
        let n = c.compress(&data, &mut frame).unwrap().unwrap();
        assert!(n < data.len() / 10);
        let mut back = vec![0u8; data.len()];
        c.decompress(&frame, &mut back).unwrap();
        assert_eq!(back, data);
        // One byte short: announced and actual lengths disagree.
        let err = c.decompress(&frame, &mut back[1..]).unwrap_err();
        assert_eq!(err.code, Some(codes::ERR_STREAM_CORRUPT));
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut out = vec![1, 2];
        assert_eq!(c.compress(&noise, &mut out).unwrap(), None);
        assert_eq!(out, vec![1, 2]);
    }

    #[test]
    fn keys_parse_from_raw_or_hex() {
        assert_eq!(parse_key(&[5u8; 32]).unwrap(), [5u8; 32]);
        let hex = "ab".repeat(32) + "\n";
        assert_eq!(parse_key(hex.as_bytes()).unwrap(), [0xab; 32]);
        assert!(parse_key(b"short").is_err());
        assert!(parse_key("zz".repeat(32).as_bytes()).is_err());
    }
}
