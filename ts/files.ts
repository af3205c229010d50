// Creating and resizing image files.
import { native } from './binding'
import { unwrap } from './outcome'
import { validatePath, validateSize } from './validate'

/** Create (atomically, durably, mode 0600) a file of `size` bytes with no data blocks. Replaces an existing file; creates the parent directory. */
export async function createSparseFile(path: string, size: number): Promise<void> {
  validatePath('path', path)
  validateSize('size', size)
  await unwrap(native.createSparseFile(path, size))
}

/** Truncate or extend `path` in place to `size` bytes (new space is a hole), then fsync it. */
export async function resizeFile(path: string, size: number): Promise<void> {
  validatePath('path', path)
  validateSize('size', size)
  await unwrap(native.resizeFile(path, size))
}
