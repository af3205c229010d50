//! floor: the syscalls of a durable copy, issued directly, for the benchmark harness.
//!
//! The harness (`ts/bench`) compares the product's `copyFile` (binding, libuv
//! threadpool, TypeScript layer) with this "floor": the same syscall sequence
//! with nothing around it. The difference is the overhead of everything above
//! the syscalls. It deliberately does not use the crate's `copy_file`, so a slow
//! loop in the core shows up as a gap instead of being measured twice.
//!
//! Sequence, per request (timed from the first open to the directory fsync):
//! open src; open `<dst>~floor<n>` O_CREAT|O_EXCL mode 0600; then
//! - `clone`: ioctl(FICLONE);
//! - `sparse`: ftruncate to the source size, then for each data run found with
//!   lseek(SEEK_DATA/SEEK_HOLE), posix_fadvise(WILLNEED) 16 runs ahead, copy_file_range
//!   until the run is done;
//! - `readwrite`: the same runs moved by pread/pwrite through a 1 MiB buffer, with
//!   sync_file_range(WRITE) after every 32 MiB (the core's fallback where
//!   copy_file_range is refused: across filesystems);
//!
//! then fsync, rename over dst, open + fsync the directory.
//!
//! Also the durable namespace steps of a volume start/stop, for the mass-start
//! ceiling: `link <src> <dst>` (link, fsync dst's directory) and
//! `unlink <path> -` (unlink, fsync its directory).
//!
//! The batched group commit of `reflink-pool clone` (docs/design.md §7), the
//! same syscalls as `core::batch::make` without the JS around them:
//! `batch <src> <root> <n>` under `<root>` (prefix `appvms/`, `locks/`,
//! `records/`, `sessions/`): per volume take its lock file (open O_CREAT, fstat,
//! flock, lstat), check its record and image are absent; per volume mkdir its
//! VM directory, create the image temp (O_EXCL, fchmod) and FICLONE into it,
//! create the record temp and write it; the intent file (write, fsync,
//! rename); syncfs; rename every image (RENAME_NOREPLACE); syncfs; rename every
//! record; fsync the record directory; unlink the intent; release the locks.
//! `batchfsync` is the same with the fsync barrier (an fsync of every file,
//! then of every directory touched) instead of syncfs.
//!
//! `fleetday <src> <root> <n>`: a fleet's day through the pool's syscalls, timed
//! as a whole (each phase's time is appended to the answer): the `batch` group
//! commit of n clones of src; the start batch (per volume its lock, the record
//! and dirty-image checks, a dirty temp FICLONEd from the clean image; syncfs;
//! every rename; syncfs; the locks' release); 1 MiB written into each dirty
//! image (open, pwrite, close, as a VM's client does); the stop of each volume
//! as the pool commits an origin volume one by one (`volume.stop()`, 8 in
//! flight on libuv's 4 threads: here 4 threads): its lock, the record read,
//! fsync of the dirty image, the revision link of the clean image and the
//! directory's fsync, the listing of the directory, the rename of the dirty
//! image over the clean one and the directory's fsync, the precache (a temp
//! FICLONEd from the new clean image, fsync, rename, directory fsync), the
//! lock's release; then the remove batch as `remove` does, each VM directory
//! listed (its revision and precache go too).
//!
//! `ficlone <src> <dst>` times the FICLONE ioctl alone (into a fresh file `dst`,
//! which stays); `fanout <src,src,...> <dir> <n>` times n FICLONEs into fresh files
//! from one thread per source (clone i from source i % k), for the fan-out question;
//! `clones <src> <dir> <n>` times n FICLONEs of src into fresh files `clone-<i>` of dir,
//! back to back from one thread; `clonesync` the same followed by one syncfs: the
//! share of a group commit that is the filesystem's own work for the clones (btrfs
//! defers the extent references a clone adds to the transaction commit syncfs
//! forces). The files of `ficlone`, `clones` and `clonesync` are left for the caller
//! to remove, so the background work of their deletion does not land in the next timing.
//!
//! Protocol (long-lived, so process start-up is not timed): one request per
//! stdin line `clone|sparse|readwrite|link|unlink|ficlone <src> <dst>` or
//! `batch|batchfsync|fanout|clones|clonesync|remove|fleetday <src> <dir> <n>`; one answer per line on
//! stdout: `ok <nanoseconds> <bytes moved>` (`fleetday`: then `phase=<ns>,...`) or
//! `err <errno> <step>`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
use nix::unistd::{lseek, Whence};

