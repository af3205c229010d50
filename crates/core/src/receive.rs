//! The receiving end of a send stream (docs/design.md §8).
//!
//! Why: a receiver must end with exactly the sender's image or refuse, and must never
//! trust a length or offset before checking it. Strategy: the caller prepares the file
//! (a clone of the base truncated or extended to the target size, or a sparse file of
//! that size for a full stream) and feeds the stream after its header in pieces of any
//! size. Each record head is checked before its payload is waited for (kind, sequence
//! number, offsets increasing and inside the image, block alignment, DATA at most
//! `MAX_DATA`), so a corrupt length cannot make the receiver buffer without bound; the
//! whole record is checked against its seal (checksum, or MAC chain under a key) before
//! it touches the file, and before a compressed payload is decompressed (into exactly
//! the announced length, never more). DATA is
//! written with pwrite (zero blocks left as holes in a full stream), HOLE is punched
//! with fallocate(PUNCH_HOLE). The image hash is updated as the sender's was (the blocks
//! as they were in the base are read back before being overwritten), or computed over
//! the whole file at the end when the sizes differ; `finish` refuses a stream without
//! its END record or whose image hash differs. It does not fsync: the caller commits
//! the file, and its commit fsyncs it before the rename (one fsync per image, docs/design.md §8.5).
//! The caller deletes the file on any error, so a refused stream changes nothing.
//! Cancellation: `Control::check` before every record and every `imagehash::CHUNK` hashed.
//!
//! The file a receive writes is its own (`stage`): `<import>~<random>` created with
//! O_EXCL beside the import name, never the import name itself, which `importData` hands
//! to other processes to write into. Nobody else is ever given its name, and the
//! receiver writes through the handle made at its creation, so what the pool commits
//! under the sender's identity is what this stream wrote (docs/design.md §8.5).

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use nix::errno::Errno;
use nix::fcntl::{fallocate, FallocateFlags};

use crate::control::Control;
use crate::copy::{self, CopyMethod, ReflinkMode};
use crate::diff::BLOCK;
use crate::dir::Entry;
use crate::error::{Error, Result};
use crate::imagehash::{image_hash, sum_blocks, sum_range};
use crate::send_format::{
    corrupt, Codec, Header, RecordHead, Seal, KIND_DATA, KIND_END, KIND_HOLE, KIND_ZDATA, MAX_DATA,
    SUM_LEN,
};
use crate::tempname::{KeptTemp, TempFile};
use crate::{sys, zeroskip};

/// The receive's own file beside `import` (its name is never `import` itself), opened for
/// reading and writing at `size` bytes: a clone (else a sparse copy) of `base`, cut or
/// zero-extended to `size`, or a sparse file. Returns the file, the owner of its name
/// (unlinked on drop until kept) and how the base was copied (`None`: sparse).
pub fn stage(
    import: &Entry,
    base: Option<&File>,
    size: u64,
    ctl: &Control,
) -> Result<(File, KeptTemp, Option<CopyMethod>)> {
    let tmp = TempFile::create(import, 0o600)?;
    let shown = tmp.tmp.shown();
    let method = match base {
        Some(b) => {
            let base_size = b
                .metadata()
                .map_err(|e| Error::io(e, "fstat").with_path(&shown))?
                .len();
            let how = copy::fill(
                b.as_fd(),
                &tmp.file,
                base_size,
                size,
                ReflinkMode::Auto,
                ctl,
            )
            .map_err(|e| e.with_path(&shown))?;
            Some(how.method)
        }
        None => {
            tmp.file
                .set_len(size)
                .map_err(|e| Error::io(e, "ftruncate").with_path(&shown))?;
            None
        }
    };
    let (file, kept) = tmp.detach()?;
    Ok((file, kept, method))
}

/// Applies a stream to a prepared file, in two stages that overlap: record `i + 1` is
/// cut from the stream and checked against its seal (and unpacked) while record `i`,
/// already checked, is written (docs/design.md §8.3). A record never touches the file
/// before its own seal checked; a key's MAC runs beside the writes, not before them.
pub struct Receiver {
    check: Checker,
    image: Image,
    /// Bytes of an incomplete record carried over to the next `feed`.
    pending: Vec<u8>,
    /// The records of the piece being applied (kept for its buffer).
    cuts: Vec<Cut>,
}

