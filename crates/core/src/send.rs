//! The send stream (docs/design.md §8): its byte format and the sender.
//!
//! Why: a committed state travels to another pool as one self-checking byte stream
//! over any pipe. Format (all integers little-endian): a 104-byte header (magic,
//! version, sizes, the target's identity, the base's identity and image hash), then
//! records in increasing, non-overlapping offset order, each a 24-byte head (kind,
//! sequence number, offset, length), its payload (DATA: the bytes; HOLE: none; END:
//! the image hash) and an XXH3-128 of head and payload seeded from the target identity.
//! Strategy: the changes come from `diff` (extent maps, no data read); each DATA change
//! is cut into records of at most `MAX_DATA` bytes read with pread; the image hash
//! (`imagehash`) is updated from the base's hash with the changed blocks only, or, when
//! the sizes differ, computed over the whole target at the end. Memory: one record plus
//! one FIEMAP batch per file. Cancellation: `Control::check` before every record and
//! every `imagehash::CHUNK` hashed.

use std::fs::File;
use std::os::unix::fs::FileExt;

use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use crate::control::Control;
use crate::diff::{Change, ChangeKind, Diff, BLOCK};
use crate::error::{codes, Error, Result};
use crate::imagehash::{image_hash, sum_blocks, sum_range};

/// First bytes of every stream.
pub const MAGIC: [u8; 8] = *b"RFPSEND\n";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// Bytes of the header (its checksum included).
pub const HEADER_LEN: usize = 104;
/// Bytes of a record head (kind, reserved, seq, offset, length).
pub const RECORD_HEAD: usize = 24;
/// Bytes of a checksum (XXH3-128, little-endian).
pub const SUM_LEN: usize = 16;
/// Largest DATA payload: bounds what a receiver buffers.
pub const MAX_DATA: u64 = 1 << 20;

const FLAG_INCREMENTAL: u32 = 1;

/// Record kinds.
pub const KIND_DATA: u8 = 1;
pub const KIND_HOLE: u8 = 2;
pub const KIND_END: u8 = 3;

/// An identity of a committed state: 16 random bytes.
pub type StateId = [u8; 16];

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
    /// Size of the target image in bytes.
    pub size: u64,
    pub target_id: StateId,
    pub base: Option<BaseRef>,
}

fn corrupt(detail: impl Into<String>) -> Error {
    Error::lib(codes::ERR_STREAM_CORRUPT, "receive", detail)
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

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let flags = if self.base.is_some() {
            FLAG_INCREMENTAL
        } else {
            0
        };
        h[12..16].copy_from_slice(&flags.to_le_bytes());
        h[16..24].copy_from_slice(&self.size.to_le_bytes());
        h[32..36].copy_from_slice(&(BLOCK as u32).to_le_bytes());
        h[40..56].copy_from_slice(&self.target_id);
        if let Some(b) = &self.base {
            h[24..32].copy_from_slice(&b.size.to_le_bytes());
            h[56..72].copy_from_slice(&b.id);
            h[72..88].copy_from_slice(&b.hash.to_le_bytes());
        }
        let sum = xxh3_128(&h[..88]);
        h[88..104].copy_from_slice(&sum.to_le_bytes());
        h
    }

    /// Parse and check a header: `ERR_STREAM_CORRUPT` for anything but our header,
    /// `ERR_STREAM_VERSION` for a version this code does not read.
    pub fn decode(h: &[u8]) -> Result<Header> {
        if h.len() < HEADER_LEN {
            return Err(corrupt(format!(
                "the stream ended inside its header ({} of {HEADER_LEN} bytes)",
                h.len()
            )));
        }
        if h[0..8] != MAGIC {
            return Err(corrupt("not a reflink-pool send stream (bad magic)"));
        }
        let version = u32_at(h, 8);
        if version != VERSION {
            return Err(Error::lib(
                codes::ERR_STREAM_VERSION,
                "receive",
                format!("stream format version {version} is not supported (this build reads version {VERSION})"),
            ));
        }
        if u128_at(h, 88) != xxh3_128(&h[..88]) {
            return Err(corrupt("header checksum mismatch"));
        }
        let flags = u32_at(h, 12);
        if flags & !FLAG_INCREMENTAL != 0 || u32_at(h, 32) != BLOCK as u32 || u32_at(h, 36) != 0 {
            return Err(corrupt("header has unknown flags or block size"));
        }
        let id = |at: usize| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&h[at..at + 16]);
            a
        };
        let base = (flags & FLAG_INCREMENTAL != 0).then(|| BaseRef {
            id: id(56),
            size: u64_at(h, 24),
            hash: u128_at(h, 72),
        });
        Ok(Header {
            size: u64_at(h, 16),
            target_id: id(40),
            base,
        })
    }

    /// Seed of the record checksums: binds every record to this stream's target.
    pub fn seed(&self) -> u64 {
        u64_at(&self.target_id, 0)
    }

    /// Whether the image hash can be updated from the base's (same size), rather than
    /// computed over the whole target.
    pub fn updates_hash(&self) -> bool {
        self.base.map_or(true, |b| b.size == self.size)
    }

    /// The image hash a receiver starts from.
    pub fn start_hash(&self) -> u128 {
        self.base.map_or(0, |b| b.hash)
    }
}