/// An error with the step that failed, so the harness can say which syscall broke.
struct StepError(&'static str, io::Error);

fn step<T>(name: &'static str, r: io::Result<T>) -> Result<T, StepError> {
    r.map_err(|e| StepError(name, e))
}

fn ficlone(dst: &File, src: &File) -> io::Result<()> {
    // SAFETY: both descriptors are open for the whole call; FICLONE takes the source fd by value.
    let rc = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Copies `[off, off + len)` with copy_file_range, looping on short returns.
fn copy_run(src: &File, dst: &File, mut off: i64, len: u64) -> io::Result<u64> {
    let (start, end) = (off, off + len as i64);
    let mut out = off;
    while off < end {
        let want = (end - off) as usize;
        // SAFETY: valid open fds and pointers to live i64 offsets; flags must be 0.
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off,
                dst.as_raw_fd(),
                &mut out,
                want,
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            break; // source shrank under us: stop at its end
        }
    }
    Ok((off - start) as u64)
}

/// Copies `[off, off + len)` by pread/pwrite through `buf`.
fn read_write_run(src: &File, dst: &File, buf: &mut [u8], off: i64, len: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let (start, end) = (off as u64, off as u64 + len);
    let mut at = start;
    while at < end {
        let want = ((end - at) as usize).min(buf.len());
        let n = src.read_at(&mut buf[..want], at)?;
        if n == 0 {
            break; // source shrank under us: stop at its end
        }
        dst.write_all_at(&buf[..n], at)?;
        at += n as u64;
    }
    Ok(at - start)
}

/// The data runs of `src` via SEEK_DATA/SEEK_HOLE, then copied run by run (by
/// copy_file_range, or pread/pwrite when `read_write`), with the kernel asked
/// (POSIX_FADV_WILLNEED) to read 16 runs ahead, as the core does.
fn copy_sparse(src: &File, dst: &File, size: u64, read_write: bool) -> Result<u64, StepError> {
    let mut runs = Vec::new();
    let mut pos: i64 = 0;
    while (pos as u64) < size {
        let data = match lseek(src, pos, Whence::SeekData) {
            Ok(d) => d,
            Err(nix::errno::Errno::ENXIO) => break, // no data after pos
            Err(e) => return Err(StepError("lseek(SEEK_DATA)", e.into())),
        };
        let hole = step(
            "lseek(SEEK_HOLE)",
            lseek(src, data, Whence::SeekHole).map_err(io::Error::from),
        )?;
        runs.push((data, hole - data));
        pos = hole;
    }
    let hint = |&(off, len): &(i64, i64)| {
        let _ = posix_fadvise(
            src,
            off,
            len.min(16 << 20),
            PosixFadviseAdvice::POSIX_FADV_WILLNEED,
        );
    };
    runs.iter().take(16).for_each(hint);
    let mut moved = 0;
    let mut buf = if read_write {
        vec![0u8; 1 << 20]
    } else {
        Vec::new()
    };
    // pread/pwrite: writeback started every 32 MiB copied (sync_file_range), as the core does.
    let (mut unflushed_from, mut unflushed) = (0, 0);
    for (i, &(off, len)) in runs.iter().enumerate() {
        if i > 0 {
            runs.get(i + 15).into_iter().for_each(hint);
        }
        if !read_write {
            moved += step("copy_file_range", copy_run(src, dst, off, len as u64))?;
            continue;
        }
        moved += step(
            "pread/pwrite",
            read_write_run(src, dst, &mut buf, off, len as u64),
        )?;
        unflushed += len;
        if unflushed >= 32 << 20 {
            // SAFETY: `dst` is open for the call; sync_file_range takes integers only.
            unsafe {
                libc::sync_file_range(
                    dst.as_raw_fd(),
                    unflushed_from,
                    off + len - unflushed_from,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
            (unflushed_from, unflushed) = (off + len, 0);
        }
    }
    Ok(moved)
}

fn durable_copy(mode: &str, src: &Path, dst: &Path, tmp: &Path) -> Result<(u128, u64), StepError> {
    let dir = dst
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let t0 = Instant::now();
    let s = step("open(src)", File::open(src))?;
    let d = step(
        "open(O_EXCL)",
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp),
    )?;
    let moved = match mode {
        "clone" => {
            step("ioctl(FICLONE)", ficlone(&d, &s))?;
            0
        }
        _ => {
            let size = step("fstat", s.metadata())?.len();
            step("ftruncate", d.set_len(size))?;
            copy_sparse(&s, &d, size, mode == "readwrite")?
        }
    };
    step("fsync", d.sync_all())?;
    step("rename", fs::rename(tmp, dst))?;
    step("fsync(dir)", File::open(&dir).and_then(|f| f.sync_all()))?;
    Ok((t0.elapsed().as_nanos(), moved))
}

fn parent(path: &Path) -> PathBuf {
    path.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// link(2) or unlink(2), then fsync of the directory that changed.
fn durable_namespace(mode: &str, src: &Path, dst: &Path) -> Result<(u128, u64), StepError> {
    let t0 = Instant::now();
    let dir = if mode == "link" {
        step("link", fs::hard_link(src, dst))?;
        parent(dst)
    } else {
        step("unlink", fs::remove_file(src))?;
        parent(src)
    };
    step("fsync(dir)", File::open(&dir).and_then(|f| f.sync_all()))?;
    Ok((t0.elapsed().as_nanos(), 0))
}

fn io_step<T>(name: &'static str, r: nix::Result<T>) -> Result<T, StepError> {
    r.map_err(|e| StepError(name, io::Error::from(e)))
}

fn create_excl(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

fn noreplace(from: &Path, to: &Path) -> nix::Result<()> {
    nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        from,
        nix::fcntl::AT_FDCWD,
        to,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    )
}

/// The flocks of volumes `appvms/c-<i>/root`, i < n, as the pool takes them (open, fstat, flock, lstat).
type Locks = Vec<(PathBuf, nix::fcntl::Flock<File>)>;

fn take_locks(root: &Path, n: usize) -> Result<Locks, StepError> {
    (0..n).map(|i| take_lock(root, i)).collect()
}

fn release_locks(locks: Locks) -> Result<(), StepError> {
    for (path, f) in locks {
        step("unlink", fs::remove_file(&path))?;
        drop(f);
    }
    Ok(())
}

/// The syscalls of the pool's remove batch over the `n` volumes a `batch` made in
/// `root`: locks, the record and running checks, a durable intent, the record and
/// image unlinks, rmdir of the VM directories, one syncfs, the intent's unlink and
/// its directory's fsync, the locks' release.
fn remove(root: &Path, n: usize) -> Result<(u128, u64), StepError> {
    let t0 = Instant::now();
    let rootfd = step("open(root)", File::open(root))?;
    let locks = take_locks(root, n)?;
    let record = |i: usize| {
        root.join("records")
            .join(format!("appvms%2Fc-{i}%2Froot.json"))
    };
    let vm = |i: usize| root.join("appvms").join(format!("c-{i}"));
    for i in 0..n {
        step("lstat", fs::symlink_metadata(record(i)))?;
        if fs::symlink_metadata(vm(i).join("root-dirty.img")).is_ok() {
            return Err(StepError("busy", io::Error::from_raw_os_error(libc::EBUSY)));
        }
    }
    let sessions = root.join("sessions");
    let intent = write_remove_intent(&sessions)?;
    let fsync_sessions = || {
        step(
            "fsync(dir)",
            File::open(&sessions).and_then(|f| f.sync_all()),
        )
    };
    fsync_sessions()?;
    for i in 0..n {
        step("unlink", fs::remove_file(record(i)))?;
    }
    for i in 0..n {
        step("unlink", fs::remove_file(vm(i).join("root.img")))?;
        step("rmdir", fs::remove_dir(vm(i)))?;
    }
    io_step("syncfs", nix::unistd::syncfs(&rootfd))?;
    step("unlink", fs::remove_file(&intent))?;
    fsync_sessions()?;
    release_locks(locks)?;
    Ok((t0.elapsed().as_nanos(), 0))
}

/// The open, fstat, flock and lstat of the pool's lock file for `appvms/c-<i>/root`.
fn take_lock(root: &Path, i: usize) -> Result<(PathBuf, nix::fcntl::Flock<File>), StepError> {
    let lock = root
        .join("locks")
        .join(format!("appvms%2Fc-{i}%2Froot.lock"));
    let flags = nix::fcntl::OFlag::O_RDONLY
        | nix::fcntl::OFlag::O_CREAT
        | nix::fcntl::OFlag::O_NOFOLLOW
        | nix::fcntl::OFlag::O_CLOEXEC
        | nix::fcntl::OFlag::O_NONBLOCK;
    let f = File::from(io_step(
        "open(lock)",
        nix::fcntl::open(
            &lock,
            flags,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        ),
    )?);
    step("fstat", f.metadata())?;
    let f = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| StepError("flock", e.into()))?;
    step("lstat", fs::symlink_metadata(&lock))?;
    Ok((lock, f))
}

/// The remove batch's intent, as the library writes it: a temp file (O_EXCL), its
/// bytes, fsync, rename to its name. The caller fsyncs the sessions directory.
fn write_remove_intent(sessions: &Path) -> Result<PathBuf, StepError> {
    let intent = sessions.join("floor.remove");
    let it = sessions.join("floor.remove~floor");
    let f = step("open(O_EXCL)", create_excl(&it))?;
    step("write", (&f).write_all(b"owner\n"))?;
    step("fsync", f.sync_all())?;
    step("rename", fs::rename(&it, &intent))?;
    Ok(intent)
}

fn record_path(root: &Path, i: usize) -> PathBuf {
    root.join("records")
        .join(format!("appvms%2Fc-{i}%2Froot.json"))
}

fn fsync_dir(dir: &Path) -> Result<(), StepError> {
    step("fsync(dir)", File::open(dir).and_then(|f| f.sync_all()))
}

/// The start batch of the `n` clones under `root` (module docs).
fn fleet_start(root: &Path, n: usize) -> Result<(), StepError> {
    let rootfd = step("open(root)", File::open(root))?;
    let locks = take_locks(root, n)?;
    let mut temps = Vec::with_capacity(n);
    for i in 0..n {
        step("lstat", fs::symlink_metadata(record_path(root, i)))?;
        let dir = root.join("appvms").join(format!("c-{i}"));
        if fs::symlink_metadata(dir.join("root-dirty.img")).is_ok() {
            return Err(StepError(
                "exists",
                io::Error::from_raw_os_error(libc::EEXIST),
            ));
        }
        let clean = step("open(clean)", File::open(dir.join("root.img")))?;
        step("fstat", clean.metadata())?;
        let tmp = dir.join("root-dirty.img~floor");
        let d = step("open(O_EXCL)", create_excl(&tmp))?;
        step("ioctl(FICLONE)", ficlone(&d, &clean))?;
        temps.push((tmp, dir.join("root-dirty.img")));
    }
    io_step("syncfs", nix::unistd::syncfs(&rootfd))?;
    for (tmp, dst) in &temps {
        step("rename", fs::rename(tmp, dst))?;
    }
    io_step("syncfs", nix::unistd::syncfs(&rootfd))?;
    release_locks(locks)
}

/// 1 MiB written at offset 0 of each running volume's dirty image, as a client would.
fn fleet_write(root: &Path, n: usize) -> Result<(), StepError> {
    use std::os::unix::fs::FileExt;
    let buf = vec![7u8; 1 << 20];
    for i in 0..n {
        let path = root
            .join("appvms")
            .join(format!("c-{i}"))
            .join("root-dirty.img");
        let f = step(
            "open(dirty)",
            OpenOptions::new().read(true).write(true).open(path),
        )?;
        step("pwrite", f.write_all_at(&buf, 0))?;
    }
    Ok(())
}

/// The commit of one running origin volume, as `volume.stop()` issues it (module docs).
fn stop_one(root: &Path, i: usize) -> Result<(), StepError> {
    let (lock, held) = take_lock(root, i)?;
    let mut rec = String::new();
    step(
        "read(record)",
        File::open(record_path(root, i))
            .and_then(|mut f| io::Read::read_to_string(&mut f, &mut rec)),
    )?;
    let dir = root.join("appvms").join(format!("c-{i}"));
    let dirty = dir.join("root-dirty.img");
    let clean = dir.join("root.img");
    step("fsync", File::open(&dirty).and_then(|f| f.sync_all()))?;
    step(
        "link",
        fs::hard_link(&clean, dir.join("root.img.1@2026-01-01T00:00:00Z")),
    )?;
    fsync_dir(&dir)?;
    step("readdir", fs::read_dir(&dir).map(Iterator::count))?;
    step("rename", fs::rename(&dirty, &clean))?;
    fsync_dir(&dir)?;
    let tmp = dir.join("root-precache.img~floor");
    let c = step("open(clean)", File::open(&clean))?;
    let p = step("open(O_EXCL)", create_excl(&tmp))?;
    step("ioctl(FICLONE)", ficlone(&p, &c))?;
    step("fsync", p.sync_all())?;
    step("rename", fs::rename(&tmp, dir.join("root-precache.img")))?;
    fsync_dir(&dir)?;
    step("unlink", fs::remove_file(&lock))?;
    drop(held);
    Ok(())
}

/// The stops of the `n` volumes, one by one on `threads` threads (module docs).
fn fleet_stop(root: &Path, n: usize, threads: usize) -> Result<(), StepError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok(());
                    }
                    stop_one(root, i)?;
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(StepError("thread", io::Error::other("panic"))))
            })
            .collect::<Result<Vec<()>, StepError>>()
            .map(|_| ())
    })
}

