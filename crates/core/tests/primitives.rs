//! The small primitives: sparse create, resize, durable ops, write_file, extents,
//! zeroskip, usage, fs stats, probe, error formatting.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

use reflink_pool_core::dir::Dir;
use reflink_pool_core::durable;
use reflink_pool_core::extents::{data_runs, DataRun};
use reflink_pool_core::fsstats::fs_stats;
use reflink_pool_core::probe::is_reflink_supported;
use reflink_pool_core::resize::resize_file;
use reflink_pool_core::sparse::create_sparse_file;
use reflink_pool_core::tempname::write_file;
use reflink_pool_core::usage::file_usage;
use reflink_pool_core::zeroskip::write_skipping_zeros;
use reflink_pool_core::{copy_file, Control, CopyOptions, Error};

const MIB: u64 = 1 << 20;

/// Every data run, collected (the core hands them out lazily).
fn all_runs(fd: std::os::fd::BorrowedFd, size: u64) -> Vec<DataRun> {
    data_runs(fd, size).collect::<Result<_, _>>().unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn sparse_file_has_size_and_no_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("vm/private.img");
    create_sparse_file(&p, 10 << 30).unwrap();
    let md = fs::metadata(&p).unwrap();
    assert_eq!(md.len(), 10 << 30);
    assert_eq!(md.blocks(), 0);
    assert_eq!(md.permissions().mode() & 0o7777, 0o600);
    // replaces an existing file (new inode), leaves no temp
    fs::write(&p, b"data").unwrap();
    let ino = fs::metadata(&p).unwrap().ino();
    create_sparse_file(&p, 4096).unwrap();
    let md = fs::metadata(&p).unwrap();
    assert_eq!((md.len(), md.blocks()), (4096, 0));
    assert_ne!(md.ino(), ino);
    assert_eq!(names(&dir.path().join("vm")), vec!["private.img"]);
}

#[test]
fn resize_extends_with_hole_and_shrinks_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.img");
    fs::write(&p, vec![7u8; 8192]).unwrap();
    let ino = fs::metadata(&p).unwrap().ino();
    resize_file(&p, 100 * MIB).unwrap();
    let md = fs::metadata(&p).unwrap();
    assert_eq!(md.len(), 100 * MIB);
    assert_eq!(md.ino(), ino, "in place");
    assert!(md.blocks() * 512 < MIB, "extension is a hole");
    resize_file(&p, 100).unwrap();
    assert_eq!(fs::read(&p).unwrap(), vec![7u8; 100]);
    let e = resize_file(&dir.path().join("missing"), 1).unwrap_err();
    assert_eq!(e.code_name(), "ENOENT");
    assert_eq!(
        e.path.as_deref(),
        Some(dir.path().join("missing").as_path())
    );
}

#[test]
fn durable_ops() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = Dir::open_root(d).unwrap();
    let at = |rel: &str| root.entry(Path::new(rel)).unwrap();
    root.create_dir_all(Path::new("x/y/z")).unwrap();
    assert!(d.join("x/y/z").is_dir());
    root.create_dir_all(Path::new("x/y/z")).unwrap(); // idempotent
    durable::mkdir_path(&d.join("p/q")).unwrap();
    durable::mkdir_path(&d.join("p/q")).unwrap();
    fs::write(d.join("file"), b"f").unwrap();
    let e = durable::mkdir_path(&d.join("file/sub")).unwrap_err();
    assert_eq!(e.code_name(), "ENOTDIR");
    let e = root.create_dir_all(Path::new("file/sub")).unwrap_err();
    assert_eq!(
        e.code_name(),
        "ERR_UNSAFE_PATH",
        "a file where the pool needs a directory"
    );
    assert_eq!(e.errno(), Some(nix::errno::Errno::ENOTDIR));

    durable::hardlink(&at("file"), &at("x/link")).unwrap();
    assert_eq!(
        fs::metadata(d.join("file")).unwrap().ino(),
        fs::metadata(d.join("x/link")).unwrap().ino()
    );
    let e = durable::hardlink(&at("file"), &at("x/link")).unwrap_err();
    assert_eq!(e.code_name(), "EEXIST");
    assert_eq!(e.syscall, "link");
    assert_eq!(e.dest.as_deref(), Some(d.join("x/link").as_path()));

    durable::rename(&at("x/link"), &at("x/y/moved")).unwrap();
    assert!(!d.join("x/link").exists());
    assert_eq!(fs::read(d.join("x/y/moved")).unwrap(), b"f");
    let e = durable::rename(&at("nope"), &at("x/y/moved")).unwrap_err();
    assert_eq!(e.code_name(), "ENOENT");

    assert!(durable::remove(&at("x/y/moved")).unwrap());
    assert!(!durable::remove(&at("x/y/moved")).unwrap());
    assert!(!d.join("x/y/moved").exists());

    durable::fsync_file(&at("file")).unwrap();
    root.fsync().unwrap();
    assert_eq!(
        root.open_dir(Path::new("gone")).unwrap_err().code_name(),
        "ENOENT"
    );
    assert!(durable::remove_dir(&at("x/y/z")).unwrap());
    assert!(!durable::remove_dir(&at("x")).unwrap(), "not empty: kept");
}

