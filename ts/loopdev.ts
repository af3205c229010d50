// Telling loop devices that their backing file changed size.
import { native } from './binding'
import { unwrap } from './outcome'
import { validatePath } from './validate'

/**
 * Issue LOOP_SET_CAPACITY on every loop device whose backing file is the same
 * file as `path` (compared by resolved real path, so a symlink matches).
 * Resolves with the devices updated, e.g. ['/dev/loop3'].
 */
export async function updateLoopDevSizes(path: string): Promise<string[]> {
  validatePath('path', path)
  return unwrap(native.updateLoopDevSizes(path))
}