/// The remove batch of the `n` volumes after a day: as `remove`, each VM directory listed
/// and every file in it unlinked (the clean image, its revision, its precache).
fn fleet_remove(root: &Path, n: usize) -> Result<(), StepError> {
    let rootfd = step("open(root)", File::open(root))?;
    let locks = take_locks(root, n)?;
    let vm = |i: usize| root.join("appvms").join(format!("c-{i}"));
    let mut files = Vec::with_capacity(n);
    for i in 0..n {
        step("lstat", fs::symlink_metadata(record_path(root, i)))?;
        let names: Vec<PathBuf> = step(
            "readdir",
            fs::read_dir(vm(i)).and_then(|d| d.map(|e| e.map(|e| e.path())).collect()),
        )?;
        if names.iter().any(|p| p.ends_with("root-dirty.img")) {
            return Err(StepError("busy", io::Error::from_raw_os_error(libc::EBUSY)));
        }
        files.push(names);
    }
    let sessions = root.join("sessions");
    let intent = write_remove_intent(&sessions)?;
    fsync_dir(&sessions)?;
    for i in 0..n {
        step("unlink", fs::remove_file(record_path(root, i)))?;
    }
    for (i, names) in files.iter().enumerate() {
        for path in names {
            step("unlink", fs::remove_file(path))?;
        }
        step("rmdir", fs::remove_dir(vm(i)))?;
    }
    io_step("syncfs", nix::unistd::syncfs(&rootfd))?;
    step("unlink", fs::remove_file(&intent))?;
    fsync_dir(&sessions)?;
    release_locks(locks)
}

