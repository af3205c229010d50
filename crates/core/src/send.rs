//! The sender of the send stream (docs/design.md §8; the format is `send_format`).
//!
//! Why: a committed state travels to another pool as one self-checking byte stream
//! over any pipe: a header, then records in increasing, non-overlapping offset order,
//! each sealed (a checksum, or a MAC chain under a key). Strategy: the changes come
//! from `diff` (extent maps, no data read); each DATA change is cut into records of at
//! most `MAX_DATA` bytes read with pread; the image hash (`imagehash`) is updated from
//! the base's hash with the changed blocks only, or, when the sizes differ or the stream
//! is resumed, computed over the whole target at the end. A compressed stream packs
//! each DATA record into one zstd frame (sent plain when it does not shrink); the hash
//! and the seal are over what the record holds on the wire and the image bytes
//! respectively, so compression changes neither check. A resumed stream skips the
//! changes below its resume offset (docs/design.md §8.9).
//!
//! Speed: the stream is made in two stages that overlap (docs/design.md §8.3). The
//! records are planned from the diff a batch at a time; a batch's DATA records are read
//! (packed, and their blocks summed for the image hash) in lanes, one per core when
//! compressing, while the batch before it is sealed and appended in order. Sealing is
//! the sequential part (a MAC chain under a key), so a key's hashing runs beside the
//! reads instead of after them. The bytes are those of one record at a time (core
//! tests compare every mode). Memory: two batches of records (one lane each, or one per
//! core compressing) plus one FIEMAP batch per file. Cancellation: `Control::check`
//! before every batch and every `imagehash::CHUNK` hashed.

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
    /// A call failed: the batches it held are gone, so the stream cannot go on.
    Failed,
}

/// Produces a stream, a batch of whole records at a time.
pub struct Sender {
    source: Source,
    out: Sealer,
    diff: Diff,
    /// The rest of the change being cut into records.
    current: Option<Change>,
    phase: Phase,
    /// DATA records a batch reads at once: one, or one per core compressing.
    width: usize,
    /// The next batch, already read, waiting to be sealed.
    ready: Option<Batch>,
    /// A sealed batch whose buffers the next plan reuses.
    spare: Batch,
}

/// Where a record's bytes come from (shared by the lanes of the reading stage).
struct Source {
    target: File,
    base: Option<File>,
    compress: bool,
    /// Whether the image hash is updated record by record (`Header::updates_hash`).
    sums: bool,
}

