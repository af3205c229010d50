//! `freed::freed_bytes` on an ordinary filesystem (no reflinks: the tests' temp dir):
//! hard links outside the set keep an inode, each inode counts once, and missing,
//! symlinked or FIFO entries are skipped without being opened. The reflink cases
//! (extents shared within and outside the set) run on XFS and btrfs in
//! `__test__/helpers/pool-space.ts`, checked against statvfs.

use std::fs;
use std::path::Path;

use reflink_pool_core::dir::Entry;
use reflink_pool_core::freed::freed_bytes;

const MIB: u64 = 1 << 20;

fn data_file(path: &Path, bytes: u64) {
    // Non-zero, so no filesystem can leave it as holes.
    fs::write(path, vec![0x5a; bytes as usize]).unwrap();
    fs::File::open(path).unwrap().sync_all().unwrap();
}

fn entries(dir: &Path, names: &[&str]) -> Vec<Entry> {
    names
        .iter()
        .map(|n| Entry::of_path(&dir.join(n)).unwrap())
        .collect()
}

#[test]
fn hard_links_outside_the_set_keep_the_inode_and_each_inode_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    data_file(&d.join("a"), MIB);
    fs::hard_link(d.join("a"), d.join("b")).unwrap();
    data_file(&d.join("c"), MIB / 2);

    let f = freed_bytes(&entries(d, &["a"]), &entries(d, &["b", "c"])).unwrap();
    assert_eq!((f.bytes, f.files), (0, 1), "b still links a's inode");

    let f = freed_bytes(&entries(d, &["a", "b"]), &entries(d, &["c"])).unwrap();
    assert_eq!(
        (f.bytes, f.files),
        (MIB, 2),
        "both links go: the inode's data, once"
    );

    let f = freed_bytes(&entries(d, &["a", "b", "c"]), &[]).unwrap();
    assert_eq!(f.bytes, MIB + MIB / 2);
}

#[test]
fn missing_symlinked_and_fifo_entries_are_skipped_unopened() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    data_file(&d.join("a"), MIB);
    std::os::unix::fs::symlink(d.join("a"), d.join("link")).unwrap();
    nix::unistd::mkfifo(
        &d.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    // Opening the FIFO would block forever: returning at all shows it was never opened.
    let f = freed_bytes(
        &entries(d, &["link", "fifo", "gone"]),
        &entries(d, &["fifo", "gone"]),
    )
    .unwrap();
    assert_eq!(
        (f.bytes, f.files),
        (0, 0),
        "the symlink is not followed to a"
    );
    let f = freed_bytes(&entries(d, &["a", "link"]), &entries(d, &["fifo"])).unwrap();
    assert_eq!((f.bytes, f.files), (MIB, 1));
}