/// The whole day (module docs); the phases' times are appended to the answer.
fn fleetday(
    src: &Path,
    root: &Path,
    n: usize,
    phases: &mut Vec<(&'static str, u128)>,
) -> Result<(u128, u64), StepError> {
    let t0 = Instant::now();
    let (clone_ns, _) = batch(src, root, n, true)?;
    phases.push(("clone", clone_ns));
    let mut t = Instant::now();
    let mut lap = |name: &'static str, phases: &mut Vec<(&'static str, u128)>| {
        phases.push((name, t.elapsed().as_nanos()));
        t = Instant::now();
    };
    fleet_start(root, n)?;
    lap("start", phases);
    fleet_write(root, n)?;
    lap("write", phases);
    fleet_stop(root, n, 4)?;
    lap("stop", phases);
    fleet_remove(root, n)?;
    lap("remove", phases);
    Ok((t0.elapsed().as_nanos(), n as u64 * (1 << 20)))
}

/// The group commit of `n` clones of `src` under `root` (module docs).
fn batch(src: &Path, root: &Path, n: usize, syncfs: bool) -> Result<(u128, u64), StepError> {
    for d in ["appvms", "locks", "records", "sessions"] {
        step("mkdir", fs::create_dir_all(root.join(d)))?;
    }
    let t0 = Instant::now();
    let rootfd = step("open(root)", File::open(root))?;
    let locks = take_locks(root, n)?;
    for i in 0..n {
        for p in [
            root.join("records")
                .join(format!("appvms%2Fc-{i}%2Froot.json")),
            root.join("appvms").join(format!("c-{i}")).join("root.img"),
        ] {
            if fs::symlink_metadata(&p).is_ok() {
                return Err(StepError(
                    "exists",
                    io::Error::from_raw_os_error(libc::EEXIST),
                ));
            }
        }
    }
    let s = step("open(src)", File::open(src))?;
    let mut temps = Vec::with_capacity(2 * n);
    for i in 0..n {
        let dir = root.join("appvms").join(format!("c-{i}"));
        step("mkdir", fs::create_dir(&dir))?;
        let tmp = dir.join(format!("root.img~floor{i}"));
        let d = step("open(O_EXCL)", create_excl(&tmp))?;
        step("ioctl(FICLONE)", ficlone(&d, &s))?;
        let rec = root
            .join("records")
            .join(format!("appvms%2Fc-{i}%2Froot.json~floor"));
        let r = step("open(O_EXCL)", create_excl(&rec))?;
        step("write", (&r).write_all(b"{\"vid\":\"appvms/c/root\",\"name\":\"root\",\"rw\":true,\"saveOnStop\":true,\"snapOnStart\":false,\"source\":null,\"size\":1048576,\"revisionsToKeep\":null}\n"))?;
        temps.push((tmp, dir.join("root.img"), d, dir));
        temps.push((
            rec.clone(),
            rec.with_extension("json"),
            r,
            root.join("records"),
        ));
    }
    let intent = root.join("sessions").join("floor.batch");
    let it = root.join("sessions").join("floor.batch~floor");
    let f = step("open(O_EXCL)", create_excl(&it))?;
    step("write", (&f).write_all(b"owner\n"))?;
    step("fsync", f.sync_all())?;
    step("rename", fs::rename(&it, &intent))?;
    let barrier = |files: &mut dyn Iterator<Item = &File>,
                   dirs: &mut dyn Iterator<Item = &PathBuf>|
     -> Result<(), StepError> {
        if syncfs {
            io_step("syncfs", nix::unistd::syncfs(&rootfd))
        } else {
            for f in files {
                step("fsync", f.sync_all())?;
            }
            for d in dirs {
                step("fsync(dir)", File::open(d).and_then(|f| f.sync_all()))?;
            }
            Ok(())
        }
    };
    barrier(
        &mut temps.iter().map(|t| &t.2),
        &mut [
            root.join("sessions"),
            root.join("records"),
            root.join("appvms"),
        ]
        .iter(),
    )?;
    for t in temps.iter().step_by(2) {
        io_step("rename", noreplace(&t.0, &t.1))?;
    }
    barrier(
        &mut std::iter::empty(),
        &mut temps.iter().step_by(2).map(|t| &t.3),
    )?;
    for t in temps.iter().skip(1).step_by(2) {
        io_step("rename", noreplace(&t.0, &t.1))?;
    }
    step(
        "fsync(dir)",
        File::open(root.join("records")).and_then(|f| f.sync_all()),
    )?;
    step("unlink", fs::remove_file(&intent))?;
    release_locks(locks)?;
    Ok((t0.elapsed().as_nanos(), 0))
}

