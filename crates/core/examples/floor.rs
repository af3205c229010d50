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
//!
//! then fsync, rename over dst, open + fsync the directory.
//!
//! Also the durable namespace steps of a volume start/stop, for the mass-start
//! ceiling: `link <src> <dst>` (link, fsync dst's directory) and
//! `unlink <path> -` (unlink, fsync its directory).
//!
//! Protocol (long-lived, so process start-up is not timed): one request per
//! stdin line `clone|sparse|link|unlink <src> <dst>`; one answer per line on
//! stdout: `ok <nanoseconds> <bytes moved>` or `err <errno> <step>`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
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

/// The data runs of `src` via SEEK_DATA/SEEK_HOLE, then copied run by run, with the
/// kernel asked (POSIX_FADV_WILLNEED) to read 16 runs ahead, as the core does.
fn copy_sparse(src: &File, dst: &File, size: u64) -> Result<u64, StepError> {
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
    for (i, &(off, len)) in runs.iter().enumerate() {
        if i > 0 {
            runs.get(i + 15).into_iter().for_each(hint);
        }
        moved += step("copy_file_range", copy_run(src, dst, off, len as u64))?;
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
            copy_sparse(&s, &d, size)?
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

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let mut out = io::stdout().lock();
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line?;
        let mut parts = line.splitn(3, ' ');
        let (mode, src, dst) = match (parts.next(), parts.next(), parts.next()) {
            (Some(m @ ("clone" | "sparse" | "link" | "unlink")), Some(s), Some(d)) => (m, s, d),
            _ => {
                writeln!(
                    out,
                    "err 22 request: expected `clone|sparse|link|unlink <src> <dst>`"
                )?;
                out.flush()?;
                continue;
            }
        };
        let mut tmp = Path::new(dst).as_os_str().to_owned();
        tmp.push(format!("~floor{n}"));
        let tmp = PathBuf::from(tmp);
        let done = match mode {
            "link" | "unlink" => durable_namespace(mode, Path::new(src), Path::new(dst)),
            _ => durable_copy(mode, Path::new(src), Path::new(dst), &tmp),
        };
        match done {
            Ok((ns, moved)) => writeln!(out, "ok {ns} {moved}")?,
            Err(StepError(what, e)) => {
                let _ = fs::remove_file(&tmp); // leave nothing behind, like the real copy
                writeln!(out, "err {} {what}: {e}", e.raw_os_error().unwrap_or(0))?
            }
        }
        out.flush()?;
    }
    Ok(())
}
