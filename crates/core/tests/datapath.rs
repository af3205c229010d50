//! The stream data path: `ZeroSkipWriter` (stream import), `SparseReader` (stream export),
//! `extents::next_run` (bounded walks of the run map) and copies with `sparse: always`.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};

use reflink_pool_core::dir::Entry;
use reflink_pool_core::extents::{data_runs, next_run};
use reflink_pool_core::sparse::create_sparse_file;
use reflink_pool_core::sparse_reader::{SparseReader, HOLE_MIN};

/// Open `path` as the stream readers do (a regular file, never followed).
fn open_regular(path: &std::path::Path) -> reflink_pool_core::Result<File> {
    Entry::of_path(path)?.open_read()
}
use reflink_pool_core::zeroskip::{is_zero, ZeroSkipWriter};
use reflink_pool_core::{copy_file, Control, CopyMethod, CopyOptions, ReflinkMode, SparseMode};

const MIB: u64 = 1 << 20;

/// A deterministic pseudo-random byte stream (never a whole zero block by chance).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8) | 1
        })
        .collect()
}

/// A 16 MiB image: data at 1 MiB (100 KiB), 3 MiB + 4 KiB (8 KiB), and a run touching the end.
fn layout(path: &std::path::Path) -> Vec<u8> {
    let mut want = vec![0u8; 16 * MIB as usize];
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .unwrap();
    f.set_len(16 * MIB).unwrap();
    for (off, len, seed) in [
        (MIB, 100 << 10, 1),
        (3 * MIB + 4096, 8192, 2),
        (16 * MIB - 12288, 12288, 3),
    ] {
        let data = noise(len as usize, seed);
        f.write_all_at(&data, off).unwrap();
        want[off as usize..(off + len) as usize].copy_from_slice(&data);
    }
    f.sync_all().unwrap();
    want
}

#[test]
fn is_zero_sees_any_nonzero_byte() {
    let mut b = vec![0u8; 4096 + 7];
    assert!(is_zero(&b));
    for i in [0, 63, 64, 4095, 4096 + 6] {
        b[i] = 1;
        assert!(!is_zero(&b), "byte {i}");
        b[i] = 0;
    }
    assert!(is_zero(&[]));
}

#[test]
fn zeroskip_writer_stays_sparse_across_any_cut() {
    let dir = tempfile::tempdir().unwrap();
    let block = 4096usize;
    // 1 MiB of zeros, 10 000 bytes of data, 1 MiB of zeros, a 100-byte tail of data.
    let mut stream = vec![0u8; MIB as usize];
    stream.extend(noise(10_000, 7));
    stream.extend(vec![0u8; MIB as usize]);
    stream.extend(noise(100, 8));
    for cut in [1usize, 777, 4096, 65_536, 100_003] {
        let p = dir.path().join(format!("import-{cut}"));
        create_sparse_file(&p, stream.len() as u64).unwrap();
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        let mut w = ZeroSkipWriter::new(block).unwrap();
        for chunk in stream.chunks(cut) {
            w.write(f.as_fd(), chunk).unwrap();
        }
        w.finish(f.as_fd()).unwrap();
        assert_eq!(w.position(), stream.len() as u64);
        // Only the blocks holding data: 10 000 bytes over 3 blocks, and the last partial
        // block (from 2 MiB + 8192 to the end: 1808 zeros then the 100-byte tail).
        assert_eq!(w.written, 3 * block as u64 + 1908, "cut {cut}");
        f.sync_all().unwrap();
        assert_eq!(fs::read(&p).unwrap(), stream, "cut {cut}");
        assert!(
            fs::metadata(&p).unwrap().blocks() * 512 <= 8 * block as u64,
            "cut {cut}"
        );
    }
    assert!(ZeroSkipWriter::new(0).is_err());
}

