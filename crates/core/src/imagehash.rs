//! The whole-image checksum of the send stream (docs/design.md §8).
//!
//! Why: a receiver must be able to tell that its final image is the sender's, yet an
//! incremental send must not read the unchanged gigabytes to say so. Strategy: the
//! image hash is the wrapping sum (mod 2^128) of one XXH3-128 per `BLOCK` (seeded with
//! the block's index, the last block padded with zeros), where an all-zero block (a
//! hole) adds nothing. A sum can be updated: the new image's hash is the base's minus
//! the changed blocks as they were plus the changed blocks as they are, so both ends
//! read only the changed ranges. Costs: one pass over the bytes hashed (XXH3 runs at
//! memory speed); a full hash reads only the data runs. Cancellation: `Control::check`
//! before every `CHUNK`.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use xxhash_rust::xxh3::xxh3_128_with_seed;

use crate::control::Control;
use crate::diff::BLOCK;
use crate::error::{Error, Result};
use crate::extents::next_run;

/// Bytes read per step when hashing a range.
pub const CHUNK: usize = 1 << 20;

static ZERO: [u8; BLOCK as usize] = [0; BLOCK as usize];

/// The hash contribution of `data`, which starts at the block-aligned `offset`.
pub fn sum_blocks(data: &[u8], offset: u64) -> u128 {
    debug_assert_eq!(offset % BLOCK, 0);
    let mut sum = 0u128;
    for (index, block) in (offset / BLOCK..).zip(data.chunks(BLOCK as usize)) {
        if block != &ZERO[..block.len()] {
            let h = if block.len() == BLOCK as usize {
                xxh3_128_with_seed(block, index)
            } else {
                let mut padded = [0u8; BLOCK as usize];
                padded[..block.len()].copy_from_slice(block);
                xxh3_128_with_seed(&padded, index)
            };
            sum = sum.wrapping_add(h);
        }
    }
    sum
}

/// Read `[start, end)` of `file` (block-aligned `start`) through `buf` and sum its blocks.
pub fn sum_range(
    file: &File,
    start: u64,
    end: u64,
    buf: &mut Vec<u8>,
    ctl: &Control,
) -> Result<u128> {
    buf.resize(CHUNK, 0);
    let mut sum = 0u128;
    let mut pos = start;
    while pos < end {
        ctl.check()?;
        let n = (end - pos).min(CHUNK as u64) as usize;
        file.read_exact_at(&mut buf[..n], pos)
            .map_err(|e| Error::io(e, "pread"))?;
        sum = sum.wrapping_add(sum_blocks(&buf[..n], pos));
        pos += n as u64;
    }
    Ok(sum)
}

/// The image hash of the first `size` bytes of `file`, reading only its data runs.
pub fn image_hash(file: &File, size: u64, ctl: &Control) -> Result<u128> {
    let mut buf = Vec::new();
    let mut sum = 0u128;
    // Everything below has been hashed (runs are widened to whole blocks).
    let mut done = 0u64;
    let mut pos = 0u64;
    while let Some(run) = next_run(file.as_fd(), pos, size)? {
        pos = run.offset + run.len;
        let start = (run.offset / BLOCK * BLOCK).max(done);
        let end = pos.div_ceil(BLOCK).saturating_mul(BLOCK).min(size);
        if start < end {
            sum = sum.wrapping_add(sum_range(file, start, end, &mut buf, ctl)?);
            done = end;
        }
        ctl.report(pos, size);
    }
    Ok(sum)
}

/// A hash as 32 lowercase hex digits (how it crosses into JS and the metadata files).
pub fn to_hex(v: u128) -> String {
    format!("{v:032x}")
}

/// Parse 32 hex digits.
pub fn from_hex(s: &str) -> Option<u128> {
    (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(s, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_add_nothing_and_sums_update() {
        let mut a = vec![0u8; 3 * BLOCK as usize];
        assert_eq!(sum_blocks(&a, 0), 0);
        a[5] = 1;
        let before = sum_blocks(&a, 0);
        let mut b = a.clone();
        b[BLOCK as usize + 7] = 9;
        let changed_old = sum_blocks(&a[BLOCK as usize..2 * BLOCK as usize], BLOCK);
        let changed_new = sum_blocks(&b[BLOCK as usize..2 * BLOCK as usize], BLOCK);
        let updated = before.wrapping_sub(changed_old).wrapping_add(changed_new);
        assert_eq!(updated, sum_blocks(&b, 0));
        // The same bytes at another block index hash differently.
        assert_ne!(
            sum_blocks(&a[..BLOCK as usize], 0),
            sum_blocks(&a[..BLOCK as usize], BLOCK)
        );
        // A short last block is padded with zeros.
        assert_eq!(sum_blocks(&a[..10], 0), sum_blocks(&a[..BLOCK as usize], 0));
    }

    #[test]
    fn hex_round_trip() {
        let v = 0x0123_4567_89ab_cdef_0011_2233_4455_6677u128;
        assert_eq!(from_hex(&to_hex(v)), Some(v));
        assert_eq!(from_hex("xyz"), None);
    }
}
