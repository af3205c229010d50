// The library's errors: ONE table of codes (never renamed), one error class,
// and the conversion from the binding's error data to Node-shaped errors.
//
// OS failures keep Node's shape (see Node's `uvException`): `code` is the errno
// name ('ENOENT'), `errno` is NEGATIVE like Node's uv errors (-2), plus
// `syscall`, `path`, `dest`, and a message such as
// "ENOENT: no such file or directory, open '/x'".
// Library failures have an `ERR_*` code from ERROR_CODES and no errno; their
// message is the detail alone (as Node's own ERR_* errors: the code is in `code`).
import type { constants } from 'node:os'
import type { NativeError } from './binding'

/**
 * Every library code the package can throw, with what it means: the one TS table.
 * The codes the native side produces come from `codes` in crates/core/src/error.rs;
 * __test__/error-codes-parity.test.ts checks that each of them is here.
 */
export const ERROR_CODES = {
  ERR_INVALID_ARG_TYPE: 'An argument has the wrong type (e.g. a number where a path string is expected).',
  ERR_INVALID_ARG_VALUE: 'An argument has the right type but an unacceptable value (negative, fractional or unsafe-integer size, empty path, unknown option).',
  ERR_REFLINK_UNSUPPORTED: 'A reflink was required (reflink: "always", or pool setup with setupCheck) but the filesystem cannot clone between these files.',
  ERR_INVALID_VID: 'A volume id is malformed or could leave the pool directory.',
  ERR_UNKNOWN_VOLUME: 'No volume with this vid exists in the pool.',
  ERR_VOLUME_EXISTS: 'A volume with this vid already exists in the pool, or files of it exist without a record (the message names them; adopt them instead).',
  ERR_VOLUME_BROKEN: 'The record of this volume is unreadable or invalid (a symlink, truncated, or failing its schema); the volume is listed but every call on it is refused.',
  ERR_POOL_BROKEN: 'The pool configuration file (.reflink-pool/pool.json) is unreadable or invalid; the pool cannot be opened.',
  ERR_VOLUME_DIRTY: 'The volume is running (has a dirty image); stop it first.',
  ERR_HAS_DEPENDENTS: 'Other volumes start from this one (snapshot volumes of a source); it is removed only together with them (recursive). The error lists them in `dependents`; nothing was changed.',
  ERR_VOLUME_BUSY: 'Another call is using the volume in a way this one must not take over (an import in progress: importData until its importDataEnd); nothing was changed.',
  ERR_REVISION_NOT_FOUND: 'The requested revision does not exist.',
  ERR_VOLUME_READ_ONLY: 'The volume is read-only.',
  ERR_NOT_SAVE_ON_STOP: 'The operation needs a save-on-stop volume.',
  ERR_MISSING_IMAGE: 'An image file the volume needs does not exist.',
  ERR_SHRINK_REFUSED: 'Shrinking a volume needs { allowShrink: true }.',
  ERR_POOL_CLOSED: 'The pool was closed; open it again to use it.',
  ERR_UNSAFE_PATH: 'A path in the pool is a symlink, leads outside it, is not a regular file, or is a writable image with more than one hard link; nothing was done.',
  ERR_UNSAFE_PERMISSIONS: 'The pool directory (or one of its directories) is owned by another user or writable by group or others; the message says how to fix it (chown / chmod go-w). Nothing was done.',
  ERR_NOT_REGULAR_FILE: 'A path names a FIFO, device, socket or directory where a regular file is needed; it was not opened for I/O.',
  ERR_SOURCE_CHANGED: 'The source file changed (shrank) while it was being copied.',
  ERR_STREAM_CORRUPT: 'A send stream is truncated, reordered, altered or not a send stream; nothing was changed.',
  ERR_STREAM_VERSION: 'A send stream has a format version this build cannot read; nothing was changed.',
  ERR_STREAM_AUTH: 'A keyed send stream does not authenticate under the given key (made under another key, or altered), or a keyed stream met a receive without a key, or the other way round; nothing was changed.',
  ERR_KEY_FILE_UNSAFE: 'A stream key file is readable or writable by group or others, is not a regular file, is a symlink, or belongs to another user: refused (chmod 600 it), as ssh does.',
  ERR_RESUME_MISMATCH: 'A resumed send stream does not continue the partial receive this volume holds (another state, base or offset), or it holds none; nothing was changed. Ask for a new token (volume resume-token) or send a full stream.',
  ERR_BASE_NOT_FOUND: 'The volume does not hold the base state an incremental send stream needs; nothing was changed.',
  ERR_BASE_MISMATCH: 'The volume holds the base state of an incremental stream, but its size or image checksum differs from the sender\'s; nothing was changed.',
  ERR_LOW_SPACE: 'The operation could take the pool\'s filesystem below its minFree floor (the message names the free space, what the operation could write and the floor; the error carries free, need and floor in bytes); nothing was changed. Stop and remove always run.',
  ERR_OUT_OF_RANGE: 'A native value does not fit a JavaScript number exactly (above 2^53 - 1).',
  ERR_INTERNAL: 'A bug: an unexpected internal failure (e.g. a caught Rust panic).',
  ABORT_ERR: 'The operation was aborted through its AbortSignal; nothing was changed.',
} as const