#[test]
fn sparse_reader_reads_data_and_reports_long_holes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img");
    let want = layout(&p);
    for buf_len in [4096usize, 65_536, 1 << 20, 4 << 20] {
        let mut r = SparseReader::new(open_regular(&p).unwrap(), 0, u64::MAX).unwrap();
        assert_eq!(r.end(), 16 * MIB);
        let mut got = Vec::new();
        let mut buf = vec![0xAAu8; buf_len];
        let mut holes = Vec::new();
        loop {
            let seg = r.read(&mut buf).unwrap();
            if seg.data == 0 && seg.hole == 0 {
                break;
            }
            got.extend_from_slice(&buf[..seg.data]);
            if seg.hole > 0 {
                assert!(seg.hole >= HOLE_MIN || r.position() == 16 * MIB);
                holes.push(seg.hole);
                got.resize(got.len() + seg.hole as usize, 0);
            }
        }
        assert_eq!(got.len(), want.len(), "buffer {buf_len}");
        assert!(got == want, "buffer {buf_len}: content differs");
        // The 15 MiB of holes came as holes, not as buffers of zeros.
        assert!(holes.iter().sum::<u64>() >= 15 * MIB - 200_000, "{holes:?}");
    }
}

#[test]
fn sparse_reader_honours_start_and_end() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img");
    let want = layout(&p);
    for (start, end) in [
        (0, 1),
        (MIB + 10, MIB + 5000),
        (3 * MIB, 17 * MIB),
        (20 * MIB, 30 * MIB),
    ] {
        let mut r = SparseReader::new(open_regular(&p).unwrap(), start, end).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65_536];
        loop {
            let seg = r.read(&mut buf).unwrap();
            if seg.data == 0 && seg.hole == 0 {
                break;
            }
            got.extend_from_slice(&buf[..seg.data]);
            got.resize(got.len() + seg.hole as usize, 0);
        }
        let (s, e) = (start.min(16 * MIB) as usize, end.min(16 * MIB) as usize);
        assert!(got == want[s..e.max(s)], "[{start}, {end})");
    }
}

#[test]
fn open_regular_refuses_symlinks_and_fifos() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img");
    fs::write(&p, b"x").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    assert_eq!(
        open_regular(&link).unwrap_err().code_name(),
        "ERR_NOT_REGULAR_FILE"
    );
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert_eq!(
        open_regular(&fifo).unwrap_err().code_name(),
        "ERR_NOT_REGULAR_FILE"
    );
}

#[test]
fn next_run_walks_the_map_one_run_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img");
    layout(&p);
    let f = File::open(&p).unwrap();
    let all: Vec<_> = data_runs(f.as_fd(), 16 * MIB)
        .collect::<Result<_, _>>()
        .unwrap();
    let mut walked = Vec::new();
    let mut pos = 0;
    while let Some(run) = next_run(f.as_fd(), pos, 16 * MIB).unwrap() {
        pos = run.offset + run.len;
        walked.push(run);
    }
    assert_eq!(walked, all);
    assert!(all.len() >= 3, "{all:?}");
    // From inside a run: clipped to start there.
    let mid = next_run(f.as_fd(), MIB + 10, 16 * MIB).unwrap().unwrap();
    assert_eq!(mid.offset, MIB + 10);
}

#[test]
fn copy_sparse_always_turns_zero_blocks_into_holes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("raw");
    // Fully allocated: 4 MiB of zeros with 64 KiB of data in the middle.
    let mut data = vec![0u8; 4 * MIB as usize];
    data[2 * MIB as usize..2 * MIB as usize + 65_536].copy_from_slice(&noise(65_536, 3));
    fs::write(&src, &data).unwrap();
    assert!(fs::metadata(&src).unwrap().blocks() * 512 >= 4 * MIB);
    let dst = dir.path().join("dst");
    let opts = CopyOptions {
        sparse: SparseMode::Always,
        ..Default::default()
    };
    let out = copy_file(&src, &dst, &opts, &Control::NONE).unwrap();
    assert_eq!(out.method, CopyMethod::ReadWrite);
    assert_eq!(fs::read(&dst).unwrap(), data);
    let allocated = fs::metadata(&dst).unwrap().blocks() * 512;
    assert!(allocated <= 65_536 + 8192, "allocated {allocated}");
    let refused = CopyOptions {
        sparse: SparseMode::Always,
        reflink: ReflinkMode::Always,
        ..Default::default()
    };
    let e = copy_file(&src, &dst, &refused, &Control::NONE).unwrap_err();
    assert_eq!(e.code_name(), "ERR_INVALID_ARG_VALUE");
}