/// The sequential stage: seals the records of a batch in order and appends them.
struct Sealer {
    header: Header,
    seal: Option<Seal>,
    key: Option<StreamKey>,
    seq: u32,
    hash: u128,
    stats: SendStats,
    /// End of the last record (for progress).
    position: u64,
    scratch: Vec<u8>,
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
            source: Source {
                target,
                base,
                compress: header.compressed,
                sums: header.updates_hash(),
            },
            out: Sealer {
                hash: header.start_hash(),
                header,
                seal: None,
                key,
                seq: 0,
                stats: SendStats::default(),
                position: header.resume_from.unwrap_or(0),
                scratch: Vec::new(),
            },
            diff,
            current: None,
            phase: Phase::Header,
            width: if header.compressed {
                rayon::current_num_threads().clamp(1, MAX_LANES)
            } else {
                1
            },
            ready: None,
            spare: Batch::default(),
        })
    }

    pub fn stats(&self) -> SendStats {
        self.out.stats
    }

    /// The image offset the records sent so far reach.
    pub fn position(&self) -> u64 {
        self.out.position
    }

    /// Append whole records to `out` until it holds at least `want` bytes or the stream
    /// ends. Returns false once the stream has ended (END written earlier or now).
    /// After a failure (an abort among them) every later call fails too: the records it
    /// had planned are gone, and a stream without them must not look complete.
    pub fn fill(&mut self, out: &mut Vec<u8>, want: usize, ctl: &Control) -> Result<bool> {
        // One hand-over to the worker threads per call, not one per batch.
        let r = rayon::scope(|_| self.fill_records(out, want, ctl));
        if r.is_err() {
            self.phase = Phase::Failed;
        }
        r
    }

    fn fill_records(&mut self, out: &mut Vec<u8>, want: usize, ctl: &Control) -> Result<bool> {
        loop {
            match self.phase {
                Phase::Done => return Ok(false),
                Phase::Failed => {
                    return Err(Error::lib(
                        codes::ERR_INVALID_ARG_VALUE,
                        "send",
                        "this stream failed earlier and cannot go on",
                    ))
                }
                Phase::Header => {
                    let s = &mut self.out;
                    let (bytes, seal) = s.header.encode(s.key.as_ref())?;
                    out.extend_from_slice(&bytes);
                    s.stats.stream_bytes += bytes.len() as u64;
                    s.seal = Some(seal);
                    self.phase = Phase::Records;
                }
                Phase::Records => {
                    if out.len() >= want {
                        return Ok(true);
                    }
                    ctl.check()?;
                    let ready = match self.ready.take() {
                        Some(b) => b,
                        None => {
                            // The first batch: nothing to overlap its read with.
                            let mut first = std::mem::take(&mut self.spare);
                            self.plan(&mut first)?;
                            first.read(&self.source, ctl)?;
                            first
                        }
                    };
                    if ready.items.is_empty() {
                        self.out.put_end(&self.source, out, ctl)?;
                        self.phase = Phase::Done;
                        return Ok(false);
                    }
                    // Read the next batch while this one is sealed.
                    let mut next = std::mem::take(&mut self.spare);
                    self.plan(&mut next)?;
                    let (source, sealer) = (&self.source, &mut self.out);
                    let (sealed, read) = if next.has_data() {
                        rayon::join(
                            || sealer.put(&ready, source, out, ctl),
                            || next.read(source, ctl),
                        )
                    } else {
                        (sealer.put(&ready, source, out, ctl), Ok(()))
                    };
                    sealed?;
                    read?;
                    self.spare = ready;
                    self.ready = Some(next);
                }
            }
        }
    }

    /// Plan the next records into `batch`: up to `width` DATA records, and the holes
    /// before them (at most `MAX_ITEMS` records). Empty once the diff is done.
    fn plan(&mut self, batch: &mut Batch) -> Result<()> {
        batch.items.clear();
        let mut data = 0;
        while data < self.width && batch.items.len() < MAX_ITEMS {
            let c = match self.current.take() {
                Some(c) => c,
                None => match self.next_change()? {
                    Some(c) => c,
                    None => break,
                },
            };
            match c.kind {
                ChangeKind::Hole => batch.items.push(Item::Hole(c.start, c.end)),
                ChangeKind::Data => {
                    let end = c.end.min(c.start + MAX_DATA);
                    if end < c.end {
                        self.current = Some(Change { start: end, ..c });
                    }
                    if batch.lanes.len() == data {
                        batch.lanes.push(Lane::default());
                    }
                    (batch.lanes[data].start, batch.lanes[data].end) = (c.start, end);
                    batch.items.push(Item::Data(data));
                    data += 1;
                }
            }
        }
        batch.used = data;
        Ok(())
    }

    /// The next change of the diff at or above the resume offset (a change that
    /// straddles it is cut there: the offset is a record boundary, so block-aligned).
    fn next_change(&mut self) -> Result<Option<Change>> {
        let from = self.out.header.resume_from.unwrap_or(0);
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
}

/// Most records a compressed stream prepares at once (bounds memory at 2 MiB a lane).
const MAX_LANES: usize = 8;
/// Most records in a batch (holes are planned without reading anything).
const MAX_ITEMS: usize = 64;

