// Loop devices backed by a file: telling them it changed size, and finding them.
import { readdir, readFile, stat } from 'node:fs/promises'
import { native } from './binding'
import { unwrap } from './outcome'
import { validatePath } from './validate'

/**
 * Issue LOOP_SET_CAPACITY on every loop device whose backing file is the same
 * file as `path` (compared by resolved real path, so a symlink matches).
 * Resolves with the devices updated, e.g. ['/dev/loop3']; [] when `path` does not
 * exist (resolved leniently, as Qubes' os.path.realpath, so no device matches).
 */
export async function updateLoopDevSizes(path: string): Promise<string[]> {
  validatePath('path', path)
  return unwrap(native.updateLoopDevSizes(path))
}

/**
 * The loop devices (e.g. ['/dev/loop3']) whose backing file is the same file
 * (device and inode) as `path`, read from /sys/block/loop*\/loop/backing_file.
 * Read-only; [] when `path` does not exist or no loop device uses it.
 */
export async function loopDevicesBackedBy(path: string): Promise<string[]> {
  validatePath('path', path)
  const target = await stat(path).catch(() => null)
  if (!target) return []
  const devices = await readdir('/sys/block').catch(() => [] as string[])
  const found: string[] = []
  for (const dev of devices.filter((d) => /^loop\d+$/.test(d)).sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))) {
    const backing = await readFile(`/sys/block/${dev}/loop/backing_file`, 'utf8').catch(() => null)
    if (backing === null) continue // not attached
    const file = await stat(backing.trimEnd().replace(/ \(deleted\)$/, '')).catch(() => null)
    if (file && file.dev === target.dev && file.ino === target.ino) found.push(`/dev/${dev}`)
  }
  return found
}
