//! The sender of the send stream (docs/design.md §8; the format is `send_format`).
//!
//! Why: a committed state travels to another pool as one self-checking byte stream
//! over any pipe: a header, then records in increasing, non-overlapping offset order,
//! each sealed (a checksum, or a MAC chain under a key). Strategy: the changes come from `diff` (extent maps, no data read); each DATA change
//! is cut into records of at most `MAX_DATA` bytes read with pread; the image hash
//! (`imagehash`) is updated from the base's hash with the changed blocks only, or, when
//! the sizes differ or the stream is resumed, computed over the whole target at the end.
//! A compressed stream packs each DATA record into one zstd frame (sent plain when it
//! does not shrink); the hash and the seal are over what the record holds on the wire
//! and the image bytes respectively, so compression changes neither check. A resumed
//! stream skips the changes below its resume offset (docs/design.md §8.9). zstd runs
//! far below pread from the page cache, so a compressed stream reads and packs the next
//! few records of a change on every core (rayon), then seals them in order: the bytes
//! are those of one record at a time. Memory: one record (one per core compressing) plus
//! one FIEMAP batch per file. Cancellation: `Control::check` before every record and
//! every `imagehash::CHUNK` hashed.

use std::fs::File;
use std::os::unix::fs::FileExt;

use rayon::prelude::*;

use crate::control::Control;
use crate::diff::{Change, ChangeKind, Diff};
use crate::error::{codes, Error, Result};
use crate::imagehash::{image_hash, sum_blocks, sum_range};
use crate::send_format::{
    Codec, Header, RecordHead, Seal, StreamKey, KIND_DATA, KIND_HOLE, KIND_ZDATA, MAX_DATA,
};

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
    /// The DATA records being read (and packed): one, or one per core compressing.
    lanes: Vec<Lane>,
    seal: Option<Seal>,
    key: Option<StreamKey>,
    stats: SendStats,
    /// End of the last record (for progress).
    position: u64,
}