/// The FICLONE ioctl alone, into a fresh file (module docs: it stays).
fn ficlone_only(src: &Path, dst: &Path) -> Result<(u128, u64), StepError> {
    let s = step("open(src)", File::open(src))?;
    let d = step("open(O_EXCL)", create_excl(dst))?;
    let t0 = Instant::now();
    step("ioctl(FICLONE)", ficlone(&d, &s))?;
    Ok((t0.elapsed().as_nanos(), 0))
}

/// `n` fresh files `<prefix>-<i>` in `dir` (untimed preparation of `fanout`, `clones`, `clonesync`).
fn fresh_files(dir: &Path, prefix: &str, n: usize) -> Result<Vec<File>, StepError> {
    step("mkdir", fs::create_dir_all(dir))?;
    (0..n)
        .map(|i| {
            step(
                "open(O_EXCL)",
                create_excl(&dir.join(format!("{prefix}-{i}"))),
            )
        })
        .collect()
}

/// `n` FICLONEs into fresh files of `dir`, one thread per source (module docs); files removed after, untimed.
fn fanout(srcs: &str, dir: &Path, n: usize) -> Result<(u128, u64), StepError> {
    let srcs: Vec<File> = srcs
        .split(',')
        .map(|p| step("open(src)", File::open(p)))
        .collect::<Result<_, _>>()?;
    let k = srcs.len();
    let dsts = fresh_files(dir, "fan", n)?;
    let t0 = Instant::now();
    let failed = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..k)
            .map(|t| {
                let (src, dsts) = (&srcs[t], &dsts);
                scope.spawn(move || (t..n).step_by(k).try_for_each(|i| ficlone(&dsts[i], src)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(io::Error::other("panic"))))
            .find(Result::is_err)
    });
    let ns = t0.elapsed().as_nanos();
    if let Some(Err(e)) = failed {
        return Err(StepError("ioctl(FICLONE)", e));
    }
    for i in 0..n {
        step("unlink", fs::remove_file(dir.join(format!("fan-{i}"))))?;
    }
    Ok((ns, 0))
}

