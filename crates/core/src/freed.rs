//! What removing a set of files would give back: the bytes of their extents that no file
//! outside the set still references (`usage --if-removed`, docs/design.md §7).
//!
//! Why: with reflinks a file's exclusive bytes (`usage`) miss the extents shared only
//! *among* the files removed together (a template's clean image, precache and revisions
//! share most of their data), and its allocated bytes count extents a clone outside the
//! set keeps alive. Strategy: fstat every removed file; an inode whose links are not all
//! in the set survives, so it frees nothing and its extents count as kept. FIEMAP each
//! removed inode once (FIEMAP_FLAG_SYNC: delayed allocations show up): an extent not
//! flagged SHARED is freed; a SHARED one becomes a candidate physical range. The union
//! of the candidates (each byte once, however many removed files share it) minus every
//! range a file outside the set maps (its SHARED extents only: an extent it has alone
//! cannot be in the set) is freed too. A shared extent whose address is not known
//! (UNKNOWN/DELALLOC/INLINE) counts as kept. Files outside the list (outside the pool)
//! are not seen: a reflink copy made there makes this an overestimate; so does btrfs,
//! which frees an extent only when every part of it is unreferenced. Memory: the
//! candidate ranges, and kept ranges only where they meet a candidate (compacted as they
//! grow). Costs: one fstat and one FIEMAP per 256 extents per file, no data read.
//! No cancellation: metadata only.

use std::collections::HashMap;
use std::os::fd::AsFd;

use nix::sys::stat::fstat;

use crate::dir::Entry;
use crate::error::{codes, Error, Result};
use crate::sys::{self, FiemapExtent};

/// What removing the files would free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Freed {
    /// Bytes given back to the filesystem (data extents; metadata not counted).
    pub bytes: u64,
    /// Files of the set that exist (each name once).
    pub files: u64,
}

/// A physical range `[start, end)`.
type Range = (u64, u64);

/// Flags that leave an extent without a comparable physical address.
const NO_ADDRESS: u32 = sys::FIEMAP_EXTENT_UNKNOWN
    | sys::FIEMAP_EXTENT_DELALLOC
    | sys::FIEMAP_EXTENT_DATA_INLINE
    | sys::FIEMAP_EXTENT_DATA_TAIL
    | sys::FIEMAP_EXTENT_NOT_ALIGNED;

/// The bytes removing every file of `removed` would give back, given that the files of
/// `others` stay. Missing entries (gone meanwhile) and non-regular ones are skipped.
pub fn freed_bytes(removed: &[Entry], others: &[Entry]) -> Result<Freed> {
    let mut freed = Freed::default();
    // (dev, ino) -> (links in the set, the inode's link count, one entry of it).
    let mut inodes: HashMap<(u64, u64), (u64, u64, &Entry)> = HashMap::new();
    for entry in removed {
        let Some(st) = regular_stat(entry)? else {
            continue;
        };
        freed.files += 1;
        let slot = inodes
            .entry((st.st_dev, st.st_ino))
            .or_insert((0, st.st_nlink, entry));
        slot.0 += 1;
    }
    let mut candidates: Vec<Range> = Vec::new();
    let mut kept_inodes: Vec<&Entry> = Vec::new();
    for &(links, nlink, entry) in inodes.values() {
        if links < nlink {
            kept_inodes.push(entry); // a link outside the set keeps the inode
            continue;
        }
        let st_blocks = walk(entry, sys::FIEMAP_FLAG_SYNC, |e| {
            if e.fe_flags & sys::FIEMAP_EXTENT_SHARED == 0 {
                freed.bytes += e.fe_length;
            } else if e.fe_flags & NO_ADDRESS == 0 {
                candidates.push((e.fe_physical, e.fe_physical.saturating_add(e.fe_length)));
            }
        })?;
        if let Some(allocated) = st_blocks {
            freed.bytes += allocated; // no extent map: all of it is this inode's own
        }
    }
    let candidates = merge(candidates);
    let total: u64 = candidates.iter().map(|(s, e)| e - s).sum();
    if total == 0 {
        return Ok(freed);
    }
    let mut kept: Vec<Range> = Vec::new();
    for entry in kept_inodes {
        collect_kept(entry, &candidates, &mut kept)?;
    }
    for entry in others {
        match regular_stat(entry)? {
            // A link to an inode of the set: seen above (as kept, since its links < nlink).
            Some(st) if inodes.contains_key(&(st.st_dev, st.st_ino)) => {}
            Some(_) => collect_kept(entry, &candidates, &mut kept)?,
            None => {}
        }
    }
    let covered: u64 = merge(kept).iter().map(|(s, e)| e - s).sum();
    freed.bytes += total - covered.min(total);
    Ok(freed)
}