#[test]
fn write_file_replaces_atomically_with_mode() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("meta/pool.json");
    let root = Dir::open_root(dir.path()).unwrap();
    let target = root.entry_creating(Path::new("meta/pool.json")).unwrap();
    write_file(&target, b"{\"a\":1}", 0o644).unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"{\"a\":1}");
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
        0o644
    );
    // an open reader of the old version keeps seeing it: a new inode replaced it
    let old = fs::File::open(&p).unwrap();
    write_file(&target, b"{\"a\":2}", 0o600).unwrap();
    let mut buf = [0u8; 7];
    old.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"{\"a\":1}");
    assert_eq!(fs::read(&p).unwrap(), b"{\"a\":2}");
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert_eq!(names(&dir.path().join("meta")), vec!["pool.json"]);
}

#[test]
fn extents_lists_data_runs() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.img");
    let f = fs::File::create(&p).unwrap();
    f.set_len(16 * MIB).unwrap();
    f.write_all_at(&vec![1u8; MIB as usize], 2 * MIB).unwrap();
    f.write_all_at(&vec![2u8; 2 * MIB as usize], 10 * MIB)
        .unwrap();
    f.sync_all().unwrap();
    let runs = all_runs(f.as_fd(), 16 * MIB);
    let expected = vec![
        DataRun {
            offset: 2 * MIB,
            len: MIB,
        },
        DataRun {
            offset: 10 * MIB,
            len: 2 * MIB,
        },
    ];
    assert_eq!(runs, expected);
    // clipped to `size`
    assert_eq!(
        all_runs(f.as_fd(), 11 * MIB).last().copied(),
        Some(DataRun {
            offset: 10 * MIB,
            len: MIB
        })
    );
    assert_eq!(all_runs(f.as_fd(), 0), vec![]);
    let empty = fs::File::create(dir.path().join("hole.img")).unwrap();
    empty.set_len(MIB).unwrap();
    assert_eq!(all_runs(empty.as_fd(), MIB), vec![]);
}

#[test]
fn zeroskip_leaves_zero_blocks_as_holes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("import.img");
    create_sparse_file(&p, 8 * MIB).unwrap();
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    let block = 64 * 1024;
    // 1 MiB: a zero block, a data block, zeros to the end
    let mut buf = vec![0u8; MIB as usize];
    buf[block + 3] = 9;
    let written = write_skipping_zeros(f.as_fd(), 4 * MIB, &buf, block).unwrap();
    assert_eq!(written, block as u64);
    // misaligned start: the partial edge block is written even if zero
    let written = write_skipping_zeros(f.as_fd(), 100, &vec![0u8; 2 * block], block).unwrap();
    assert_eq!(
        written,
        (block - 100 + 100) as u64,
        "two partial edges, one zero block skipped"
    );
    f.sync_all().unwrap();
    let runs = all_runs(f.as_fd(), 8 * MIB);
    assert!(runs
        .iter()
        .any(|r| r.offset <= 4 * MIB + block as u64
            && r.offset + r.len >= 4 * MIB + 2 * block as u64));
    assert!(!runs.iter().any(|r| r.offset + r.len > 5 * MIB), "{runs:?}");
    let data = fs::read(&p).unwrap();
    assert_eq!(data.len() as u64, 8 * MIB);
    assert_eq!(data[(4 * MIB) as usize + block + 3], 9);
    assert_eq!(data.iter().filter(|&&b| b != 0).count(), 1);
    assert!(fs::metadata(&p).unwrap().blocks() * 512 <= 4 * block as u64);
    let e = write_skipping_zeros(f.as_fd(), 0, &buf, 0).unwrap_err();
    assert_eq!(e.code_name(), "ERR_INVALID_ARG_VALUE");
}

#[test]
fn usage_splits_shared_and_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.img");
    let f = fs::File::create(&src).unwrap();
    f.set_len(32 * MIB).unwrap();
    f.write_all_at(&vec![3u8; 4 * MIB as usize], 0).unwrap();
    f.write_all_at(&vec![4u8; MIB as usize], 16 * MIB).unwrap();
    drop(f);
    let u = file_usage(&src).unwrap();
    println!("usage: {u:?}");
    assert_eq!(u.size, 32 * MIB);
    assert!(u.allocated >= 5 * MIB && u.allocated < 6 * MIB, "{u:?}");
    assert_eq!(u.shared, 0);
    assert!(u.extents >= 2, "{u:?}");
    assert_eq!(u.exclusive, 5 * MIB);
    let dst = dir.path().join("b.img");
    let out = copy_file(&src, &dst, &CopyOptions::default(), &Control::NONE).unwrap();
    let (ua, ub) = (file_usage(&src).unwrap(), file_usage(&dst).unwrap());
    println!("after {}: {ua:?} {ub:?}", out.method.as_str());
    if is_reflink_supported(dir.path(), None).unwrap() {
        assert_eq!(ua.shared, 5 * MIB);
        assert_eq!(ub.shared, 5 * MIB);
        assert_eq!(ub.exclusive, 0);
    } else {
        assert_eq!((ua.shared, ub.shared), (0, 0));
        assert_eq!(ub.exclusive, 5 * MIB);
    }
    assert_eq!(
        file_usage(&dir.path().join("nope"))
            .unwrap_err()
            .code_name(),
        "ENOENT"
    );
}

