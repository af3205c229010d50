//! Directory handles: every file operation inside a pool is resolved relative to an
//! open directory, never by walking a path string again (docs/design.md §5).
//!
//! API (small on purpose; other modules build on it):
//! - [`Dir::open_root`]`(path)`: open a pool directory once (a symlink at `path` itself is
//!   followed at this one open: it is the user's choice) and check it (StrictModes, below).
//! - [`Dir::open_path`]`(path)`: open any directory as ordinary tools do (symlinks followed,
//!   no ownership check): the public path-based primitives for files outside pools.
//! - [`Dir::entry`]`(rel)`: the file `rel` (relative to this directory) as an [`Entry`]: its
//!   parent directory opened beneath this one, plus its final name. [`Entry::of_path`] is the
//!   same for an ordinary path.
//! - [`Dir::open_dir`] / [`Dir::create_dir_all`]: a sub-directory beneath this one (existing,
//!   or created with mode 0700 whatever the umask, each new entry's parent fsynced;
//!   [`Dir::create_dir_all_unsynced`] leaves those fsyncs to a group commit's barrier).
//! - [`Entry::open`] / [`Entry::open_writable_image`]: open a regular file (never a symlink,
//!   FIFO, device or socket; a writable image must also have exactly one link).
//! - [`Entry::stat`], [`Dir::list`]: look without following symlinks.
//! - raw namespace steps without fsync ([`Entry::rename_to`], [`Entry::link_to`],
//!   [`Entry::unlink`], [`Entry::rmdir`]; by name in a directory held open,
//!   [`Dir::stat_name`], [`Dir::unlink_name`], [`Dir::rmdir_name`]); `durable` adds the
//!   directory fsyncs.
//!
//! Resolution beneath a directory: `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)` (Linux >= 5.6); where the kernel lacks it (ENOSYS, remembered),
//! a walk of one `openat(O_NOFOLLOW | O_DIRECTORY)` per component. `rel` must be relative
//! with plain components only (no `..`, no `.`, no empty component). A symlink anywhere on
//! the way, or an escape, is `ERR_UNSAFE_PATH` (errno ELOOP/EXDEV kept); so is a final entry
//! that is not a regular file when one is needed. Because each step acts on (directory fd,
//! one name), a directory swapped for a symlink between two steps cannot redirect a step
//! outside: the next resolution refuses the symlink, and an open fd keeps naming the
//! directory it was opened on.
//!
//! StrictModes (as OpenSSH's): a confined directory (the root and every directory resolved
//! beneath it) must be owned by the effective user or by root and must not be writable by
//! group or others; else `ERR_UNSAFE_PERMISSIONS`, whose message names the fix. Another
//! local user who could write there could plant or swap entries.
//!
//! Opening a file never blocks: `fstatat(AT_SYMLINK_NOFOLLOW)` first (a FIFO or device is
//! refused before any open), then `openat(O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)` and `fstat`
//! (the entry may have been replaced in between). Costs: one openat2 (or one openat per
//! component) and one fstat per resolved directory; one fstatat, openat, fstat per file.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fsync, linkat, lseek, unlinkat, UnlinkatFlags, Whence};

use crate::error::{codes, Error, Result};
use crate::sys;

/// Cleared once openat2 reported ENOSYS (kernel < 5.6): use the per-component walk.
static HAS_OPENAT2: AtomicBool = AtomicBool::new(true);

/// Use the per-component walk from now on, as on a kernel without openat2 (tests of
/// the fallback run with this; it is what ENOSYS does).
#[doc(hidden)]
pub fn disable_openat2() {
    HAS_OPENAT2.store(false, Ordering::Relaxed);
}

/// Mode of every directory the pool creates (fchmod after mkdirat: umask-proof).
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the pool creates.
pub const FILE_MODE: u32 = 0o600;

/// An open directory and the path it is shown as in messages.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
    /// Resolved beneath a pool root: symlinks refused, StrictModes checked.
    confined: bool,
}

/// A file named by (its parent directory, one name): what every `*at` step acts on.
#[derive(Debug)]
pub struct Entry {
    pub dir: Dir,
    pub name: OsString,
}