/// Add the parts of `entry`'s shared extents that meet a candidate to `kept` (compacted
/// when it grows past the candidates, so memory stays near theirs).
fn collect_kept(entry: &Entry, candidates: &[Range], kept: &mut Vec<Range>) -> Result<()> {
    walk(entry, 0, |e| {
        if e.fe_flags & sys::FIEMAP_EXTENT_SHARED != 0 {
            overlaps(
                candidates,
                (e.fe_physical, e.fe_physical.saturating_add(e.fe_length)),
                kept,
            );
        }
    })?;
    if kept.len() > 2 * candidates.len() + 4096 {
        *kept = merge(std::mem::take(kept));
    }
    Ok(())
}

/// lstat of a regular file; None when missing or not a regular file (never opened).
fn regular_stat(entry: &Entry) -> Result<Option<nix::sys::stat::FileStat>> {
    Ok(entry
        .stat()?
        .filter(|st| crate::dir::Kind::of(st) == crate::dir::Kind::File))
}

/// FIEMAP every extent of `entry` into `each`; `Some(allocated bytes)` when the
/// filesystem has no extent map (then `each` saw nothing). A file gone meanwhile maps
/// nothing.
fn walk(entry: &Entry, flags: u32, mut each: impl FnMut(&FiemapExtent)) -> Result<Option<u64>> {
    let f = match entry.open_read() {
        Ok(f) => f,
        Err(e) if e.errno == Some(libc::ENOENT) => return Ok(None),
        // Replaced by a symlink or FIFO since the lstat: nothing of ours to count.
        Err(e)
            if e.code == Some(codes::ERR_UNSAFE_PATH)
                || e.code == Some(codes::ERR_NOT_REGULAR_FILE) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    match sys::fiemap(f.as_fd(), flags, |batch| batch.iter().for_each(&mut each)) {
        Ok(()) => Ok(None),
        Err(e) if sys::fiemap_unsupported(e) => {
            let st =
                fstat(f.as_fd()).map_err(|e| Error::os(e, "fstat").with_path(entry.shown()))?;
            Ok(Some(u64::try_from(st.st_blocks).unwrap_or(0) * 512))
        }
        Err(e) => Err(Error::os(e, "ioctl(FS_IOC_FIEMAP)").with_path(entry.shown())),
    }
}

/// Sorted, disjoint, non-empty ranges covering the same bytes as `ranges`.
fn merge(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.retain(|(s, e)| e > s);
    ranges.sort_unstable();
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Push the parts of `range` that lie inside the merged `candidates` into `into`.
fn overlaps(candidates: &[Range], (start, end): Range, into: &mut Vec<Range>) {
    let first = candidates.partition_point(|&(_, e)| e <= start);
    for &(s, e) in candidates[first..].iter().take_while(|&&(s, _)| s < end) {
        into.push((s.max(start), e.min(end)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_joins_overlapping_and_touching_ranges() {
        assert_eq!(
            merge(vec![(10, 20), (0, 5), (5, 8), (15, 30), (40, 40)]),
            vec![(0, 8), (10, 30)]
        );
    }

    #[test]
    fn overlaps_clips_to_the_candidates() {
        let c = [(0, 10), (20, 30), (40, 50)];
        let mut got = Vec::new();
        overlaps(&c, (5, 45), &mut got);
        assert_eq!(got, vec![(5, 10), (20, 30), (40, 45)]);
        got.clear();
        overlaps(&c, (10, 20), &mut got);
        assert!(got.is_empty());
    }
}