/// Records planned together: holes, and DATA records read in lanes.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    /// The DATA records' lanes (`used` of them in this batch; the rest are kept buffers).
    lanes: Vec<Lane>,
    used: usize,
}

enum Item {
    Hole(u64, u64),
    /// The DATA record of `lanes[i]`.
    Data(usize),
}

impl Batch {
    fn has_data(&self) -> bool {
        self.used > 0
    }

    /// Read (pack, sum) each DATA record; several lanes run on every core.
    fn read(&mut self, source: &Source, ctl: &Control) -> Result<()> {
        match &mut self.lanes[..self.used] {
            [] => Ok(()),
            [one] => one.fill(source, ctl),
            many => many.par_iter_mut().try_for_each(|l| l.fill(source, ctl)),
        }
    }
}

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
    /// The image-hash change of the record (new blocks less the base's), when summed.
    delta: u128,
    scratch: Vec<u8>,
}

impl Lane {
    fn fill(&mut self, source: &Source, ctl: &Control) -> Result<()> {
        self.raw.resize((self.end - self.start) as usize, 0);
        source
            .target
            .read_exact_at(&mut self.raw, self.start)
            .map_err(|e| Error::io(e, "pread"))?;
        self.frame.clear();
        self.packed = if source.compress {
            self.codec.compress(&self.raw, &mut self.frame)?
        } else {
            None
        };
        self.delta = if source.sums {
            let old = source.base_sum(self.start, self.end, &mut self.scratch, ctl)?;
            sum_blocks(&self.raw, self.start).wrapping_sub(old)
        } else {
            0
        };
        Ok(())
    }
}

impl Source {
    /// The base's hash contribution over `[start, end)` (0 without a base).
    fn base_sum(&self, start: u64, end: u64, buf: &mut Vec<u8>, ctl: &Control) -> Result<u128> {
        match &self.base {
            Some(f) => sum_range(f, start, end, buf, ctl),
            None => Ok(0),
        }
    }
}

impl Sealer {
    /// Append the records of a read batch, in order.
    fn put(
        &mut self,
        batch: &Batch,
        source: &Source,
        out: &mut Vec<u8>,
        ctl: &Control,
    ) -> Result<()> {
        for item in &batch.items {
            match *item {
                Item::Hole(start, end) => self.put_hole(start, end, source, out, ctl)?,
                Item::Data(i) => self.put_data(&batch.lanes[i], out, ctl),
            }
        }
        Ok(())
    }

    fn put_hole(
        &mut self,
        start: u64,
        end: u64,
        source: &Source,
        out: &mut Vec<u8>,
        ctl: &Control,
    ) -> Result<()> {
        if source.sums {
            let old = source.base_sum(start, end, &mut self.scratch, ctl)?;
            self.hash = self.hash.wrapping_sub(old);
        }
        self.stats.hole_bytes += end - start;
        let at = out.len();
        out.resize(at + self.header.head_len(), 0);
        let head = RecordHead::plain(KIND_HOLE, self.seq, start, end - start);
        self.put_record(head, at, out);
        self.position = end;
        ctl.report(end, self.header.size);
        Ok(())
    }

    /// Append the DATA record of a filled lane.
    fn put_data(&mut self, lane: &Lane, out: &mut Vec<u8>, ctl: &Control) {
        self.hash = self.hash.wrapping_add(lane.delta);
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

    fn put_end(&mut self, source: &Source, out: &mut Vec<u8>, ctl: &Control) -> Result<()> {
        if !source.sums {
            self.hash = image_hash(&source.target, self.header.size, ctl)?;
        }
        let at = out.len();
        out.resize(at + self.header.head_len(), 0);
        let (head, payload) = RecordHead::end(self.seq, self.header.size, self.hash);
        out.extend_from_slice(&payload);
        self.put_record(head, at, out);
        self.stats.image_hash = self.hash;
        self.position = self.header.size;
        ctl.report(self.header.size, self.header.size);
        Ok(())
    }
}
