//! Errors that keep the OS errno and its context (syscall, path, dest) intact,
//! so the binding can hand them to JS as data and TS can throw Node-shaped
//! errors. Library codes (`ERR_*`) are for failures that have no errno.

use std::fmt;
use std::path::{Path, PathBuf};

/// Declares the library codes as constants and lists them all in `ALL`, from one
/// list, so the list handed to JS (and its parity test with `ts/errors.ts`) cannot
/// miss a code.
macro_rules! library_codes {
    ($($(#[$meta:meta])* $name:ident,)*) => {
        $($(#[$meta])* pub const $name: &str = stringify!($name);)*
        /// Every library code, in declaration order.
        pub const ALL: &[&str] = &[$($name),*];
    };
}

/// Library error codes that can come out of the core or the binding: the one Rust
/// table. Never renamed; each has an entry in `ERROR_CODES` of `ts/errors.ts`.
pub mod codes {
    library_codes! {
        /// `reflink: always` was asked for and the filesystem cannot clone.
        ERR_REFLINK_UNSUPPORTED,
        /// The operation was cancelled through its `Control`.
        ABORT_ERR,
        /// An argument the caller passed is out of range.
        ERR_INVALID_ARG_VALUE,
        /// A Rust panic was caught at the binding boundary.
        ERR_INTERNAL,
        /// Source file changed under a copy (shrank while being read).
        ERR_SOURCE_CHANGED,
        /// A send stream is truncated, reordered, altered or not a send stream at all.
        ERR_STREAM_CORRUPT,
        /// A send stream of a format version this build does not read.
        ERR_STREAM_VERSION,
        /// A keyed send stream does not authenticate under the given key (another key,
        /// altered, spliced), or a key was given and the stream is unkeyed, or the other way.
        ERR_STREAM_AUTH,
        /// A stream key file that others could read or replace (group/other permission
        /// bits, not a regular file, a symlink, another owner): refused, as ssh does.
        ERR_KEY_FILE_UNSAFE,
        /// A resumed send stream does not continue the partial receive the volume holds
        /// (another state, base or offset), or the volume holds none.
        ERR_RESUME_MISMATCH,
        /// A path inside a pool is a symlink, leads out of the pool, or is not a regular
        /// file (or a writable image with more than one link): never followed or opened.
        ERR_UNSAFE_PATH,
        /// A pool directory is owned by another user or writable by group or others.
        ERR_UNSAFE_PERMISSIONS,
        /// A FIFO, device, socket or directory where a regular file is needed (never opened for I/O).
        ERR_NOT_REGULAR_FILE,
        /// A value the binding cannot represent exactly in JS (a number above 2^53).
        ERR_OUT_OF_RANGE,
        /// An operation that allocates was refused: it could take the pool's filesystem
        /// below its `minFree` floor (raised by the TS pool layer; listed here for parity).
        ERR_LOW_SPACE,
        /// The volume is in use by another call that must not be taken over (an import in
        /// progress: a receive refuses rather than write where its caller writes).
        ERR_VOLUME_BUSY,
    }
}

#[derive(Debug, Clone)]
pub struct Error {
    /// OS errno when the failure came from a syscall.
    pub errno: Option<i32>,
    /// Library code when there is no errno (one of `codes::*`).
    pub code: Option<&'static str>,
    /// The syscall (or step) that failed, e.g. `ioctl(FICLONE)`, `copy_file_range`.
    pub syscall: &'static str,
    pub path: Option<PathBuf>,
    pub dest: Option<PathBuf>,
    /// Extra human detail (without the errno text, which is derived).
    pub detail: Option<String>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    // Constructors by origin only (OS errno, std::io::Error, library code); context
    // such as the path is always added with the `with_*` builders.

    /// An OS error (errno) from `syscall`.
    pub fn os(errno: nix::errno::Errno, syscall: &'static str) -> Self {
        Error {
            errno: Some(errno as i32),
            code: None,
            syscall,
            path: None,
            dest: None,
            detail: None,
        }
    }

    /// A `std::io::Error` from `syscall`. The errno is kept; an error without one
    /// (rare: std's own checks) becomes EIO with its message as detail.
    pub fn io(err: std::io::Error, syscall: &'static str) -> Self {
        match err.raw_os_error() {
            Some(n) => Error::os(nix::errno::Errno::from_raw(n), syscall),
            None => Error::os(nix::errno::Errno::EIO, syscall).with_detail(err.to_string()),
        }
    }

    /// A library error without errno (`code` is one of `codes::*`).
    pub fn lib(code: &'static str, syscall: &'static str, detail: impl Into<String>) -> Self {
        Error {
            errno: None,
            code: Some(code),
            syscall,
            path: None,
            dest: None,
            detail: Some(detail.into()),
        }
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_path(mut self, path: impl AsRef<Path>) -> Self {
        self.path = Some(path.as_ref().to_path_buf());
        self
    }

    pub fn with_dest(mut self, dest: impl AsRef<Path>) -> Self {
        self.dest = Some(dest.as_ref().to_path_buf());
        self
    }

    /// The errno as a `nix` value, if any.
    pub fn errno(&self) -> Option<nix::errno::Errno> {
        self.errno.map(nix::errno::Errno::from_raw)
    }

    /// The errno name (`ENOENT`) or the library code.
    pub fn code_name(&self) -> String {
        match (self.code, self.errno()) {
            (Some(c), _) => c.to_string(),
            (None, Some(e)) => format!("{e:?}"),
            (None, None) => codes::ERR_INTERNAL.to_string(),
        }
    }

    pub fn is_aborted(&self) -> bool {
        self.code == Some(codes::ABORT_ERR)
    }
}

impl fmt::Display for Error {
    /// Node style: `ENOENT: no such file or directory, open '/a' -> '/b'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.code_name())?;
        match (self.errno(), &self.detail) {
            (Some(e), Some(d)) => write!(f, "{}, {}", e.desc().to_lowercase(), d)?,
            (Some(e), None) => write!(f, "{}", e.desc().to_lowercase())?,
            (None, Some(d)) => write!(f, "{d}")?,
            (None, None) => write!(f, "internal error")?,
        }
        write!(f, ", {}", self.syscall)?;
        if let Some(p) = &self.path {
            write!(f, " '{}'", p.display())?;
        }
        if let Some(d) = &self.dest {
            write!(f, " -> '{}'", d.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
