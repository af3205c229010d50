// Data into a volume (docs/design.md §6). Every import is refused while the volume
// runs, writes `V-import.img` under the volume's lock with the import marker
// written first (recovery removes a crashed import), and commits it as a stop
// does (a revision of the old image is added, the size follows the file) but
// makes no precache (lifecycle.ts, CommitOptions); a failure deletes it,
// so nothing committed changes. withImport is that frame.
// A receive (docs/design.md §8.5) writes into a file of its own, never into the
// import name that importData hands out: it touches no marker, is refused with
// ERR_VOLUME_BUSY while another call's import is in progress, and has its state's
// identity recorded by the commit (refuseWhileImporting and endReceive, in the
// sequence of send.ts).
import { resolve } from 'node:path'
import { poolError } from '../store/fail'
import { throwIfAborted } from '../errors'
import { ownerAlive, writeOwnerMarker } from '../store/owner'
import { optional, progressOptions, validateBoolean, validateFunction, validateOneOf, validateOptions, validatePath, validateSignal, validateSize } from '../validate'
import { pumpImport, writeImport } from './stream'
import { outsideStat } from '../store/files'
import { entryKind } from '../util/entry-kind'
import { commit } from './lifecycle'
import { copyCost, guardSpace, METADATA_BYTES } from '../store/space'
import { exportEnd, exportPath } from './export'
import type { StateChange } from '../store/states'
import type { CopyReport, ImportFileOptions, ImportStreamOptions } from '../store/types'
import type { VolumeAccess, VolumeImages } from './access'

type ProgressFn = (doneBytes: number, totalBytes: number) => void

/**
 * The frame of every import: under the volume's lock, `check` the images before anything
 * changes (by default: refuse a dirty volume), mark the import and create its file
 * (`size` null: `body` makes it), run `body` with what `check` answered and commit the
 * import; when `body` fails, the import file is deleted instead. A receive has its own
 * sequence (send.ts) over refuseWhileImporting and endReceive.
 */
export function withImport<T, C = void>(
  v: VolumeAccess,
  size: number | null,
  body: (checked: C) => Promise<T>,
  check?: (images: VolumeImages) => Promise<C>,
): Promise<T> {
  return v.locked(async () => {
    const images = await v.guard()
    let checked: C | undefined
    if (check) checked = await check(images)
    else refuseWhileDirty(v, 'import into', images)
    await beginImport(v, size)
    let result: T
    try {
      result = await body(checked as C)
    } catch (e) {
      await endImport(v, false)
      throw e
    }
    await endImport(v, true)
    return result
  })
}

/** Mark an import as in progress (for recovery) and create its sparse file (size null: the copy creates it). */
async function beginImport(v: VolumeAccess, size: number | null): Promise<void> {
  await v.ctx.files.ensureDir(v.paths.dir)
  await writeOwnerMarker(v.ctx.files, v.ctx.store.importMarkPath(v.vid))
  if (size !== null) await v.ctx.files.createSparse(v.paths.import, size)
}

/**
 * A receive never takes over an import in progress: the import file is the caller's of
 * importData (in this process or another live one) until its importDataEnd. A marker
 * whose owner died marks an abandoned import, which recovery removes: no refusal.
 */
export async function refuseWhileImporting(v: VolumeAccess): Promise<void> {
  const held = await v.ctx.files.readOwner(v.ctx.store.importMarkPath(v.vid))
  if (held && ownerAlive(held.owner, held.mtimeMs)) {
    throw poolError('ERR_VOLUME_BUSY', `Cannot receive into ${v.vid}: an import into it is in progress (${v.paths.import}); it must end (importDataEnd) first`, {
      vid: v.vid,
      path: v.paths.import,
    })
  }
}

/**
 * End a receive under its lock (docs/design.md §8.5): commit its own file (null: none
 * made yet), with the state it is (`received`) recorded before the rename, or delete it.
 * The file lives only under this call's lock (recovery removes it by its temp name), so
 * no marker is written or removed.
 */
export function endReceive(v: VolumeAccess, success: boolean, file: string | null, received?: StateChange['record']): Promise<void> {
  return endImport(v, success, { file }, received)
}

/**
 * Commit the import (its size becomes the volume's; `received`: its state) or delete it.
 * `own`: a receive's, whose file (null: none made yet) is the one committed or deleted and
 * which has no marker; else the import file, whose marker is dropped after.
 */
async function endImport(v: VolumeAccess, success: boolean, own?: { file: string | null }, received?: StateChange['record']): Promise<void> {
  const file = own ? own.file : v.paths.import
  if (success && file) {
    try {
      const imp = await v.ctx.files.writableImage(file) // never commit a hardlinked import
      await commit(v, file, { received, precache: false })
      if (imp && imp.size !== v.record.size) await v.persist({ ...v.record, size: imp.size })
    } catch (e) {
      // A receive's file is nobody else's: a failed commit leaves no temp behind (a crash does, for recovery).
      if (own) await v.ctx.files.remove(file).catch(() => {})
      throw e
    }
  } else if (file) {
    await v.ctx.files.remove(file)
  }
  if (!own) await v.ctx.files.remove(v.ctx.store.importMarkPath(v.vid))
}

/** Imports are refused while a dirty image exists: the stop would rename it over the imported data. */
function refuseWhileDirty(v: VolumeAccess, what: string, images: VolumeImages): void {
  if (images.dirty) {
    throw poolError('ERR_VOLUME_DIRTY', `Cannot ${what} ${v.vid}: it is running or was not cleanly stopped (${v.paths.dirty} exists); stop it first`, {
      vid: v.vid,
      path: v.paths.dirty,
    })
  }
}