/// A record head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHead {
    pub kind: u8,
    pub seq: u32,
    pub offset: u64,
    pub length: u64,
}

impl RecordHead {
    pub fn encode(&self) -> [u8; RECORD_HEAD] {
        let mut h = [0u8; RECORD_HEAD];
        h[0] = self.kind;
        h[4..8].copy_from_slice(&self.seq.to_le_bytes());
        h[8..16].copy_from_slice(&self.offset.to_le_bytes());
        h[16..24].copy_from_slice(&self.length.to_le_bytes());
        h
    }

    pub fn decode(h: &[u8]) -> Result<RecordHead> {
        if h[1..4] != [0, 0, 0] {
            return Err(corrupt("record head has non-zero reserved bytes"));
        }
        Ok(RecordHead {
            kind: h[0],
            seq: u32_at(h, 4),
            offset: u64_at(h, 8),
            length: u64_at(h, 16),
        })
    }

    /// Bytes of payload that follow the head.
    pub fn payload_len(&self) -> u64 {
        match self.kind {
            KIND_DATA => self.length,
            KIND_END => SUM_LEN as u64,
            _ => 0,
        }
    }
}

/// XXH3-128 of a record's head and payload, seeded with `seed`.
pub fn record_sum(seed: u64, head: &[u8], payload: &[u8]) -> u128 {
    let mut h = Xxh3::with_seed(seed);
    h.update(head);
    h.update(payload);
    h.digest128()
}

/// What a finished send sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Bytes of DATA payload.
    pub data_bytes: u64,
    /// Bytes covered by HOLE records.
    pub hole_bytes: u64,
    /// Records, END included.
    pub records: u64,
    /// Bytes of the whole stream.
    pub stream_bytes: u64,
    /// The target's image hash (valid once the stream ended).
    pub image_hash: u128,
}

enum Phase {
    Header,
    Records,
    Done,
}

/// Produces a stream, a batch of whole records at a time.
pub struct Sender {
    header: Header,
    target: File,
    base: Option<File>,
    diff: Diff,
    /// The rest of the change being cut into records.
    current: Option<Change>,
    seq: u32,
    hash: u128,
    phase: Phase,
    scratch: Vec<u8>,
    stats: SendStats,
    /// End of the last record (for progress).
    position: u64,
}

impl Sender {
    /// A sender of `target` (its first `header.size` bytes) against `base` (which must
    /// match `header.base`). Maps nothing yet beyond the first FIEMAP batch.
    pub fn new(header: Header, target: File, base: Option<File>) -> Result<Sender> {
        let base_fd = match (&base, &header.base) {
            (Some(f), Some(b)) => Some((f, b.size)),
            (None, None) => None,
            _ => {
                return Err(Error::lib(
                    codes::ERR_INVALID_ARG_VALUE,
                    "send",
                    "a base file needs a base in the header and the other way round",
                ))
            }
        };
        let diff = Diff::new(&target, header.size, base_fd)?;
        Ok(Sender {
            hash: header.start_hash(),
            header,
            target,
            base,
            diff,
            current: None,
            seq: 0,
            phase: Phase::Header,
            scratch: Vec::new(),
            stats: SendStats::default(),
            position: 0,
        })
    }

    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// The image offset the records sent so far reach.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Append whole records to `out` until it holds at least `want` bytes or the stream
    /// ends. Returns false once the stream has ended (END written earlier or now).
    pub fn fill(&mut self, out: &mut Vec<u8>, want: usize, ctl: &Control) -> Result<bool> {
        loop {
            match self.phase {
                Phase::Done => return Ok(false),
                Phase::Header => {
                    out.extend_from_slice(&self.header.encode());
                    self.stats.stream_bytes += HEADER_LEN as u64;
                    self.phase = Phase::Records;
                }
                Phase::Records => {
                    if out.len() >= want {
                        return Ok(true);
                    }
                    ctl.check()?;
                    let change = match self.current.take() {
                        Some(c) => Some(c),
                        None => self.diff.next_change()?,
                    };
                    match change {
                        Some(c) => self.put_change(c, out, ctl)?,
                        None => {
                            self.put_end(out, ctl)?;
                            return Ok(false);
                        }
                    }
                }
            }
        }
    }

