// How a directory entry is named in messages. Neutral: the CLI uses it before
// any native code is loaded, the pool in its refusals.
import type { Stats } from 'node:fs'

/** What a non-regular entry is, for messages: 'a directory', 'a FIFO', ... */
export function entryKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory'
  if (st.isSymbolicLink()) return 'a symlink'
  if (st.isFIFO()) return 'a FIFO'
  if (st.isSocket()) return 'a socket'
  if (st.isCharacterDevice()) return 'a character device'
  if (st.isBlockDevice()) return 'a block device'
  return 'a regular file'
}