/** A sparse import file of exactly `size` bytes for the caller to write into; importDataEnd finishes it. */
export async function importData(v: VolumeAccess, size: number): Promise<string> {
  v.usable()
  v.requireSaveOnStop('importData')
  validateSize('size', size)
  await guardSpace(v.ctx, `import ${size} bytes into ${v.vid}`, size) // the caller may write all of it
  return v.locked(async () => {
    refuseWhileDirty(v, 'import into', await v.guard())
    await beginImport(v, size)
    return v.paths.import
  })
}

/** Commit the import file of importData (a revision is added) or delete it. */
export async function importDataEnd(v: VolumeAccess, success: boolean): Promise<void> {
  v.usable()
  v.requireSaveOnStop('importDataEnd')
  validateBoolean('success', success)
  await v.locked(async () => {
    const p = v.paths
    const images = await v.guard()
    if (success && !images.import) throw v.missing(p.import)
    if (success) refuseWhileDirty(v, 'commit an import into', images)
    await endImport(v, success)
  })
}

/** Import the raw image file `path` with the durable copy and commit it; resolves how it was copied. */
export async function importFile(v: VolumeAccess, path: string, options?: ImportFileOptions): Promise<CopyReport> {
  v.usable()
  v.requireSaveOnStop('importFile')
  validatePath('path', path)
  const o = validateOptions('options', options, ['signal', 'onProgress', 'sparse', 'size'])
  const sparse = o.sparse ?? 'auto'
  validateOneOf('options.sparse', sparse, ['auto', 'always'])
  const opts = {
    signal: optional<AbortSignal>('options.signal', o.signal, validateSignal),
    onProgress: optional<ProgressFn>('options.onProgress', o.onProgress, validateFunction),
    sparse,
    size: optional<number>('options.size', o.size, validateSize),
  }
  throwIfAborted(opts.signal)
  const src = resolve(path)
  // Opening a FIFO or device for reading would block or never end: those are streams.
  const st = await outsideStat(src, true)
  if (st && !st.isFile()) {
    throw poolError('ERR_INVALID_ARG_VALUE', `Cannot import ${src} into ${v.vid}: it is ${entryKind(st)}, not a regular file (stream it instead: importStream)`, {
      vid: v.vid,
      path: src,
    })
  }
  // Its data (allocated) bytes: a reflink from the same filesystem would cost less, a copy that much.
  await guardSpace(v.ctx, `import ${src} into ${v.vid}`, METADATA_BYTES + (st ? st.blocks * 512 : 0))
  return withImport(v, null, () => v.ctx.files.copyIn(src, v.paths.import, opts))
}

/** Import exactly `size` bytes that the native core reads from the pipe, FIFO or file at `source`, and commit them. */
export async function importPipe(v: VolumeAccess, source: string, size: number, options?: ImportStreamOptions): Promise<void> {
  v.usable()
  v.requireSaveOnStop('importPipe')
  validatePath('source', source)
  validateSize('size', size)
  const opts = progressOptions(options)
  throwIfAborted(opts.signal)
  const st = await outsideStat(resolve(source), true)
  if (st?.isDirectory()) throw poolError('ERR_INVALID_ARG_VALUE', `Cannot import ${source} into ${v.vid}: it is a directory`, { vid: v.vid, path: source })
  await guardSpace(v.ctx, `import ${size} bytes into ${v.vid}`, size) // zero blocks stay holes, but which ones is not known yet
  await withImport(v, size, () => pumpImport(v.ctx.files, v.paths.import, source, size, opts))
}

/** Write `readable` (exactly `size` bytes) through the import file; commit only if it ends cleanly. */
export async function importStream(v: VolumeAccess, readable: AsyncIterable<ArrayBufferView>, size: number, options?: ImportStreamOptions): Promise<void> {
  v.usable()
  v.requireSaveOnStop('importStream')
  if (readable === null || typeof (readable as Partial<AsyncIterable<Uint8Array>>)?.[Symbol.asyncIterator] !== 'function') {
    throw poolError('ERR_INVALID_ARG_TYPE', 'importStream needs a readable stream (an async iterable of bytes)', { vid: v.vid })
  }
  validateSize('size', size)
  const opts = progressOptions(options)
  throwIfAborted(opts.signal)
  await guardSpace(v.ctx, `import ${size} bytes into ${v.vid}`, size)
  await withImport(v, size, () => writeImport(v.ctx.files, v.paths.import, readable, size, opts))
}

/** Copy the committed data of the volume `src` into the import file and commit it (arguments already checked). */
export function importVolume(v: VolumeAccess, src: VolumeAccess, signal?: AbortSignal): Promise<CopyReport> {
  return withImport(
    v,
    null,
    async (srcPath: string) => {
      try {
        const report = await v.ctx.files.copy(srcPath, v.paths.import, { signal }, src.ctx.files)
        throwIfAborted(signal) // aborted as the copy ended: nothing is committed yet, so drop it
        return report
      } finally {
        exportEnd(src, srcPath)
      }
    },
    async (images) => {
      refuseWhileDirty(v, 'import into', images)
      throwIfAborted(signal)
      const srcPath = await exportPath(src) // before anything changes: the source must have committed data
      try {
        await guardSpace(v.ctx, `import ${src.vid} into ${v.vid}`, () => copyCost(v.ctx, async () => (await src.ctx.files.usage(srcPath)).allocated))
      } catch (e) {
        exportEnd(src, srcPath)
        throw e
      }
      return srcPath
    },
  )
}
