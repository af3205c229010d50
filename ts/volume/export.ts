// Data out of a volume (docs/design.md §6): the committed image as a path, a
// stream or a copy into a file outside the pool. Only saveOnStop volumes have one.
import { resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { poolError } from '../store/fail'
import { throwIfAborted } from '../errors'
import { optional, progressOptions, validateOptions, validatePath, validateSignal } from '../validate'
import { exportStream as readCommitted, pumpExport } from './stream'
import { isInside, outsideStat } from '../store/files'
import { entryKind } from '../util/entry-kind'
import { quote } from '../util/quote'
import type { CopyReport, ExportFileOptions, ExportPipeOptions, ExportStreamOptions } from '../store/types'
import type { VolumeAccess } from './access'

/** A path to the committed data (S only). Commits rename a new inode over it, so an open reader keeps its data. */
export async function exportPath(v: VolumeAccess): Promise<string> {
  v.usable()
  v.requireSaveOnStop('export')
  const p = v.paths
  await v.ctx.files.checkDir(p.dir)
  const [clean, dirty] = await v.ctx.files.images([p.clean, p.dirty])
  if (clean) return p.clean
  if (dirty && v.snapshotsDisabled) {
    throw poolError('ERR_VOLUME_DIRTY', `Cannot export ${v.vid} while it runs: snapshots are disabled, so its only image is in use`, {
      vid: v.vid,
    })
  }
  throw v.missing(p.clean)
}

/** Ends an exportPath(). The exported path is the clean image itself, so there is nothing to release. */
export function exportEnd(v: VolumeAccess, path: string): void {
  if (path !== v.paths.clean) {
    throw poolError('ERR_INVALID_ARG_VALUE', `${JSON.stringify(path)} is not an export of ${v.vid}`, { vid: v.vid })
  }
}

/** A Readable of the committed image (or of bytes `start` to `end`, inclusive); `signal` destroys it. */
export function exportStream(v: VolumeAccess, options?: ExportStreamOptions): Readable {
  v.usable()
  v.requireSaveOnStop('exportStream')
  const o = validateOptions('options', options, ['start', 'end', 'signal'])
  const signal = optional<AbortSignal>('options.signal', o.signal, validateSignal)
  throwIfAborted(signal)
  return readCommitted(v.ctx.files, () => exportPath(v), { start: o.start, end: o.end, signal })
}

/** Write the committed image (or bytes `start` to `end`, inclusive) into the open descriptor `fd`, natively. */
export async function exportPipe(v: VolumeAccess, fd: number, options?: ExportPipeOptions): Promise<number> {
  v.usable()
  v.requireSaveOnStop('exportPipe')
  const o = validateOptions('options', options, ['start', 'end', 'signal', 'onProgress'])
  const { signal, onProgress } = progressOptions({ signal: o.signal, onProgress: o.onProgress })
  throwIfAborted(signal)
  return pumpExport(v.ctx.files, () => exportPath(v), fd, { start: o.start, end: o.end, signal }, onProgress)
}

/** Copy the committed image to the regular file `path` (outside the pool) with the durable copy. */
export async function exportToFile(v: VolumeAccess, path: string, options?: ExportFileOptions): Promise<CopyReport> {
  v.usable()
  v.requireSaveOnStop('exportToFile')
  validatePath('path', path)
  const opts = progressOptions(options)
  throwIfAborted(opts.signal)
  // resolve() drops a trailing slash: 'backups/' must not become a file named 'backups'.
  if (path.endsWith('/')) {
    throw poolError('ERR_INVALID_ARG_VALUE', `Cannot export ${v.vid} to ${quote(path)}: it names a directory (ends in '/'); give the name of the file to write`, { vid: v.vid, path })
  }
  const dest = resolve(path)
  const existing = await outsideStat(dest, false)
  if (existing && !existing.isFile()) {
    throw poolError('ERR_INVALID_ARG_VALUE', `Cannot export ${v.vid} to ${dest}: it exists and is ${entryKind(existing)}, not a regular file (stream it instead: exportStream)`, {
      vid: v.vid,
      path: dest,
    })
  }
  if (await isInside(v.ctx.dirPath, dest)) {
    throw poolError('ERR_INVALID_ARG_VALUE', `Cannot export ${v.vid} to ${dest}: it is inside the pool ${v.ctx.dirPath}, where only the pool makes files (export outside it; to copy a volume within the pool, clone it)`, {
      vid: v.vid,
      path: dest,
    })
  }
  const src = await exportPath(v)
  try {
    return await v.ctx.files.copyOut(src, dest, opts)
  } finally {
    exportEnd(v, src)
  }
}
