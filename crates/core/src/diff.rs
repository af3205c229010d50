//! The ranges in which a target image differs from a base image, found from their
//! extent maps (docs/design.md §8).
//!
//! Why: a committed state shares every extent it did not rewrite with the state it
//! was cloned from, so the extent maps tell what changed without reading data.
//! Strategy: walk both maps side by side (FIEMAP with FIEMAP_FLAG_SYNC, one batch of
//! extents per file in memory) as spans that cover the file without gaps, and compare
//! them range by range, not extent by extent (one extent of one file may face several
//! of the other). A range is unchanged when both sides are holes (no extent, or an
//! UNWRITTEN one: it reads as zeros) or both are plain extents with the same
//! `physical - logical`; an ENCODED (compressed) extent names its whole extent, so it is
//! unchanged only when logical, physical and length all match; DELALLOC, UNKNOWN,
//! INLINE, TAIL and NOT_ALIGNED data has no comparable address and counts as changed.
//! Where FIEMAP is unsupported, SEEK_DATA/SEEK_HOLE gives the data runs and every one
//! counts as changed. Without a base, every data run is a change and holes are skipped.
//! Changes are widened to whole `BLOCK`s (the unit of the image checksum): a block
//! touched by new data is sent whole, a hole is sent as a hole only for the blocks it
//! covers entirely. Costs: one FIEMAP call per 256 extents per file, no data read.
//! No cancellation here: the caller checks between the ranges it pulls.

use std::fs::File;
use std::os::fd::AsFd;

use crate::error::{Error, Result};
use crate::extents::next_run;
use crate::sys::{self, FiemapBatch, FiemapExtent};

/// The unit of the image checksum and the alignment of every change (docs/design.md §8).
pub const BLOCK: u64 = 4096;

/// Where the bytes of a span live, as far as the extent map tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// No data: reads as zeros.
    Hole,
    /// Data whose address cannot be compared: always counts as changed.
    Opaque,
    /// A plain extent: `physical - logical`.
    Shifted(i128),
    /// A compressed extent: equal only when the whole extent is the same one.
    Encoded {
        logical: u64,
        physical: u64,
        length: u64,
    },
}

impl Place {
    fn of(e: &FiemapExtent) -> Place {
        const OPAQUE: u32 = sys::FIEMAP_EXTENT_DELALLOC
            | sys::FIEMAP_EXTENT_UNKNOWN
            | sys::FIEMAP_EXTENT_DATA_INLINE
            | sys::FIEMAP_EXTENT_DATA_TAIL
            | sys::FIEMAP_EXTENT_NOT_ALIGNED;
        if e.fe_flags & sys::FIEMAP_EXTENT_UNWRITTEN != 0 {
            Place::Hole
        } else if e.fe_flags & OPAQUE != 0 {
            Place::Opaque
        } else if e.fe_flags & sys::FIEMAP_EXTENT_ENCODED != 0 {
            Place::Encoded {
                logical: e.fe_logical,
                physical: e.fe_physical,
                length: e.fe_length,
            }
        } else {
            Place::Shifted(e.fe_physical as i128 - e.fe_logical as i128)
        }
    }

    /// Whether two spans facing each other hold the same bytes for sure.
    fn same(self, other: Place) -> bool {
        match (self, other) {
            (Place::Hole, Place::Hole) => true,
            (Place::Shifted(a), Place::Shifted(b)) => a == b,
            (a @ Place::Encoded { .. }, b @ Place::Encoded { .. }) => a == b,
            _ => false,
        }
    }
}

/// A span of a file that ends at `end` (it starts where the previous one ended) and
/// where its bytes live.
#[derive(Debug, Clone, Copy)]
struct Span {
    end: u64,
    place: Place,
}

enum Source {
    Fiemap {
        batch: FiemapBatch,
        /// The current batch (at most one batch of extents).
        extents: Vec<FiemapExtent>,
        idx: usize,
        /// Where the next batch starts; None once the map is complete.
        next: Option<u64>,
    },
    Seek,
}

/// The spans of one file over `[0, size)`, without gaps, in order.
struct MapCursor {
    /// A dup of the caller's descriptor, so a `Diff` owns what it walks.
    file: File,
    size: u64,
    pos: u64,
    source: Source,
}

impl MapCursor {
    fn new(file: &File, size: u64) -> Result<Self> {
        let file = file.try_clone().map_err(|e| Error::io(e, "dup"))?;
        let mut batch = FiemapBatch::default();
        let source = match batch.fetch(file.as_fd(), 0, sys::FIEMAP_FLAG_SYNC) {
            Ok((got, next)) => {
                let extents = got.to_vec();
                Source::Fiemap {
                    batch,
                    extents,
                    idx: 0,
                    next,
                }
            }
            Err(e) if sys::fiemap_unsupported(e) => Source::Seek,
            Err(e) => return Err(Error::os(e, "ioctl(FS_IOC_FIEMAP)")),
        };
        Ok(MapCursor {
            file,
            size,
            pos: 0,
            source,
        })
    }