impl Sender {
    /// A sender of `target` (its first `header.size` bytes) against `base` (which must
    /// match `header.base`), under `key` when `header.keyed`. Maps nothing yet beyond
    /// the first FIEMAP batch.
    pub fn new(
        header: Header,
        target: File,
        base: Option<File>,
        key: Option<StreamKey>,
    ) -> Result<Sender> {
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
        if header.keyed != key.is_some() {
            return Err(Error::lib(
                codes::ERR_INVALID_ARG_VALUE,
                "send",
                "a keyed header needs a key and the other way round",
            ));
        }
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
            lanes: (0..if header.compressed {
                rayon::current_num_threads().clamp(1, MAX_LANES)
            } else {
                1
            })
                .map(|_| Lane::default())
                .collect(),
            seal: None,
            key,
            stats: SendStats::default(),
            position: header.resume_from.unwrap_or(0),
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
                    let (bytes, seal) = self.header.encode(self.key.as_ref())?;
                    out.extend_from_slice(&bytes);
                    self.stats.stream_bytes += bytes.len() as u64;
                    self.seal = Some(seal);
                    self.phase = Phase::Records;
                }
                Phase::Records => {
                    if out.len() >= want {
                        return Ok(true);
                    }
                    ctl.check()?;
                    let change = match self.current.take() {
                        Some(c) => Some(c),
                        None => self.next_change()?,
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
                // The next records of the change, one per lane.
                let mut lanes = std::mem::take(&mut self.lanes);
                let mut at = c.start;
                let mut used = 0;
                for lane in lanes.iter_mut() {
                    if at == c.end {
                        break;
                    }
                    (lane.start, lane.end) = (at, c.end.min(at + MAX_DATA));
                    at = lane.end;
                    used += 1;
                }
                if at < c.end {
                    self.current = Some(Change { start: at, ..c });
                }
                let packed =
                    Lane::fill_all(&mut lanes[..used], &self.target, self.header.compressed);
                let r = packed.and_then(|()| {
                    lanes[..used]
                        .iter()
                        .try_for_each(|lane| self.put_data(lane, out, ctl))
                });
                self.lanes = lanes;
                r?;
            }
            ChangeKind::Hole => {
                if updates {
                    let old = self.base_sum(c.start, c.end, ctl)?;
                    self.hash = self.hash.wrapping_sub(old);
                }
                self.stats.hole_bytes += c.end - c.start;
                let at = out.len();
                out.resize(at + self.header.head_len(), 0);
                let head = RecordHead::plain(KIND_HOLE, self.seq, c.start, c.end - c.start);
                self.put_record(head, at, out);
                self.position = c.end;
                ctl.report(c.end, self.header.size);
            }
        }
        Ok(())
    }

    /// Append the DATA record of a filled lane.
    fn put_data(&mut self, lane: &Lane, out: &mut Vec<u8>, ctl: &Control) -> Result<()> {
        if self.header.updates_hash() {
            let new = sum_blocks(&lane.raw, lane.start);
            let old = self.base_sum(lane.start, lane.end, ctl)?;
            self.hash = self.hash.wrapping_sub(old).wrapping_add(new);
        }
        let len = lane.end - lane.start;
        let head_at = out.len();
        out.resize(head_at + self.header.head_len(), 0);
        let head = match lane.packed {
            Some(n) => {
                out.extend_from_slice(&lane.frame[..n]);
                RecordHead {
                    stored: n as u64,
                    ..RecordHead::plain(KIND_ZDATA, self.seq, lane.start, len)
                }
            }
            None => {
                out.extend_from_slice(&lane.raw);
                RecordHead::plain(KIND_DATA, self.seq, lane.start, len)
            }
        };
        self.stats.data_bytes += len;
        self.put_record(head, head_at, out);
        self.position = lane.end;
        ctl.report(lane.end, self.header.size);
        Ok(())
    }

    /// The base's hash contribution over `[start, end)` (0 without a base).
    fn base_sum(&mut self, start: u64, end: u64, ctl: &Control) -> Result<u128> {
        match &self.base {
            Some(f) => sum_range(f, start, end, &mut self.scratch, ctl),
            None => Ok(0),
        }
    }

    /// The next change of the diff at or above the resume offset (a change that
    /// straddles it is cut there: the offset is a record boundary, so block-aligned).
    fn next_change(&mut self) -> Result<Option<Change>> {
        let from = self.header.resume_from.unwrap_or(0);
        while let Some(c) = self.diff.next_change()? {
            if c.end > from {
                return Ok(Some(Change {
                    start: c.start.max(from),
                    ..c
                }));
            }
        }
        Ok(None)
    }

    /// Fill in the head at `head_at` (payload already after it) and append the seal.
    fn put_record(&mut self, head: RecordHead, head_at: usize, out: &mut Vec<u8>) {
        let len = self.header.head_len();
        out[head_at..head_at + len].copy_from_slice(&head.encode()[..len]);
        let seal = self
            .seal
            .as_mut()
            .expect("the header is written before any record")
            .next(&out[head_at..head_at + len], &out[head_at + len..]);
        out.extend_from_slice(&seal);
        self.stats.stream_bytes += (out.len() - head_at) as u64;
        self.stats.records += 1;
        self.seq = self.seq.wrapping_add(1);
    }

    fn put_end(&mut self, out: &mut Vec<u8>, ctl: &Control) -> Result<()> {
        if !self.header.updates_hash() {
            self.hash = image_hash(&self.target, self.header.size, ctl)?;
        }
        let at = out.len();
        out.resize(at + self.header.head_len(), 0);
        let (head, payload) = RecordHead::end(self.seq, self.header.size, self.hash);
        out.extend_from_slice(&payload);
        self.put_record(head, at, out);
        self.stats.image_hash = self.hash;
        self.phase = Phase::Done;
        self.position = self.header.size;
        ctl.report(self.header.size, self.header.size);
        Ok(())
    }
}

/// Most records a compressed stream prepares at once (bounds memory at 2 MiB a lane).
const MAX_LANES: usize = 8;

/// One DATA record being prepared: its range, image bytes and, compressed, its frame.
#[derive(Default)]
struct Lane {
    start: u64,
    end: u64,
    raw: Vec<u8>,
    frame: Vec<u8>,
    /// The frame's length, when the record compressed.
    packed: Option<usize>,
    codec: Codec,
}

impl Lane {
    /// Read (and pack) each lane's range; several lanes run on every core.
    fn fill_all(lanes: &mut [Lane], target: &File, compress: bool) -> Result<()> {
        match lanes {
            [one] => one.fill(target, compress),
            many => many
                .par_iter_mut()
                .try_for_each(|l| l.fill(target, compress)),
        }
    }

    fn fill(&mut self, target: &File, compress: bool) -> Result<()> {
        self.raw.resize((self.end - self.start) as usize, 0);
        target
            .read_exact_at(&mut self.raw, self.start)
            .map_err(|e| Error::io(e, "pread"))?;
        self.frame.clear();
        self.packed = if compress {
            self.codec.compress(&self.raw, &mut self.frame)?
        } else {
            None
        };
        Ok(())
    }
}