/// The first stage: cuts records from the stream and checks them.
struct Checker {
    header: Header,
    seal: Seal,
    codec: Codec,
    /// Buffers of unpacked payloads, reused.
    spare: Vec<Vec<u8>>,
}

/// The second stage: writes checked records into the file.
struct Image {
    header: Header,
    file: File,
    /// Zero-block granularity of a full stream's writes (the filesystem's block size).
    block: usize,
    /// Records applied.
    seq: u32,
    /// End of the last record applied: the next one must start at or after it.
    pos: u64,
    hash: u128,
    /// The image hash the END record announced, once seen.
    announced: Option<u128>,
    scratch: Vec<u8>,
    /// A full stream applied over another image (`receive --like`): only the blocks
    /// that differ are written, and what no record covers is punched.
    over: bool,
}

/// A complete record in a piece of stream: its head (checked) and where it lies.
struct Cut {
    head: RecordHead,
    at: usize,
    total: usize,
}

/// A record whose seal checked, ready to write.
struct Checked {
    head: RecordHead,
    payload: Payload,
}

enum Payload {
    /// The payload as it lies in the piece (`start..end`).
    At(usize, usize),
    /// A compressed record's image bytes.
    Unpacked(Vec<u8>),
}

/// Records from this payload size are checked beside the write of the one before (below
/// it the hand-over to another thread costs more than the check).
const OVERLAP_MIN: u64 = 64 << 10;

impl Receiver {
    /// `file` is open for reading and writing and already holds the base (or nothing) at
    /// the target size (and, for a resumed stream, what was received below its resume
    /// offset); `block` is its filesystem's block size; `seal` is what
    /// `Header::decode` gave with the header.
    pub fn new(header: Header, seal: Seal, file: File, block: usize) -> Receiver {
        Receiver {
            check: Checker {
                header,
                seal,
                codec: Codec::new(),
                spare: Vec::new(),
            },
            image: Image {
                hash: header.start_hash(),
                pos: header.resume_from.unwrap_or(0),
                header,
                file,
                block: block.max(512),
                seq: 0,
                announced: None,
                scratch: Vec::new(),
                over: false,
            },
            pending: Vec::new(),
            cuts: Vec::new(),
        }
    }

    /// Apply a full stream over the image already in the file (a clone of a similar
    /// volume, docs/design.md §8.10) rather than over zeros: every block that already
    /// holds the right bytes is left alone, so it stays shared with that volume. No
    /// effect on an incremental stream (it starts from its base anyway).
    pub fn over_existing(mut self) -> Receiver {
        self.image.over = self.image.header.base.is_none();
        self
    }

    /// Records applied so far (a resume token counts them).
    pub fn records(&self) -> u32 {
        self.image.seq
    }

    /// Whether a cut receive has something to keep for a resume: records applied since
    /// it started, and no END seen (a complete stream that failed its checks is not cut).
    pub fn suspendable(&self) -> bool {
        self.image.announced.is_none() && self.image.seq > 0
    }

    /// fsync what was applied (before the pool keeps the file for a resume).
    pub fn sync(&self) -> Result<()> {
        self.image
            .file
            .sync_all()
            .map_err(|e| Error::io(e, "fsync"))
    }

    /// Bytes of the image covered so far (for progress).
    pub fn position(&self) -> u64 {
        self.image.pos
    }