    /// The next span, or None at the end of the file.
    fn next_span(&mut self) -> Result<Option<Span>> {
        if self.pos >= self.size {
            return Ok(None);
        }
        let span = match &mut self.source {
            Source::Seek => match next_run(self.file.as_fd(), self.pos, self.size)? {
                Some(run) if run.offset > self.pos => hole(run.offset),
                Some(run) => Span {
                    end: run.offset + run.len,
                    place: Place::Opaque,
                },
                None => hole(self.size),
            },
            Source::Fiemap {
                batch,
                extents,
                idx,
                next,
            } => loop {
                if let Some(e) = extents.get(*idx) {
                    let end = e.fe_logical.saturating_add(e.fe_length).min(self.size);
                    if end <= self.pos {
                        *idx += 1;
                        continue;
                    }
                    if e.fe_logical > self.pos {
                        break hole(e.fe_logical.min(self.size));
                    }
                    break Span {
                        end,
                        place: Place::of(e),
                    };
                }
                let Some(start) = *next else {
                    break hole(self.size);
                };
                let (got, after) = batch
                    .fetch(self.file.as_fd(), start, sys::FIEMAP_FLAG_SYNC)
                    .map_err(|e| Error::os(e, "ioctl(FS_IOC_FIEMAP)"))?;
                extents.clear();
                extents.extend_from_slice(got);
                *idx = 0;
                *next = after;
                if extents.is_empty() {
                    *next = None;
                }
            },
        };
        self.pos = span.end;
        Ok(Some(span))
    }
}

fn hole(end: u64) -> Span {
    Span {
        end,
        place: Place::Hole,
    }
}

/// What a change asks of the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Send the target's bytes of the range.
    Data,
    /// The range is a hole in the target: punch it.
    Hole,
}

/// A changed range `[start, end)`, block-aligned (the end may be the image size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub start: u64,
    pub end: u64,
}

/// The changes of a target against an optional base, in increasing order, adjacent
/// changes of one kind merged. Memory: one FIEMAP batch per file and a few spans.
pub struct Diff {
    target: MapCursor,
    base: Option<MapCursor>,
    size: u64,
    t_span: Option<Span>,
    b_span: Option<Span>,
    /// Where the comparison stands (everything below is classified).
    pos: u64,
    /// Everything below has been handed out (block-aligned changes may reach ahead of `pos`).
    emitted: u64,
    /// Aligned changes waiting to be handed out, in order (at most three per raw change).
    queue: std::collections::VecDeque<Change>,
    /// The change being grown by merging.
    pending: Option<Change>,
}

impl Diff {
    /// Compare `target` (of `size` bytes) with `base` (of `base_size` bytes), or list the
    /// target's data without a base.
    pub fn new(target: &File, size: u64, base: Option<(&File, u64)>) -> Result<Self> {
        Ok(Diff {
            target: MapCursor::new(target, size)?,
            base: match base {
                // The base is compared over the target's size; beyond its own end it is holes.
                Some((fd, base_size)) => Some(MapCursor::new(fd, base_size.min(size))?),
                None => None,
            },
            size,
            t_span: None,
            b_span: None,
            pos: 0,
            emitted: 0,
            queue: Default::default(),
            pending: None,
        })
    }

    /// The next change, or None when the whole target has been compared.
    pub fn next_change(&mut self) -> Result<Option<Change>> {
        loop {
            if let Some(c) = self.queue.pop_front() {
                match &mut self.pending {
                    Some(p) if p.kind == c.kind && p.end == c.start => p.end = c.end,
                    _ => {
                        if let Some(done) = self.pending.replace(c) {
                            return Ok(Some(done));
                        }
                    }
                }
                continue;
            }
            match self.next_raw()? {
                Some(raw) => self.align(raw),
                None => return Ok(self.pending.take()),
            }
        }
    }

    /// Span of `cursor` that covers `pos` (the held one, or the next).
    fn span_at(cursor: &mut MapCursor, held: &mut Option<Span>, pos: u64) -> Result<Option<Span>> {
        loop {
            match held {
                Some(s) if s.end > pos => return Ok(Some(*s)),
                _ => {}
            }
            *held = cursor.next_span()?;
            if held.is_none() {
                return Ok(None);
            }
        }
    }

    /// The next unaligned change from the comparison of the two maps.
    fn next_raw(&mut self) -> Result<Option<Change>> {
        while self.pos < self.size {
            let Some(t) = Self::span_at(&mut self.target, &mut self.t_span, self.pos)? else {
                return Ok(None);
            };
            let (end, base_place) = match &mut self.base {
                None => (t.end, None),
                Some(cursor) => match Self::span_at(cursor, &mut self.b_span, self.pos)? {
                    Some(b) => (t.end.min(b.end), Some(b.place)),
                    // Past the base's end: holes.
                    None => (t.end, Some(Place::Hole)),
                },
            };
            let start = self.pos;
            self.pos = end;
            let kind = match base_place {
                None if t.place == Place::Hole => continue,
                None => ChangeKind::Data,
                Some(b) if t.place.same(b) => continue,
                Some(_) if t.place == Place::Hole => ChangeKind::Hole,
                Some(_) => ChangeKind::Data,
            };
            return Ok(Some(Change { kind, start, end }));
        }
        Ok(None)
    }

    /// Widen a raw change to whole blocks: data outwards; a hole keeps the blocks it
    /// covers entirely and its partial edge blocks become data.
    fn align(&mut self, c: Change) {
        let down = |x: u64| x / BLOCK * BLOCK;
        let size = self.size;
        let up = |x: u64| x.div_ceil(BLOCK).saturating_mul(BLOCK).min(size);
        match c.kind {
            ChangeKind::Data => self.push(ChangeKind::Data, down(c.start), up(c.end)),
            ChangeKind::Hole => {
                let (inner_start, inner_end) = (up(c.start), down(c.end));
                if inner_start >= inner_end {
                    return self.push(ChangeKind::Data, down(c.start), up(c.end));
                }
                self.push(ChangeKind::Data, down(c.start), inner_start);
                self.push(ChangeKind::Hole, inner_start, inner_end);
                self.push(ChangeKind::Data, inner_end, up(c.end));
            }
        }
    }

    fn push(&mut self, kind: ChangeKind, start: u64, end: u64) {
        let start = start.max(self.emitted);
        if start < end {
            self.queue.push_back(Change { kind, start, end });
            self.emitted = end;
        }
    }
}
