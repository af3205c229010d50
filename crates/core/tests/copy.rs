//! copy_file on whatever filesystem the temp dir lives on; the expected method follows
//! what the filesystem can do (probed), and each test says which one ran.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use reflink_pool_core::extents::data_runs;
use reflink_pool_core::probe::is_reflink_supported;
use reflink_pool_core::usage::file_usage;
use reflink_pool_core::{copy_file, Control, CopyMethod, CopyOptions, CopyOutcome, ReflinkMode};

const MIB: u64 = 1 << 20;

/// A 64 MiB sparse file with 3 data runs of 1 MiB (distinct bytes) at 0, 20 MiB, 63 MiB.
fn sparse_source(path: &Path) -> Vec<(u64, u8)> {
    let f = fs::File::create(path).unwrap();
    f.set_len(64 * MIB).unwrap();
    let runs = vec![(0, 0x11u8), (20 * MIB, 0x22), (63 * MIB, 0x33)];
    for &(off, byte) in &runs {
        let mut data = vec![byte; MIB as usize];
        data[7] = 0xfe;
        f.write_all_at(&data, off).unwrap();
    }
    f.sync_all().unwrap();
    runs
}

fn runs_of(path: &Path) -> Vec<(u64, u64)> {
    let f = fs::File::open(path).unwrap();
    let size = f.metadata().unwrap().len();
    data_runs(std::os::fd::AsFd::as_fd(&f), size)
        .map(|r| r.map(|r| (r.offset, r.len)))
        .collect::<Result<_, _>>()
        .unwrap()
}

fn expected_sparse_method(dir: &Path) -> CopyMethod {
    if is_reflink_supported(dir, None).unwrap() {
        CopyMethod::Reflink
    } else {
        CopyMethod::CopyRange
    }
}

/// Sparse copy (no reflink) reporting progress to `progress`.
fn copy_never(
    src: &Path,
    dst: &Path,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> reflink_pool_core::Result<CopyOutcome> {
    let ctl = Control {
        cancel: None,
        progress: Some(progress),
    };
    let opts = CopyOptions {
        reflink: ReflinkMode::Never,
        ..Default::default()
    };
    copy_file(src, dst, &opts, &ctl)
}

fn no_temp_files(dir: &Path) -> bool {
    fs::read_dir(dir)
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().contains('~'))
}

#[test]
fn copies_content_and_keeps_holes() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src.img"), dir.path().join("dst.img"));
    sparse_source(&src);
    let out = copy_file(&src, &dst, &CopyOptions::default(), &Control::NONE).unwrap();
    let expected = expected_sparse_method(dir.path());
    println!("method: {}, bytes {}", out.method.as_str(), out.bytes);
    assert_eq!(out.method, expected);
    assert_eq!(
        out.bytes,
        if expected == CopyMethod::Reflink {
            0
        } else {
            3 * MIB
        }
    );
    assert_eq!(fs::read(&src).unwrap(), fs::read(&dst).unwrap());
    assert_eq!(runs_of(&src), runs_of(&dst));
    let (ms, md) = (fs::metadata(&src).unwrap(), fs::metadata(&dst).unwrap());
    assert!(
        md.blocks() <= ms.blocks() + 64,
        "dst blocks {} vs src {}",
        md.blocks(),
        ms.blocks()
    );
    assert_eq!(md.permissions().mode() & 0o7777, 0o600);
    assert_ne!(ms.ino(), md.ino());
    assert!(no_temp_files(dir.path()));
    // Copy-on-write: writing one side leaves the other unchanged.
    let before = fs::read(&src).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&dst)
        .unwrap()
        .write_all_at(b"changed", 20 * MIB)
        .unwrap();
    assert_eq!(fs::read(&src).unwrap(), before);
    assert_eq!(
        &fs::read(&dst).unwrap()[(20 * MIB) as usize..][..7],
        b"changed"
    );
}

