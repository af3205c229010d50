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

/// Applies a stream to a prepared file.
pub struct Receiver {
    header: Header,
    file: File,
    /// Zero-block granularity of a full stream's writes (the filesystem's block size).
    block: usize,
    seq: u32,
    /// End of the last record applied: the next one must start at or after it.
    pos: u64,
    hash: u128,
    /// Bytes of an incomplete record carried over to the next `feed`.
    pending: Vec<u8>,
    /// The image hash the END record announced, once seen.
    announced: Option<u128>,
    scratch: Vec<u8>,
    seal: Seal,
    codec: Codec,
    /// A compressed record's image bytes.
    unpacked: Vec<u8>,
    /// A full stream applied over another image (`receive --like`): only the blocks
    /// that differ are written, and what no record covers is punched.
    over: bool,
}

impl Receiver {
    /// `file` is open for reading and writing and already holds the base (or nothing) at
    /// the target size (and, for a resumed stream, what was received below its resume
    /// offset); `block` is its filesystem's block size; `seal` is what
    /// `Header::decode` gave with the header.
    pub fn new(header: Header, seal: Seal, file: File, block: usize) -> Receiver {
        Receiver {
            hash: header.start_hash(),
            pos: header.resume_from.unwrap_or(0),
            header,
            file,
            block: block.max(512),
            seq: 0,
            pending: Vec::new(),
            announced: None,
            scratch: Vec::new(),
            seal,
            codec: Codec::new(),
            unpacked: Vec::new(),
            over: false,
        }
    }

    /// Apply a full stream over the image already in the file (a clone of a similar
    /// volume, docs/design.md §8.10) rather than over zeros: every block that already
    /// holds the right bytes is left alone, so it stays shared with that volume. No
    /// effect on an incremental stream (it starts from its base anyway).
    pub fn over_existing(mut self) -> Receiver {
        self.over = self.header.base.is_none();
        self
    }

    /// Records applied so far (a resume token counts them).
    pub fn records(&self) -> u32 {
        self.seq
    }

    /// Whether a cut receive has something to keep for a resume: records applied since
    /// it started, and no END seen (a complete stream that failed its checks is not cut).
    pub fn suspendable(&self) -> bool {
        self.announced.is_none() && self.seq > 0
    }

    /// fsync what was applied (before the pool keeps the file for a resume).
    pub fn sync(&self) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::io(e, "fsync"))
    }

    /// Bytes of the image covered so far (for progress).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Apply every complete record in `pending` + `data`; keep an incomplete tail.
    pub fn feed(&mut self, data: &[u8], ctl: &Control) -> Result<()> {
        if self.pending.is_empty() {
            let used = self.apply_records(data, ctl)?;
            self.pending.extend_from_slice(&data[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(data);
            let used = self.apply_records(&buf, ctl)?;
            buf.drain(..used);
            self.pending = buf;
        }
        Ok(())
    }

    /// Apply the complete records at the start of `buf`; returns the bytes used.
    fn apply_records(&mut self, buf: &[u8], ctl: &Control) -> Result<usize> {
        let head_len = self.header.head_len();
        let seal_len = self.header.seal_len();
        let mut at = 0usize;
        while buf.len() - at >= head_len {
            if self.announced.is_some() {
                return Err(corrupt("bytes after the END record"));
            }
            let head = RecordHead::decode(&self.header, &buf[at..at + head_len])?;
            self.check_head(&head)?;
            let total = head_len + head.stored as usize + seal_len;
            if buf.len() - at < total {
                break;
            }
            ctl.check()?;
            let body = &buf[at..at + total - seal_len];
            self.seal.check(
                &head,
                body,
                head_len,
                &buf[at + total - seal_len..at + total],
            )?;
            let payload = &body[head_len..];
            if head.kind == KIND_ZDATA {
                let mut unpacked = std::mem::take(&mut self.unpacked);
                unpacked.resize(head.length as usize, 0);
                self.codec.decompress(payload, &mut unpacked)?;
                let r = self.apply(&head, &unpacked, ctl);
                self.unpacked = unpacked;
                r?;
            } else {
                self.apply(&head, payload, ctl)?;
            }
            self.seq = self.seq.wrapping_add(1);
            at += total;
        }
        if self.announced.is_some() && at < buf.len() {
            return Err(corrupt("bytes after the END record"));
        }
        Ok(at)
    }

    /// Everything about a head that can be checked before its payload arrives.
    fn check_head(&self, h: &RecordHead) -> Result<()> {
        let size = self.header.size;
        if h.seq != self.seq {
            return Err(corrupt(format!(
                "record {} arrived where record {} was expected (reordered or missing records)",
                h.seq, self.seq
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
        if h.offset < self.pos {
            return Err(corrupt(format!(
                "record {} at offset {} overlaps or precedes the previous one (ending at {})",
                h.seq, h.offset, self.pos
            )));
        }
        Ok(())
    }

    fn apply(&mut self, h: &RecordHead, payload: &[u8], ctl: &Control) -> Result<()> {
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

    /// Check that the stream was complete and the image is the sender's (no fsync: the
    /// caller's commit makes the file durable). Returns the image hash.
    pub fn finish(&mut self, ctl: &Control) -> Result<u128> {
        let Some(announced) = self.announced else {
            return Err(corrupt(format!(
                "the stream ended before its END record (truncated after {} records)",
                self.seq
            )));
        };
        if !self.pending.is_empty() {
            return Err(corrupt("bytes after the END record"));
        }
        if !self.header.updates_hash() {
            self.hash = image_hash(&self.file, self.header.size, ctl)?;
        }
        if self.hash != announced {
            return Err(corrupt(
                "the received image's checksum differs from the sender's (the base differs, or the stream was altered)",
            ));
        }
        Ok(self.hash)
    }
}