/// `n` FICLONEs of `src` into fresh files of `dir` back to back, then one syncfs when
/// `syncfs` (module docs); the files stay.
fn clones(src: &Path, dir: &Path, n: usize, syncfs: bool) -> Result<(u128, u64), StepError> {
    let s = step("open(src)", File::open(src))?;
    let dsts = fresh_files(dir, "clone", n)?;
    let t0 = Instant::now();
    for d in &dsts {
        step("ioctl(FICLONE)", ficlone(d, &s))?;
    }
    if syncfs {
        io_step("syncfs", nix::unistd::syncfs(&s))?;
    }
    Ok((t0.elapsed().as_nanos(), 0))
}

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let mut out = io::stdout().lock();
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line?;
        let mut parts = line.splitn(4, ' ');
        let (mode, src, dst, count) = match (parts.next(), parts.next(), parts.next(), parts.next())
        {
            (
                Some(m @ ("clone" | "sparse" | "readwrite" | "link" | "unlink" | "ficlone")),
                Some(s),
                Some(d),
                None,
            ) => (m, s, d, 0),
            (
                Some(
                    m @ ("batch" | "batchfsync" | "fanout" | "clones" | "clonesync" | "remove"
                    | "fleetday"),
                ),
                Some(s),
                Some(d),
                Some(n),
            ) if n.parse::<usize>().is_ok() => (m, s, d, n.parse().unwrap_or(0)),
            _ => {
                writeln!(
                    out,
                    "err 22 request: expected `clone|sparse|readwrite|link|unlink|ficlone <src> <dst>` or `batch|batchfsync|fanout|clones|clonesync|remove|fleetday <src> <dir> <n>`"
                )?;
                out.flush()?;
                continue;
            }
        };
        let mut tmp = Path::new(dst).as_os_str().to_owned();
        tmp.push(format!("~floor{n}"));
        let tmp = PathBuf::from(tmp);
        let mut phases = Vec::new();
        let done = match mode {
            "link" | "unlink" => durable_namespace(mode, Path::new(src), Path::new(dst)),
            "batch" | "batchfsync" => batch(Path::new(src), Path::new(dst), count, mode == "batch"),
            "ficlone" => ficlone_only(Path::new(src), Path::new(dst)),
            "fanout" => fanout(src, Path::new(dst), count),
            "remove" => remove(Path::new(dst), count),
            "fleetday" => fleetday(Path::new(src), Path::new(dst), count, &mut phases),
            "clones" | "clonesync" => {
                clones(Path::new(src), Path::new(dst), count, mode == "clonesync")
            }
            _ => durable_copy(mode, Path::new(src), Path::new(dst), &tmp),
        };
        match done {
            Ok((ns, moved)) if phases.is_empty() => writeln!(out, "ok {ns} {moved}")?,
            Ok((ns, moved)) => {
                let list: Vec<String> = phases.iter().map(|(p, t)| format!("{p}={t}")).collect();
                writeln!(out, "ok {ns} {moved} {}", list.join(","))?
            }
            Err(StepError(what, e)) => {
                let _ = fs::remove_file(&tmp); // leave nothing behind, like the real copy
                writeln!(out, "err {} {what}: {e}", e.raw_os_error().unwrap_or(0))?
            }
        }
        out.flush()?;
    }
    Ok(())
}