/// `never` must not share extents, not even through copy_file_range (which XFS and
/// btrfs serve with a clone): it copies with pread/pwrite.
#[test]
fn reflink_never_copies_data_without_sharing() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src.img"), dir.path().join("dst.img"));
    sparse_source(&src);
    let opts = CopyOptions {
        reflink: ReflinkMode::Never,
        ..Default::default()
    };
    let out = copy_file(&src, &dst, &opts, &Control::NONE).unwrap();
    println!("method: {}", out.method.as_str());
    assert_eq!(out.method, CopyMethod::ReadWrite);
    assert_eq!(out.bytes, 3 * MIB);
    assert_eq!(fs::read(&src).unwrap(), fs::read(&dst).unwrap());
    assert_eq!(runs_of(&src), runs_of(&dst));
    let u = file_usage(&dst).unwrap();
    assert_eq!(u.shared, 0, "{u:?}");
}

#[test]
fn reflink_always_fails_without_reflink_support() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src.img"), dir.path().join("dst.img"));
    fs::write(&src, b"hello").unwrap();
    let opts = CopyOptions {
        reflink: ReflinkMode::Always,
        ..Default::default()
    };
    let r = copy_file(&src, &dst, &opts, &Control::NONE);
    if is_reflink_supported(dir.path(), None).unwrap() {
        assert_eq!(r.unwrap().method, CopyMethod::Reflink);
        println!("method: reflink (filesystem supports it)");
    } else {
        let e = r.unwrap_err();
        println!("error: {e}");
        assert_eq!(e.code_name(), "ERR_REFLINK_UNSUPPORTED");
        assert!(e.errno.is_some());
        assert_eq!(e.syscall, "ioctl(FICLONE)");
        assert_eq!(e.path.as_deref(), Some(src.as_path()));
        assert_eq!(e.dest.as_deref(), Some(dst.as_path()));
        assert!(!dst.exists());
        assert!(no_temp_files(dir.path()));
    }
}

#[test]
fn size_option_extends_shrinks_and_empties() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.img");
    let content: Vec<u8> = (0..3 * MIB as usize).map(|i| (i % 251) as u8 + 1).collect();
    fs::write(&src, &content).unwrap();
    for mode in [ReflinkMode::Auto, ReflinkMode::Never] {
        let dst = dir.path().join(format!("ext-{mode:?}"));
        let opts = CopyOptions {
            reflink: mode,
            size: Some(5 * MIB),
            ..Default::default()
        };
        let out = copy_file(&src, &dst, &opts, &Control::NONE).unwrap();
        println!("extend {mode:?}: {}", out.method.as_str());
        let got = fs::read(&dst).unwrap();
        assert_eq!(got.len() as u64, 5 * MIB);
        assert_eq!(&got[..content.len()], &content[..]);
        assert!(got[content.len()..].iter().all(|&b| b == 0));
        // the zero tail is a hole
        assert_eq!(runs_of(&dst), vec![(0, 3 * MIB)]);

        let dst = dir.path().join(format!("shrink-{mode:?}"));
        let opts = CopyOptions {
            reflink: mode,
            size: Some(MIB + 5),
            ..Default::default()
        };
        let out = copy_file(&src, &dst, &opts, &Control::NONE).unwrap();
        println!("shrink {mode:?}: {}", out.method.as_str());
        assert_eq!(fs::read(&dst).unwrap(), &content[..(MIB + 5) as usize]);
        if out.method != CopyMethod::Reflink {
            assert_eq!(out.bytes, MIB + 5);
        }

        let dst = dir.path().join(format!("zero-{mode:?}"));
        fs::write(&dst, b"old").unwrap();
        let opts = CopyOptions {
            reflink: mode,
            size: Some(0),
            ..Default::default()
        };
        let out = copy_file(&src, &dst, &opts, &Control::NONE).unwrap();
        assert_eq!(out.method, CopyMethod::Empty);
        assert_eq!(out.bytes, 0);
        assert_eq!(fs::metadata(&dst).unwrap().len(), 0);
    }
    assert_eq!(fs::read(&src).unwrap(), content, "source unchanged");
    assert!(no_temp_files(dir.path()));
}