#[test]
fn usage_counts_many_extents_across_batches() {
    use nix::fcntl::{fallocate, FallocateFlags};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("frag.img");
    let f = fs::File::create(&p).unwrap();
    // 600 separate 4 KiB data blocks (more than one FIEMAP batch): write it all, then
    // punch the gaps (writing sparse blocks lets XFS preallocate into the gaps).
    f.write_all_at(&vec![1u8; 600 * 3 * 4096], 0).unwrap();
    f.sync_all().unwrap();
    let punch = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
    for i in 0..600i64 {
        fallocate(f.as_fd(), punch, (i * 3 + 1) * 4096, 2 * 4096).unwrap();
    }
    drop(f);
    let u = file_usage(&p).unwrap();
    println!("fragmented: {u:?}");
    assert_eq!(u.extents, 600, "{u:?}");
    assert_eq!(u.exclusive + u.shared, 600 * 4096);
}

#[test]
fn fs_stats_of_temp_dir() {
    let dir = tempfile::tempdir().unwrap();
    let s = fs_stats(dir.path()).unwrap();
    let v = nix::sys::statvfs::statvfs(dir.path()).unwrap();
    assert_eq!(s.size, v.blocks() as u64 * v.fragment_size() as u64);
    assert!(s.used > 0 && s.used <= s.size, "{s:?}");
    assert_eq!(
        fs_stats(&dir.path().join("nope")).unwrap_err().code_name(),
        "ENOENT"
    );
}

#[test]
fn probe_answers_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let supported = is_reflink_supported(dir.path(), None).unwrap();
    let fs_type = nix::sys::statfs::statfs(dir.path())
        .unwrap()
        .filesystem_type();
    println!("reflink supported in temp dir: {supported} (fs magic {fs_type:?})");
    // ext4 and tmpfs never reflink
    if fs_type == nix::sys::statfs::EXT4_SUPER_MAGIC || fs_type == nix::sys::statfs::TMPFS_MAGIC {
        assert!(!supported);
    }
    if fs_type == nix::sys::statfs::BTRFS_SUPER_MAGIC {
        assert!(supported);
    }
    assert_eq!(names(dir.path()), Vec::<String>::new());
    // across filesystems: never
    if Path::new("/dev/shm").is_dir() {
        let other = tempfile::tempdir_in("/dev/shm").unwrap();
        if fs::metadata(other.path()).unwrap().dev() != fs::metadata(dir.path()).unwrap().dev() {
            assert!(!is_reflink_supported(dir.path(), Some(other.path())).unwrap());
        }
    }
    let e = is_reflink_supported(&dir.path().join("missing"), None).unwrap_err();
    assert_eq!(e.code_name(), "ENOENT");
}

#[test]
fn error_display_is_node_style() {
    let e = Error::os(nix::errno::Errno::ENOSPC, "write")
        .with_path("/p/a.img")
        .with_dest("/p/b.img");
    assert_eq!(
        e.to_string(),
        "ENOSPC: no space left on device, write '/p/a.img' -> '/p/b.img'"
    );
    let e = Error::lib("ERR_REFLINK_UNSUPPORTED", "ioctl(FICLONE)", "cannot clone");
    assert_eq!(
        e.to_string(),
        "ERR_REFLINK_UNSUPPORTED: cannot clone, ioctl(FICLONE)"
    );
    let e = Error::os(nix::errno::Errno::EXDEV, "ioctl(FICLONE)")
        .with_path("/a")
        .with_code("ERR_REFLINK_UNSUPPORTED")
        .with_detail("no reflink");
    assert_eq!(e.code_name(), "ERR_REFLINK_UNSUPPORTED");
    assert_eq!(e.errno, Some(libc::EXDEV));
    assert_eq!(
        e.to_string(),
        "ERR_REFLINK_UNSUPPORTED: cross-device link, no reflink, ioctl(FICLONE) '/a'"
    );
    let io = std::io::Error::from_raw_os_error(libc::EACCES);
    assert_eq!(
        Error::io(io, "open").with_path("/x").to_string(),
        "EACCES: permission denied, open '/x'"
    );
}