/// What a name is, as seen without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Kind {
    pub fn of(st: &FileStat) -> Kind {
        match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFREG => Kind::File,
            SFlag::S_IFDIR => Kind::Dir,
            SFlag::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
            Kind::Other => "other",
        }
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// An `ERR_UNSAFE_PATH` error for `path` (a symlink, an escape or a non-regular entry).
pub fn unsafe_path(path: &Path, syscall: &'static str, what: &str) -> Error {
    Error::lib(
        codes::ERR_UNSAFE_PATH,
        syscall,
        format!("{what}; refusing to use it (the pool never follows or opens such entries)"),
    )
    .with_path(path)
}

impl Dir {
    /// Open the pool directory `path` (following a symlink at `path` itself, once) and
    /// check it: owned by this user or root, not writable by group or others.
    pub fn open_root(path: &Path) -> Result<Dir> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(path, flags, Mode::empty())
            .map_err(|e| Error::os(e, "open").with_path(path))?;
        let dir = Dir {
            fd,
            path: path.to_path_buf(),
            confined: true,
        };
        dir.check_strict()?;
        Ok(dir)
    }

    /// Open the directory `path` as ordinary tools do (symlinks followed, no checks).
    pub fn open_path(path: &Path) -> Result<Dir> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(path, flags, Mode::empty())
            .map_err(|e| Error::os(e, "open").with_path(path))?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
            confined: false,
        })
    }

    /// The path this directory is shown as (the root as given, joined with `rel`s).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` as shown in messages: this directory's path joined with it.
    pub fn shown(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A second handle on the same directory (dup).
    pub fn try_clone(&self) -> Result<Dir> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| Error::io(e, "dup").with_path(&self.path))?;
        Ok(Dir {
            fd,
            path: self.path.clone(),
            confined: self.confined,
        })
    }

    /// fsync the directory (makes its entries durable).
    pub fn fsync(&self) -> Result<()> {
        fsync(self.fd()).map_err(|e| Error::os(e, "fsync").with_path(&self.path))
    }

    /// StrictModes: owned by the effective user or root, not writable by group or others.
    fn check_strict(&self) -> Result<()> {
        if !self.confined {
            return Ok(());
        }
        let st = fstat(self.fd()).map_err(|e| Error::os(e, "fstat").with_path(&self.path))?;
        let euid = nix::unistd::geteuid().as_raw();
        let shown = self.path.display();
        let fix = if st.st_uid != euid && st.st_uid != 0 {
            format!(
                "is owned by uid {} (this process runs as uid {euid}); fix: chown {euid} '{shown}'",
                st.st_uid
            )
        } else if st.st_mode & 0o022 != 0 {
            format!(
                "is writable by {} (mode {:o}); fix: chmod go-w '{shown}'",
                if st.st_mode & 0o020 != 0 {
                    "its group"
                } else {
                    "others"
                },
                st.st_mode & 0o7777
            )
        } else {
            return Ok(());
        };
        Err(Error::lib(
            codes::ERR_UNSAFE_PERMISSIONS,
            "open",
            format!("pool directory {fix}: another user could change the pool's files"),
        )
        .with_path(&self.path))
    }

    /// The directory `rel` beneath this one (no symlinks, no `..`), checked (StrictModes).
    /// An empty `rel` is this directory (a second handle).
    pub fn open_dir(&self, rel: &Path) -> Result<Dir> {
        let parts = components(&self.path, rel)?;
        if parts.is_empty() {
            return self.try_clone();
        }
        let shown = self.shown(rel);
        let fd = self.resolve(rel, &parts, &shown)?;
        let dir = Dir {
            fd,
            path: shown,
            confined: self.confined,
        };
        dir.check_strict()?;
        Ok(dir)
    }

    fn resolve(&self, rel: &Path, parts: &[&OsStr], shown: &Path) -> Result<OwnedFd> {
        if !self.confined {
            // Ordinary resolution (public primitives): symlinks followed like any tool.
            return openat(
                self.fd(),
                rel,
                DIR_FLAGS.difference(OFlag::O_NOFOLLOW),
                Mode::empty(),
            )
            .map_err(|e| Error::os(e, "open").with_path(shown));
        }
        if HAS_OPENAT2.load(Ordering::Relaxed) {
            let how = OpenHow::new().flags(DIR_FLAGS).resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
            let mut tries = 0;
            loop {
                match openat2(self.fd(), rel, how) {
                    Ok(fd) => return Ok(fd),
                    // A concurrent rename in the tree: the kernel asks to retry.
                    Err(Errno::EAGAIN) if tries < 16 => tries += 1,
                    Err(Errno::ENOSYS) => {
                        HAS_OPENAT2.store(false, Ordering::Relaxed);
                        break;
                    }
                    Err(e) => return Err(resolve_error(e, "openat2", shown)),
                }
            }
        }
        let mut cur: Option<OwnedFd> = None;
        for part in parts {
            let at = cur.as_ref().map_or(self.fd(), |fd| fd.as_fd());
            let next = openat(at, *part, DIR_FLAGS, Mode::empty())
                .map_err(|e| resolve_error(e, "openat", shown))?;
            cur = Some(next);
        }
        cur.ok_or_else(|| Error::os(Errno::EINVAL, "openat").with_path(shown))
    }

    /// mkdir -p of `rel` beneath this directory: each missing component is created with
    /// mode 0700 (fchmod: whatever the umask), and its parent fsynced. Existing components
    /// must be real directories (StrictModes checked on each).
    pub fn create_dir_all(&self, rel: &Path) -> Result<Dir> {
        self.make_dir_all(rel, None)
    }

    /// `create_dir_all` without the parent fsyncs, for a caller whose own barrier makes
    /// the new directories durable (a group commit, `group_commit`): each directory it
    /// creates is appended to `made` (relative to this one, in creation order, so a
    /// failed caller can remove them deepest first).
    pub fn create_dir_all_unsynced(&self, rel: &Path, made: &mut Vec<PathBuf>) -> Result<Dir> {
        self.make_dir_all(rel, Some(made))
    }

    /// mkdir -p; `made: None` fsyncs each new entry's parent, `Some` lists the new entries.
    fn make_dir_all(&self, rel: &Path, mut made: Option<&mut Vec<PathBuf>>) -> Result<Dir> {
        let parts = components(&self.path, rel)?;
        if let Ok(d) = self.open_dir(rel) {
            return Ok(d);
        }
        let mut cur = self.try_clone()?;
        let mut at = PathBuf::new();
        for part in parts {
            at.push(part);
            let (dir, created) = cur.create_child_dir(part, made.is_none())?;
            if let (true, Some(made)) = (created, made.as_deref_mut()) {
                made.push(at.clone());
            }
            cur = dir;
        }
        Ok(cur)
    }

    /// The child directory `name`, created (0700, parent fsynced when `sync`) when
    /// missing; whether it was created.
    fn create_child_dir(&self, name: &OsStr, sync: bool) -> Result<(Dir, bool)> {
        let shown = self.shown(name);
        let created = match mkdirat(self.fd(), name, Mode::from_bits_truncate(DIR_MODE)) {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(e) => return Err(Error::os(e, "mkdir").with_path(&shown)),
        };
        let fd = openat(self.fd(), name, self.dir_flags(), Mode::empty())
            .map_err(|e| resolve_error(e, "openat", &shown))?;
        let dir = Dir {
            fd,
            path: shown,
            confined: self.confined,
        };
        if created {
            fchmod(dir.fd(), Mode::from_bits_truncate(DIR_MODE))
                .map_err(|e| Error::os(e, "fchmod").with_path(&dir.path))?;
            if sync {
                self.fsync()?;
            }
        } else {
            dir.check_strict()?;
        }
        Ok((dir, created))
    }

    /// lstat of `name` in this directory: `None` when missing.
    pub fn stat_name(&self, name: &OsStr) -> Result<Option<FileStat>> {
        match fstatat(self.fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(Error::os(e, "lstat").with_path(self.shown(name))),
        }
    }

    /// unlinkat(2) of the non-directory `name` (no fsync); `false` when it did not exist.
    pub fn unlink_name(&self, name: &OsStr) -> Result<bool> {
        match unlinkat(self.fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(Error::os(e, "unlink").with_path(self.shown(name))),
        }
    }

    /// rmdir of `name` via unlinkat(AT_REMOVEDIR) (no fsync); `false` when missing or
    /// not empty.
    pub fn rmdir_name(&self, name: &OsStr) -> Result<bool> {
        match unlinkat(self.fd(), name, UnlinkatFlags::RemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT | Errno::ENOTEMPTY | Errno::EEXIST) => Ok(false),
            Err(e) => Err(Error::os(e, "rmdir").with_path(self.shown(name))),
        }
    }

    fn dir_flags(&self) -> OFlag {
        if self.confined {
            DIR_FLAGS
        } else {
            DIR_FLAGS.difference(OFlag::O_NOFOLLOW)
        }
    }

    /// The file `rel` beneath this directory: its parent opened (no symlinks) + its name.
    pub fn entry(&self, rel: &Path) -> Result<Entry> {
        let (parent, name) = split(&self.path, rel)?;
        Ok(Entry {
            dir: self.open_dir(parent)?,
            name: name.to_os_string(),
        })
    }

    /// Like `entry`, creating the parent directories (0700) when missing.
    pub fn entry_creating(&self, rel: &Path) -> Result<Entry> {
        let (parent, name) = split(&self.path, rel)?;
        Ok(Entry {
            dir: self.create_dir_all(parent)?,
            name: name.to_os_string(),
        })
    }

    /// The kind of the entry `name`: the type its directory entry gave (`listed`), or, where
    /// the filesystem gives none (DT_UNKNOWN), an lstat's; `None` when it vanished meanwhile.
    fn kind_of_entry(&self, name: &OsStr, listed: Option<Kind>) -> Result<Option<Kind>> {
        match listed {
            Some(kind) => Ok(Some(kind)),
            None => Ok(self.stat_name(name)?.map(|st| Kind::of(&st))),
        }
    }

    /// The names in this directory with their kinds (not followed), `.` and `..` excluded,
    /// unsorted, read on this handle's own descriptor after rewinding it: an lseek and
    /// two getdents64 for a small directory, where `list` opens a second descriptor.
    /// Not for a handle another thread lists at the same time (one file offset).
    pub fn entries(&self) -> Result<Vec<(OsString, Kind)>> {
        lseek(self.fd(), 0, Whence::SeekSet)
            .map_err(|e| Error::os(e, "lseek").with_path(&self.path))?;
        let mut buf = vec![0u8; 32 << 10];
        let mut out = Vec::new();
        loop {
            let n = sys::getdents64(self.fd(), &mut buf)
                .map_err(|e| Error::os(e, "getdents64").with_path(&self.path))?;
            if n == 0 {
                return Ok(out);
            }
            // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name (NUL-terminated).
            let mut at = 0;
            while at < n {
                let rec = &buf[at..];
                let reclen = usize::from(u16::from_ne_bytes([rec[16], rec[17]]));
                let raw = &rec[19..reclen];
                let name = OsStr::from_bytes(
                    &raw[..raw.iter().position(|&c| c == 0).unwrap_or(raw.len())],
                );
                at += reclen;
                if name == "." || name == ".." {
                    continue;
                }
                let listed = match rec[18] {
                    libc::DT_REG => Some(Kind::File),
                    libc::DT_DIR => Some(Kind::Dir),
                    libc::DT_LNK => Some(Kind::Symlink),
                    libc::DT_UNKNOWN => None,
                    _ => Some(Kind::Other),
                };
                if let Some(kind) = self.kind_of_entry(name, listed)? {
                    out.push((name.to_os_string(), kind));
                }
            }
        }
    }

    /// The names in this directory with their kinds (not followed), `.` and `..` excluded,
    /// sorted by name (bytewise, as Node's `fs.readdir` returns them). The order matters
    /// beyond tidiness: callers keep what they load in listing order, and a pool's volume
    /// list sorted from near-sorted input is linear, from hash order (XFS, ext4) it is
    /// n log n string comparisons on every rescan.
    pub fn list(&self) -> Result<Vec<(OsString, Kind)>> {
        let fd = openat(self.fd(), ".", DIR_FLAGS, Mode::empty())
            .map_err(|e| Error::os(e, "open").with_path(&self.path))?;
        let mut d = nix::dir::Dir::from_fd(fd)
            .map_err(|e| Error::os(e, "opendir").with_path(&self.path))?;
        let mut out = Vec::new();
        for ent in d.iter() {
            let ent = ent.map_err(|e| Error::os(e, "readdir").with_path(&self.path))?;
            let name = OsStr::from_bytes(ent.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            use nix::dir::Type;
            let listed = ent.file_type().map(|t| match t {
                Type::File => Kind::File,
                Type::Directory => Kind::Dir,
                Type::Symlink => Kind::Symlink,
                _ => Kind::Other,
            });
            if let Some(kind) = self.kind_of_entry(name, listed)? {
                out.push((name.to_os_string(), kind));
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

impl Entry {
    /// The entry `path` outside any pool: its parent directory opened as ordinary tools do.
    pub fn of_path(path: &Path) -> Result<Entry> {
        let name = path
            .file_name()
            .filter(|n| *n != "." && *n != "..")
            .ok_or_else(|| {
                Error::lib(
                    codes::ERR_INVALID_ARG_VALUE,
                    "open",
                    "the path must name a file",
                )
                .with_path(path)
            })?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut dir = Dir::open_path(parent)?;
        // Messages show the path as the caller gave it.
        dir.path = parent.to_path_buf();
        Ok(Entry {
            dir,
            name: name.to_os_string(),
        })
    }

    /// The path shown in messages.
    pub fn shown(&self) -> PathBuf {
        self.dir.shown(&self.name)
    }

    /// lstat: `None` when missing.
    pub fn stat(&self) -> Result<Option<FileStat>> {
        self.dir.stat_name(&self.name)
    }

    /// The refusal of a non-regular entry: `ERR_UNSAFE_PATH` inside a pool,
    /// `ERR_NOT_REGULAR_FILE` for an ordinary path.
    pub fn not_regular(&self, syscall: &'static str, kind: Kind) -> Error {
        let what = match kind {
            Kind::Symlink => "a symlink",
            Kind::Dir => "a directory",
            _ => "not a regular file (a FIFO, device or socket)",
        };
        if self.dir.confined {
            unsafe_path(
                &self.shown(),
                syscall,
                &format!("{} is {what}", self.shown().display()),
            )
        } else {
            Error::lib(
                codes::ERR_NOT_REGULAR_FILE,
                syscall,
                format!("{what}; only regular files are opened"),
            )
            .with_path(self.shown())
        }
    }

    /// Open the regular file (never a symlink, FIFO, device or socket; never blocks).
    /// `flags` adds the access mode and e.g. O_CREAT (then `mode` applies).
    pub fn open(&self, flags: OFlag, mode: u32) -> Result<File> {
        // Look first: a FIFO or device is never opened (opening one can block or act).
        if let Some(st) = self.stat()? {
            if Kind::of(&st) != Kind::File {
                return Err(self.not_regular("open", Kind::of(&st)));
            }
        }
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = openat(
            self.dir.fd(),
            self.name.as_os_str(),
            flags,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|e| match e {
            Errno::ELOOP => self.not_regular("open", Kind::Symlink),
            e => Error::os(e, "open").with_path(self.shown()),
        })?;
        // Replaced between the look and the open: check what was opened.
        let st = fstat(fd.as_fd()).map_err(|e| Error::os(e, "fstat").with_path(self.shown()))?;
        if Kind::of(&st) != Kind::File {
            return Err(self.not_regular("open", Kind::of(&st)));
        }
        Ok(File::from(fd))
    }

    /// Open the regular file read-only (see `open`).
    pub fn open_read(&self) -> Result<File> {
        self.open(OFlag::O_RDONLY, 0)
    }

    /// Open an image the pool will write through (dirty, precache, import): a regular
    /// file with exactly one link, else `ERR_UNSAFE_PATH` (a planted hardlink would make
    /// the pool write into a file outside it).
    pub fn open_writable_image(&self) -> Result<File> {
        let f = self.open(OFlag::O_RDWR, FILE_MODE)?;
        let st = fstat(f.as_fd()).map_err(|e| Error::os(e, "fstat").with_path(self.shown()))?;
        self.check_single_link(&st)?;
        Ok(f)
    }

    /// Open for writing in place: inside a pool every such file is a writable image
    /// (`open_writable_image`); outside, any regular file (O_WRONLY).
    pub fn open_for_write(&self) -> Result<File> {
        if self.dir.confined {
            self.open_writable_image()
        } else {
            self.open(OFlag::O_WRONLY, 0)
        }
    }

    /// `ERR_UNSAFE_PATH` unless `st` (of this entry) has exactly one link.
    fn check_single_link(&self, st: &FileStat) -> Result<()> {
        if st.st_nlink == 1 {
            return Ok(());
        }
        Err(unsafe_path(
            &self.shown(),
            "open",
            &format!(
                "{} has {} hard links (a writable image must have exactly one)",
                self.shown().display(),
                st.st_nlink
            ),
        ))
    }

    /// renameat(2) over `to` (no fsync; see `durable::rename`).
    pub fn rename_to(&self, to: &Entry) -> Result<()> {
        nix::fcntl::renameat(
            self.dir.fd(),
            self.name.as_os_str(),
            to.dir.fd(),
            to.name.as_os_str(),
        )
        .map_err(|e| {
            Error::os(e, "rename")
                .with_path(self.shown())
                .with_dest(to.shown())
        })
    }

    /// linkat(2) to `to` (no fsync; symlinks are linked as themselves, never followed).
    pub fn link_to(&self, to: &Entry) -> Result<()> {
        linkat(
            self.dir.fd(),
            self.name.as_os_str(),
            to.dir.fd(),
            to.name.as_os_str(),
            AtFlags::empty(),
        )
        .map_err(|e| {
            Error::os(e, "link")
                .with_path(self.shown())
                .with_dest(to.shown())
        })
    }

    /// unlinkat(2) of a non-directory (no fsync); `false` when it did not exist.
    pub fn unlink(&self) -> Result<bool> {
        self.dir.unlink_name(&self.name)
    }

    /// rmdir via unlinkat(AT_REMOVEDIR) (no fsync); `false` when missing or not empty.
    pub fn rmdir(&self) -> Result<bool> {
        self.dir.rmdir_name(&self.name)
    }
}

/// An error resolving a confined path: a symlink (ELOOP; ENOTDIR for a symlink opened
/// with O_DIRECTORY | O_NOFOLLOW), a non-directory where a directory must be (ENOTDIR) or
/// an escape (EXDEV) is `ERR_UNSAFE_PATH` with its errno kept: none of them is something
/// the pool created.
fn resolve_error(e: Errno, syscall: &'static str, shown: &Path) -> Error {
    match e {
        Errno::ELOOP | Errno::EXDEV | Errno::ENOTDIR => {
            let mut err = unsafe_path(
                shown,
                syscall,
                &format!(
                    "{} leads through a symlink, a non-directory or out of the pool directory",
                    shown.display()
                ),
            );
            err.errno = Some(e as i32);
            err
        }
        e => Error::os(e, syscall).with_path(shown),
    }
}

/// The plain components of `rel` (split on `/`, nothing normalised away); `..`, `.`, an
/// empty component (a leading, doubled or trailing `/`) are refused. `""` has none.
fn components<'a>(base: &Path, rel: &'a Path) -> Result<Vec<&'a OsStr>> {
    let bytes = rel.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    bytes
        .split(|&b| b == b'/')
        .map(|c| match c {
            b"" | b"." | b".." => Err(unsafe_path(
                &base.join(rel),
                "open",
                &format!(
                    "'{}' is not a plain relative path (no '..', '.', empty or leading '/')",
                    rel.display()
                ),
            )),
            c => Ok(OsStr::from_bytes(c)),
        })
        .collect()
}

/// `rel` as (its parent, its final name); the name must be a plain component.
fn split<'a>(base: &Path, rel: &'a Path) -> Result<(&'a Path, &'a OsStr)> {
    let parts = components(base, rel)?;
    let name = *parts.last().ok_or_else(|| {
        Error::lib(
            codes::ERR_INVALID_ARG_VALUE,
            "open",
            "the path must name a file",
        )
        .with_path(base)
    })?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    Ok((parent, name))
}