#[test]
fn copy_mtime_keeps_nanoseconds() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.img");
    fs::write(&src, b"data").unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::new(1_600_000_000, 123_456_789);
    fs::File::options()
        .write(true)
        .open(&src)
        .unwrap()
        .set_modified(when)
        .unwrap();
    let (with, without) = (dir.path().join("with"), dir.path().join("without"));
    let opts = CopyOptions {
        copy_mtime: true,
        ..Default::default()
    };
    copy_file(&src, &with, &opts, &Control::NONE).unwrap();
    copy_file(&src, &without, &CopyOptions::default(), &Control::NONE).unwrap();
    let m = |p: &Path| {
        let md = fs::metadata(p).unwrap();
        (md.mtime(), md.mtime_nsec())
    };
    assert_eq!(m(&src), (1_600_000_000, 123_456_789));
    assert_eq!(m(&with), m(&src));
    assert_ne!(m(&without), m(&src));
    // with size options too
    let sized = dir.path().join("sized");
    let opts = CopyOptions {
        copy_mtime: true,
        size: Some(0),
        ..Default::default()
    };
    copy_file(&src, &sized, &opts, &Control::NONE).unwrap();
    assert_eq!(m(&sized), m(&src));
}

#[test]
fn abort_mid_copy_leaves_dst_untouched_and_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src.img"), dir.path().join("dst.img"));
    let f = fs::File::create(&src).unwrap();
    let chunk = vec![0xabu8; MIB as usize];
    for i in 0..40 {
        f.write_all_at(&chunk, i * MIB).unwrap();
    }
    drop(f);
    fs::write(&dst, b"precious").unwrap();
    let cancel = AtomicBool::new(false);
    let calls = Mutex::new(Vec::new());
    let progress = |done: u64, total: u64| {
        calls.lock().unwrap().push((done, total));
        if done > 0 {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let ctl = Control {
        cancel: Some(&cancel),
        progress: Some(&progress),
    };
    // `auto` aborts inside copy_file_range chunks where it cannot clone; `never` inside
    // pread/pwrite.
    let mut modes = vec![ReflinkMode::Never];
    if expected_sparse_method(dir.path()) == CopyMethod::CopyRange {
        modes.push(ReflinkMode::Auto);
    } else {
        println!("auto clones here: abort tested on the pread/pwrite path only");
    }
    for mode in modes {
        cancel.store(false, Ordering::Relaxed);
        calls.lock().unwrap().clear();
        let opts = CopyOptions {
            reflink: mode,
            ..Default::default()
        };
        let e = copy_file(&src, &dst, &opts, &ctl).unwrap_err();
        println!("{mode:?} error: {e}");
        assert!(e.is_aborted());
        assert_eq!(e.code_name(), "ABORT_ERR");
        assert_eq!(e.dest.as_deref(), Some(dst.as_path()));
        assert_eq!(fs::read(&dst).unwrap(), b"precious");
        assert!(no_temp_files(dir.path()));
        let last = *calls.lock().unwrap().last().unwrap();
        assert!(
            last.0 > 0 && last.0 < 40 * MIB,
            "{mode:?} stopped early: {last:?}"
        );
    }
}

#[test]
fn progress_is_monotonic_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src.img"), dir.path().join("dst.img"));
    let f = fs::File::create(&src).unwrap();
    f.write_all_at(&vec![1u8; 40 * MIB as usize], 0).unwrap();
    drop(f);
    let calls = Mutex::new(Vec::new());
    let progress = |done: u64, total: u64| calls.lock().unwrap().push((done, total));
    copy_never(&src, &dst, &progress).unwrap();
    let calls = calls.lock().unwrap();
    assert!(calls.len() >= 3, "{calls:?}");
    assert!(
        calls
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 == w[1].1),
        "{calls:?}"
    );
    assert_eq!(*calls.last().unwrap(), (40 * MIB, 40 * MIB));
}