    fn put_change(&mut self, c: Change, out: &mut Vec<u8>, ctl: &Control) -> Result<()> {
        let updates = self.header.updates_hash();
        match c.kind {
            ChangeKind::Data => {
                let end = c.end.min(c.start + MAX_DATA);
                if end < c.end {
                    self.current = Some(Change { start: end, ..c });
                }
                let len = end - c.start;
                let at = out.len() + RECORD_HEAD;
                out.resize(at + len as usize, 0);
                self.target
                    .read_exact_at(&mut out[at..], c.start)
                    .map_err(|e| Error::io(e, "pread"))?;
                if updates {
                    let new = sum_blocks(&out[at..], c.start);
                    let old = self.base_sum(c.start, end, ctl)?;
                    self.hash = self.hash.wrapping_sub(old).wrapping_add(new);
                }
                self.stats.data_bytes += len;
                self.put_record(KIND_DATA, c.start, len, at - RECORD_HEAD, out);
                self.position = end;
                ctl.report(end, self.header.size);
            }
            ChangeKind::Hole => {
                if updates {
                    let old = self.base_sum(c.start, c.end, ctl)?;
                    self.hash = self.hash.wrapping_sub(old);
                }
                self.stats.hole_bytes += c.end - c.start;
                let at = out.len();
                out.resize(at + RECORD_HEAD, 0);
                self.put_record(KIND_HOLE, c.start, c.end - c.start, at, out);
                self.position = c.end;
                ctl.report(c.end, self.header.size);
            }
        }
        Ok(())
    }

    /// The base's hash contribution over `[start, end)` (0 without a base).
    fn base_sum(&mut self, start: u64, end: u64, ctl: &Control) -> Result<u128> {
        match &self.base {
            Some(f) => sum_range(f, start, end, &mut self.scratch, ctl),
            None => Ok(0),
        }
    }

    /// Fill in the head at `head_at` (payload already after it) and append the checksum.
    fn put_record(
        &mut self,
        kind: u8,
        offset: u64,
        length: u64,
        head_at: usize,
        out: &mut Vec<u8>,
    ) {
        let head = RecordHead {
            kind,
            seq: self.seq,
            offset,
            length,
        }
        .encode();
        out[head_at..head_at + RECORD_HEAD].copy_from_slice(&head);
        let sum = record_sum(
            self.header.seed(),
            &out[head_at..head_at + RECORD_HEAD],
            &out[head_at + RECORD_HEAD..],
        );
        out.extend_from_slice(&sum.to_le_bytes());
        self.stats.stream_bytes += (out.len() - head_at) as u64;
        self.stats.records += 1;
        self.seq = self.seq.wrapping_add(1);
    }

    fn put_end(&mut self, out: &mut Vec<u8>, ctl: &Control) -> Result<()> {
        if !self.header.updates_hash() {
            self.hash = image_hash(&self.target, self.header.size, ctl)?;
        }
        let at = out.len();
        out.resize(at + RECORD_HEAD, 0);
        out.extend_from_slice(&self.hash.to_le_bytes());
        self.put_record(KIND_END, self.header.size, SUM_LEN as u64, at, out);
        self.stats.image_hash = self.hash;
        self.phase = Phase::Done;
        self.position = self.header.size;
        ctl.report(self.header.size, self.header.size);
        Ok(())
    }
}
