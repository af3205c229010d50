// Space a file takes, and how much of it is shared with reflinked copies.
import { native } from './binding'
import { unwrap } from './outcome'
import { validatePath } from './validate'

/** The space a file takes: allocation and the FIEMAP shared/exclusive split. */
export interface FileUsage {
  /** Apparent size in bytes. */
  size: number
  /** Allocated bytes (st_blocks * 512). */
  allocated: number
  /** Bytes in extents shared with other files (FIEMAP_EXTENT_SHARED). */
  shared: number
  /** Bytes in extents this file has to itself. */
  exclusive: number
  /** Number of extents (FIEMAP). */
  extents: number
}

/** Apparent size, allocated bytes, shared vs exclusive bytes (FIEMAP) and extent count of `path`. */
export async function fileUsage(path: string): Promise<FileUsage> {
  validatePath('path', path)
  return unwrap(native.fileUsage(path))
}