#[test]
fn missing_source_is_enoent_with_path() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("nope.img"), dir.path().join("dst.img"));
    let e = copy_file(&src, &dst, &CopyOptions::default(), &Control::NONE).unwrap_err();
    assert_eq!(e.code_name(), "ENOENT");
    assert_eq!(e.errno, Some(libc_enoent()));
    assert_eq!(e.syscall, "open");
    assert_eq!(e.path.as_deref(), Some(src.as_path()));
    assert_eq!(e.dest.as_deref(), Some(dst.as_path()));
    assert_eq!(
        e.to_string(),
        format!(
            "ENOENT: no such file or directory, open '{}' -> '{}'",
            src.display(),
            dst.display()
        )
    );
    assert!(!dst.exists());
}

fn libc_enoent() -> i32 {
    nix::errno::Errno::ENOENT as i32
}

#[test]
fn creates_missing_parent_and_replaces_dst() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.img");
    fs::write(&src, b"new content").unwrap();
    let dst = dir.path().join("a/b/c/dst.img");
    copy_file(&src, &dst, &CopyOptions::default(), &Control::NONE).unwrap();
    assert_eq!(fs::read(&dst).unwrap(), b"new content");
    fs::write(&src, b"newer").unwrap();
    let old_ino = fs::metadata(&dst).unwrap().ino();
    copy_file(&src, &dst, &CopyOptions::default(), &Control::NONE).unwrap();
    assert_eq!(fs::read(&dst).unwrap(), b"newer");
    assert_ne!(
        fs::metadata(&dst).unwrap().ino(),
        old_ino,
        "replaced by rename, not in place"
    );
    assert!(no_temp_files(&dir.path().join("a/b/c")));
}

#[test]
fn directory_source_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("dst.img");
    let e = copy_file(dir.path(), &dst, &CopyOptions::default(), &Control::NONE).unwrap_err();
    println!("error: {e}");
    assert_eq!(e.code_name(), "ERR_NOT_REGULAR_FILE");
    assert!(!dst.exists());
}

#[test]
fn empty_source_gives_empty_method() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src.img"), dir.path().join("dst.img"));
    fs::File::create(&src).unwrap().flush().unwrap();
    let out = copy_file(&src, &dst, &CopyOptions::default(), &Control::NONE).unwrap();
    assert_eq!(out.method, CopyMethod::Empty);
    assert_eq!(fs::metadata(&dst).unwrap().len(), 0);
}

#[test]
fn temp_file_is_0600_beside_dst_while_copying() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src.img"), dir.path().join("dst.img"));
    fs::write(&src, vec![5u8; 2 * MIB as usize]).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o644)).unwrap();
    let seen = Mutex::new(Vec::new());
    let progress = |_: u64, _: u64| {
        for e in fs::read_dir(dir.path()).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains('~') {
                seen.lock()
                    .unwrap()
                    .push((name, e.metadata().unwrap().permissions().mode() & 0o7777));
            }
        }
    };
    copy_never(&src, &dst, &progress).unwrap();
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "a temp file was visible during the copy");
    for (name, mode) in seen.iter() {
        assert!(name.starts_with("dst.img~"), "{name}");
        assert_eq!(*mode, 0o600, "{name}");
    }
    assert_eq!(
        fs::metadata(&dst).unwrap().permissions().mode() & 0o7777,
        0o600
    );
}