/** A library code: a key of ERROR_CODES. */
export type LibraryErrorCode = keyof typeof ERROR_CODES

/** An errno name as Node reports it ('ENOENT', 'EXDEV', ...). */
export type ErrnoCode = keyof typeof constants.errno

/** Every `code` a ReflinkPoolError can carry: a library code or an errno name. */
export type ErrorCode = LibraryErrorCode | ErrnoCode

/** The optional context of a ReflinkPoolError (Node's uv error fields, and a cause). */
export interface ErrorDetails {
  /** Negative errno (as Node's uv errors). */
  errno?: number
  /** The system call that failed. */
  syscall?: string
  /** The file the failure is about. */
  path?: string
  /** The second file of a two-path operation. */
  dest?: string
  /** The underlying error (an abort's `signal.reason`, a loader error). */
  cause?: unknown
}

/** Every error the library throws is one of these (AbortError included). */
export class ReflinkPoolError extends Error {
  /** Errno name ('ENOENT', 'EXDEV', ...) or a library code from ERROR_CODES. */
  readonly code: ErrorCode
  /** Negative errno like Node's uv errors; undefined for library codes. */
  readonly errno?: number
  /** The system call that failed ('open', 'ioctl(FICLONE)', ...), for OS failures. */
  readonly syscall?: string
  /** The file the failure is about. */
  readonly path?: string
  /** The second file of a two-path operation (copy, rename, link). */
  readonly dest?: string

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'ReflinkPoolError'
    this.code = code
    if (details.errno !== undefined) this.errno = details.errno
    if (details.syscall !== undefined) this.syscall = details.syscall
    if (details.path !== undefined) this.path = details.path
    if (details.dest !== undefined) this.dest = details.dest
  }
}

/** The rejection of an aborted operation: name 'AbortError', code 'ABORT_ERR' (as Node's own). */
export class AbortError extends ReflinkPoolError {
  constructor(message = 'The operation was aborted', details: ErrorDetails = {}) {
    super('ABORT_ERR', message, details)
    this.name = 'AbortError'
  }
}

/** A library error; the message is `detail` (the code is in `code`, not repeated). */
export function libraryError(code: LibraryErrorCode, detail: string, details: ErrorDetails = {}): ReflinkPoolError {
  if (code === 'ABORT_ERR') return new AbortError(detail, details)
  return new ReflinkPoolError(code, detail, details)
}

/** The error for an aborted signal, keeping `signal.reason` as `cause` (as Node does). */
export function abortError(signal?: AbortSignal): AbortError {
  return new AbortError('The operation was aborted', signal ? { cause: signal.reason } : {})
}

/** Throw the AbortError of `signal` when it has been aborted (the check at a safe point of a long call). */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError(signal)
}

/** Build the thrown error from the binding's error data. */
export function fromNativeError(e: NativeError): ReflinkPoolError {
  const details: ErrorDetails = {
    errno: e.errno === undefined || e.errno === null ? undefined : -Math.abs(e.errno),
    syscall: e.syscall,
    path: e.path ?? undefined,
    dest: e.dest ?? undefined,
  }
  if (e.code === 'ABORT_ERR') return new AbortError('The operation was aborted', details)
  const code = e.code as ErrorCode
  // Errno messages keep Node's "ENOENT: no such file or directory, open '/x'" shape;
  // a library code is not repeated in front of its message.
  const message = code in ERROR_CODES && e.message.startsWith(`${code}: `) ? e.message.slice(code.length + 2) : e.message
  return new ReflinkPoolError(code, message, details)
}

/** Whether `e` is an error of this library (with `code`, when given: a typo in it does not compile). */
export function isReflinkPoolError(e: unknown, code?: ErrorCode): e is ReflinkPoolError {
  return e instanceof ReflinkPoolError && (code === undefined || e.code === code)
}
