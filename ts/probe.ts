// Can a directory hold reflinks?
import { native } from './binding'
import { unwrap } from './outcome'
import { validatePath } from './validate'

/** Whether a file in `dstDir` can be a reflink of a file in `srcDir` (default: `dstDir`), probed with real bytes in unnamed temp files. */
export async function isReflinkSupported(dstDir: string, srcDir?: string): Promise<boolean> {
  validatePath('dstDir', dstDir)
  if (srcDir !== undefined) validatePath('srcDir', srcDir)
  return unwrap(native.isReflinkSupported(dstDir, srcDir))
}