    /// Apply every complete record in `pending` + `data`; keep an incomplete tail. Only
    /// the record carried over is copied: the rest is applied where it lies in `data`.
    pub fn feed(&mut self, mut data: &[u8], ctl: &Control) -> Result<()> {
        while !self.pending.is_empty() {
            // First the rest of the head (checked as soon as it is whole), then the rest of
            // its record.
            let head_len = self.check.header.head_len();
            let (want, whole) = if self.pending.len() < head_len {
                (head_len, false)
            } else {
                let ended = self.image.announced.is_some();
                let (_, total) =
                    self.check
                        .head_at(&self.pending, self.image.seq, self.image.pos, ended)?;
                (total, true)
            };
            if whole && self.pending.len() == want {
                // Exactly one complete record: applied whole.
                let one = std::mem::take(&mut self.pending);
                let r = self.apply_records(&one, ctl);
                self.pending = one;
                debug_assert!(r.as_ref().map_or(true, |&used| used == want));
                r?;
                self.pending.clear();
                break;
            }
            if data.is_empty() {
                break;
            }
            let take = (want - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        let used = self.apply_records(data, ctl)?;
        self.pending.extend_from_slice(&data[used..]);
        Ok(())
    }

    /// Apply the complete records at the start of `buf`; returns the bytes used. A head
    /// that fails its checks is reported once the records before it are applied.
    fn apply_records(&mut self, buf: &[u8], ctl: &Control) -> Result<usize> {
        let mut cuts = std::mem::take(&mut self.cuts);
        cuts.clear();
        let (mut seq, mut pos, mut at) = (self.image.seq, self.image.pos, 0usize);
        let mut ended = self.image.announced.is_some();
        let bad = loop {
            match self.check.cut(buf, at, seq, pos, ended) {
                Ok(Some(c)) => {
                    seq = seq.wrapping_add(1);
                    pos = c.head.offset + c.head.length;
                    ended = c.head.kind == KIND_END;
                    at += c.total;
                    cuts.push(c);
                }
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        let overlap = cuts.iter().skip(1).any(|c| c.head.stored >= OVERLAP_MIN);
        let r = if overlap {
            // One hand-over to the worker threads for the piece, not one per record.
            rayon::scope(|_| self.apply_cuts(buf, &cuts, ctl))
        } else {
            self.apply_cuts(buf, &cuts, ctl)
        };
        self.cuts = cuts;
        r?;
        match bad {
            Some(e) => Err(e),
            None => Ok(at),
        }
    }

    /// Check and write `cuts` in order, checking each while the one before is written.
    fn apply_cuts(&mut self, buf: &[u8], cuts: &[Cut], ctl: &Control) -> Result<()> {
        let Receiver { check, image, .. } = self;
        // Step k writes record k - 1 and checks record k.
        let mut ready: Option<Checked> = None;
        for k in 0..=cuts.len() {
            let cut = cuts.get(k);
            let mut write = || match &ready {
                Some(r) => image.apply(r, buf, ctl),
                None => Ok(()),
            };
            let mut next = || match cut {
                Some(c) => ctl.check().and_then(|()| check.check(buf, c)).map(Some),
                None => Ok(None),
            };
            let overlap = ready.is_some() && cut.is_some_and(|c| c.head.stored >= OVERLAP_MIN);
            let (written, checked) = if overlap {
                rayon::join(write, next)
            } else {
                let w = write();
                let n = if w.is_ok() { next() } else { Ok(None) };
                (w, n)
            };
            if let Some(r) = ready.take() {
                check.recycle(r);
            }
            written?;
            ready = checked?;
        }
        Ok(())
    }

    /// Check that the stream was complete and the image is the sender's (no fsync: the
    /// caller's commit makes the file durable). Returns the image hash.
    pub fn finish(&mut self, ctl: &Control) -> Result<u128> {
        let image = &mut self.image;
        let Some(announced) = image.announced else {
            return Err(corrupt(format!(
                "the stream ended before its END record (truncated after {} records)",
                image.seq
            )));
        };
        if !self.pending.is_empty() {
            return Err(corrupt("bytes after the END record"));
        }
        if !image.header.updates_hash() {
            image.hash = image_hash(&image.file, image.header.size, ctl)?;
        }
        if image.hash != announced {
            return Err(corrupt(
                "the received image's checksum differs from the sender's (the base differs, or the stream was altered)",
            ));
        }
        Ok(image.hash)
    }
}

impl Checker {
    /// The head that starts `buf` and its record's whole length, checked (a corrupt
    /// length is refused before its payload is waited for); `seq` and `pos` are what the
    /// records before it leave, `ended` whether one of them was the END.
    fn head_at(&self, buf: &[u8], seq: u32, pos: u64, ended: bool) -> Result<(RecordHead, usize)> {
        if ended {
            return Err(corrupt("bytes after the END record"));
        }
        let head = RecordHead::decode(&self.header, &buf[..self.header.head_len()])?;
        check_head(&self.header, &head, seq, pos)?;
        let total = self.header.head_len() + head.stored as usize + self.header.seal_len();
        Ok((head, total))
    }

    /// The record at `buf[at..]`, when it is complete (see `head_at`).
    fn cut(&self, buf: &[u8], at: usize, seq: u32, pos: u64, ended: bool) -> Result<Option<Cut>> {
        let rest = &buf[at..];
        if rest.is_empty() {
            return Ok(None);
        }
        if ended {
            return Err(corrupt("bytes after the END record"));
        }
        if rest.len() < self.header.head_len() {
            return Ok(None);
        }
        let (head, total) = self.head_at(rest, seq, pos, false)?;
        Ok((rest.len() >= total).then_some(Cut { head, at, total }))
    }

    /// Check a record's seal (advancing the chain) and unpack a compressed payload.
    fn check(&mut self, buf: &[u8], c: &Cut) -> Result<Checked> {
        let (head_len, seal_len) = (self.header.head_len(), self.header.seal_len());
        let body = &buf[c.at..c.at + c.total - seal_len];
        let sent = &buf[c.at + c.total - seal_len..c.at + c.total];
        self.seal.check(&c.head, body, head_len, sent)?;
        let (start, end) = (c.at + head_len, c.at + c.total - seal_len);
        let payload = if c.head.kind == KIND_ZDATA {
            let mut unpacked = self.spare.pop().unwrap_or_default();
            unpacked.resize(c.head.length as usize, 0);
            self.codec.decompress(&buf[start..end], &mut unpacked)?;
            Payload::Unpacked(unpacked)
        } else {
            Payload::At(start, end)
        };
        Ok(Checked {
            head: c.head,
            payload,
        })
    }

    /// Take back an unpacked payload's buffer.
    fn recycle(&mut self, c: Checked) {
        if let Payload::Unpacked(v) = c.payload {
            self.spare.push(v);
        }
    }
}

/// Everything about a head that can be checked before its payload arrives; `seq` and
/// `pos` are the record number and image offset the records before it leave.
fn check_head(header: &Header, h: &RecordHead, seq: u32, pos: u64) -> Result<()> {
    let size = header.size;
    if h.seq != seq {
        return Err(corrupt(format!(
            "record {} arrived where record {} was expected (reordered or missing records)",
            h.seq, seq
        )));
    }
    if h.kind == KIND_END {
        if h.offset != size || h.length != SUM_LEN as u64 {
            return Err(corrupt("malformed END record"));
        }
        return Ok(());
    }
    let ok_len = match h.kind {
        KIND_DATA | KIND_ZDATA => h.length > 0 && h.length <= MAX_DATA,
        KIND_HOLE => h.length > 0,
        other => return Err(corrupt(format!("unknown record kind {other}"))),
    };
    let end = h.offset.checked_add(h.length);
    let fits = end.is_some_and(|e| e <= size);
    let aligned = h.offset % BLOCK == 0 && end.is_some_and(|e| e % BLOCK == 0 || e == size);
    if !ok_len || !fits || !aligned {
        return Err(corrupt(format!(
            "record {} has a bad range ({} bytes at offset {} of a {size}-byte image)",
            h.seq, h.length, h.offset
        )));
    }
    if h.offset < pos {
        return Err(corrupt(format!(
            "record {} at offset {} overlaps or precedes the previous one (ending at {})",
            h.seq, h.offset, pos
        )));
    }
    Ok(())
}

impl Image {
    /// Write a checked record.
    fn apply(&mut self, c: &Checked, buf: &[u8], ctl: &Control) -> Result<()> {
        let payload = match &c.payload {
            Payload::At(start, end) => &buf[*start..*end],
            Payload::Unpacked(v) => &v[..],
        };
        self.write(&c.head, payload, ctl)?;
        self.seq = self.seq.wrapping_add(1);
        Ok(())
    }

    fn write(&mut self, h: &RecordHead, payload: &[u8], ctl: &Control) -> Result<()> {
        let updates = self.header.updates_hash();
        let incremental = self.header.base.is_some();
        let end = h.offset + h.length;
        if self.over && h.offset > self.pos {
            // A full stream skips what reads as zeros: here that range may hold data.
            self.punch(self.pos, h.offset - self.pos)?;
        }
        if h.kind == KIND_END {
            let payload = payload
                .try_into()
                .map_err(|_| corrupt("malformed END record"))?;
            self.announced = Some(RecordHead::end_hash(payload));
            self.pos = end;
            return Ok(());
        }
        if updates && incremental {
            // The blocks as the base had them leave the hash before they are overwritten.
            let old = sum_range(&self.file, h.offset, end, &mut self.scratch, ctl)?;
            self.hash = self.hash.wrapping_sub(old);
        }
        if h.kind == KIND_DATA || h.kind == KIND_ZDATA {
            if updates {
                self.hash = self.hash.wrapping_add(sum_blocks(payload, h.offset));
            }
            if incremental {
                sys::pwrite_all(self.file.as_fd(), payload, h.offset)
                    .map_err(|e| Error::os(e, "write"))?;
            } else if self.over {
                self.write_changed_blocks(h.offset, payload)?;
            } else {
                zeroskip::write_skipping_zeros(self.file.as_fd(), h.offset, payload, self.block)?;
            }
        } else if h.kind == KIND_HOLE {
            self.punch(h.offset, h.length)?;
        }
        self.pos = end;
        ctl.report(end, self.header.size);
        Ok(())
    }

    /// Write the blocks of `payload` (at the block-aligned `offset`) that differ from the
    /// file's: runs of changed blocks with one pwrite each, changed blocks that are now
    /// all zeros punched. Unchanged blocks are not written, so they keep their extents.
    fn write_changed_blocks(&mut self, offset: u64, payload: &[u8]) -> Result<()> {
        let mut old = std::mem::take(&mut self.scratch);
        old.resize(payload.len(), 0);
        self.file
            .read_exact_at(&mut old, offset)
            .map_err(|e| Error::io(e, "pread"))?;
        let b = BLOCK as usize;
        // A run of changed blocks being gathered: its start in `payload`, and whether zeros.
        let mut run: Option<(usize, bool)> = None;
        let mut at = 0usize;
        let r = loop {
            let block = (at < payload.len()).then(|| {
                let end = (at + b).min(payload.len());
                let new = &payload[at..end];
                (new != &old[at..end], zeroskip::is_zero(new))
            });
            let flush = match (run, block) {
                (Some((_, zeros)), Some((true, z))) => zeros != z,
                (Some(_), _) => true,
                (None, _) => false,
            };
            if flush {
                let (start, zeros) = run.take().expect("flush needs a run");
                let res = if zeros {
                    self.punch(offset + start as u64, (at - start) as u64)
                } else {
                    sys::pwrite_all(
                        self.file.as_fd(),
                        &payload[start..at],
                        offset + start as u64,
                    )
                    .map_err(|e| Error::os(e, "write"))
                };
                if let Err(e) = res {
                    break Err(e);
                }
            }
            match block {
                None => break Ok(()),
                Some((true, zeros)) if run.is_none() => run = Some((at, zeros)),
                _ => {}
            }
            at += b;
        };
        self.scratch = old;
        r
    }

    /// fallocate(PUNCH_HOLE | KEEP_SIZE); where the filesystem cannot punch, write zeros.
    fn punch(&mut self, offset: u64, len: u64) -> Result<()> {
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        match fallocate(
            self.file.as_fd(),
            flags,
            offset as libc::off_t,
            len as libc::off_t,
        ) {
            Ok(()) => Ok(()),
            // EOPNOTSUPP: no hole punching on this filesystem; zeros read the same.
            Err(Errno::EOPNOTSUPP) => {
                let zeros = vec![0u8; MAX_DATA as usize];
                let mut pos = offset;
                while pos < offset + len {
                    let n = (offset + len - pos).min(MAX_DATA);
                    sys::pwrite_all(self.file.as_fd(), &zeros[..n as usize], pos)
                        .map_err(|e| Error::os(e, "write"))?;
                    pos += n;
                }
                Ok(())
            }
            Err(e) => Err(Error::os(e, "fallocate(PUNCH_HOLE)")),
        }
    }
}