/// Across filesystems copy_file_range is refused (EXDEV on kernels >= 5.19; older ones
/// copy), so the copy goes through pread/pwrite: holes must still stay holes.
#[test]
fn cross_filesystem_copy_falls_back() {
    let shm = Path::new("/dev/shm");
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir_in(shm).expect("this test needs a writable tmpfs at /dev/shm");
    assert_ne!(
        fs::metadata(dir.path()).unwrap().dev(),
        fs::metadata(other.path()).unwrap().dev(),
        "/dev/shm must be another filesystem than the temp dir for this test"
    );
    let src = dir.path().join("src.img");
    sparse_source(&src);
    let dst = other.path().join("dst.img");
    let out = copy_file(&src, &dst, &CopyOptions::default(), &Control::NONE).unwrap();
    println!("cross-fs method: {}", out.method.as_str());
    assert!(matches!(
        out.method,
        CopyMethod::ReadWrite | CopyMethod::CopyRange
    ));
    assert_eq!(out.bytes, 3 * MIB);
    assert_eq!(fs::read(&src).unwrap(), fs::read(&dst).unwrap());
    assert_eq!(runs_of(&src), runs_of(&dst));
    // Always never copies data, even across filesystems.
    let opts = CopyOptions {
        reflink: ReflinkMode::Always,
        ..Default::default()
    };
    let e = copy_file(
        &src,
        &other.path().join("always.img"),
        &opts,
        &Control::NONE,
    )
    .unwrap_err();
    assert_eq!(e.code_name(), "ERR_REFLINK_UNSUPPORTED");
}

/// A source truncated under the copy ends it with ERR_SOURCE_CHANGED (no endless loop of
/// zero-length copies), and nothing is left behind.
#[test]
fn source_shrinking_mid_copy_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src.img"), dir.path().join("dst.img"));
    for mode in [ReflinkMode::Never, ReflinkMode::Auto] {
        fs::write(&src, vec![9u8; 40 * MIB as usize]).unwrap();
        let shrink = |done: u64, _: u64| {
            if done > 0 {
                fs::OpenOptions::new()
                    .write(true)
                    .open(&src)
                    .unwrap()
                    .set_len(MIB)
                    .unwrap();
            }
        };
        let ctl = Control {
            cancel: None,
            progress: Some(&shrink),
        };
        let opts = CopyOptions {
            reflink: mode,
            ..Default::default()
        };
        match copy_file(&src, &dst, &opts, &ctl) {
            Ok(out) => {
                // Only a clone is instant enough to finish before the first report.
                assert_eq!(out.method, CopyMethod::Reflink, "{mode:?}");
                fs::remove_file(&dst).unwrap();
            }
            Err(e) => {
                println!("{mode:?}: {e}");
                assert_eq!(e.code_name(), "ERR_SOURCE_CHANGED");
                assert_eq!(e.path.as_deref(), Some(src.as_path()));
                assert!(!dst.exists());
            }
        }
        assert!(no_temp_files(dir.path()));
    }
}

/// ENOSPC mid-copy (a 4 MiB tmpfs, root only): the errno comes back intact with both
/// paths, and neither dst nor a temp file is left.
#[test]
#[ignore = "needs root to mount a tmpfs: `npm test` runs it with --include-ignored as root"]
fn enospc_mid_copy_cleans_up() {
    use std::process::Command;
    let root = fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    assert!(root, "needs root to mount a tmpfs");
    let dir = tempfile::tempdir().unwrap();
    let small = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(small.path())
        .status()
        .unwrap();
    assert!(mounted.success());
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(small.path());
    let src = dir.path().join("src.img");
    fs::write(&src, vec![1u8; 8 * MIB as usize]).unwrap();
    let dst = small.path().join("dst.img");
    for mode in [ReflinkMode::Auto, ReflinkMode::Never] {
        let opts = CopyOptions {
            reflink: mode,
            ..Default::default()
        };
        let e = copy_file(&src, &dst, &opts, &Control::NONE).unwrap_err();
        println!("{mode:?}: {e}");
        assert_eq!(e.code_name(), "ENOSPC");
        assert_eq!(e.path.as_deref(), Some(src.as_path()));
        assert_eq!(e.dest.as_deref(), Some(dst.as_path()));
        assert_eq!(
            fs::read_dir(small.path()).unwrap().count(),
            0,
            "nothing left on the full fs"
        );
    }
}
