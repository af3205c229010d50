// The key file of a keyed send stream (docs/design.md §8.8): read once, before anything
// is sent or received, and only if nobody but its owner could have read or replaced it,
// as ssh treats a private key. The file is outside any pool, so it is opened by path
// here, without following a symlink in its last component and without blocking on a
// FIFO; its contents (32 raw bytes or 64 hex digits) are parsed by the native side.
import { constants, promises as fsp } from 'node:fs'
import { poolError } from '../store/fail'

/** More than any valid key file holds (64 hex digits and a newline): the rest is not read. */
const MAX_KEY_FILE = 128

/** The contents of the key file `path`, refused (ERR_KEY_FILE_UNSAFE) unless it is a regular file owned by this user (or root) that group and others can neither read nor write. */
export async function readKeyFile(path: string): Promise<Buffer> {
  let fh: fsp.FileHandle
  try {
    fh = await fsp.open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') {
      throw poolError('ERR_KEY_FILE_UNSAFE', `The key file ${path} is a symlink: give the file itself`, { path })
    }
    throw e
  }
  try {
    const st = await fh.stat()
    const uid = process.getuid?.() ?? 0
    let why: string | null = null
    if (!st.isFile()) why = 'is not a regular file'
    else if (st.uid !== uid && st.uid !== 0) why = `belongs to another user (uid ${st.uid})`
    else if ((st.mode & 0o077) !== 0) why = `is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`
    if (why) throw poolError('ERR_KEY_FILE_UNSAFE', `The key file ${path} ${why}`, { path })
    const buf = Buffer.alloc(MAX_KEY_FILE + 1)
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
    if (bytesRead > MAX_KEY_FILE) {
      throw poolError('ERR_INVALID_ARG_VALUE', `The key file ${path} is too long: a stream key is 32 raw bytes or 64 hex digits`, { path })
    }
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}
