// Send and receive of committed states between pools (docs/design.md §8).
//
// send: under the volume's lock, find the target (the clean image) and the optional
// base (a revision), give both their identities (states.ts), get the base's image hash
// (recorded, else computed once by reading its data), and open the native SendStream,
// which holds both files open: a commit or prune after the lock is released cannot
// change what is being sent (committed images are never modified in place). The stream
// is then pulled batch by batch as the consumer reads. At the end the target's image
// hash is recorded, so the next incremental from it does not have to read it.
//
// receive: read and check the header first (a corrupt or unknown header changes
// nothing); under the lock refuse a dirty volume, find the base by identity among the
// committed images and check its size and image hash; then build the new image in the
// import file (a clone of the base resized to the target size, or a sparse file), let
// the native ReceiveStream apply and verify every record and the image hash, and commit
// it like an import (a revision is added; the commit fsyncs the file). The sender's
// identity for the new image is written with the revision's carried one, in one write of
// the state book before the rename. No import marker: the import lives only under the
// volume's lock, and recovery removes an import that has none. Any failure deletes the
// import file: nothing committed changes (docs/design.md §8.5).
import { Readable } from 'node:stream'
import { native } from '../binding'
import { unwrap } from '../outcome'
import { abortError } from '../errors'
import { poolError } from './fail'
import { chunkBytes, optional, validateBoolean, validateFunction, validateOptions, validatePath, validateSignal, validateString } from '../validate'
import { VolumeStates, type StateChange } from './states'
import { readKeyFile } from './stream-key'
import type { PoolContext } from './context'
import type { VolumePaths } from './names'
import type { CopyReport } from './types'

/** Options of `volume.send`. */
export interface SendOptions {
  /** The revision to send the difference from (the receiver must hold it); default: a full stream. */
  base?: number | string
  /** Compress each DATA record with zstd (level 3); the receiver detects it. Default false. */
  compress?: boolean
  /** Authenticate the stream under the key in this file (docs/design.md §8.6): the receiver needs the same key file. */
  keyFile?: string
  /** Abort the send: the stream ends with an AbortError. */
  signal?: AbortSignal
  /** Image bytes covered so far, and the image size. */
  onProgress?: (doneBytes: number, totalBytes: number) => void
}

/** Options of `volume.receive`. */
export interface ReceiveOptions {
  /**
   * A volume of this pool (its vid) that holds a similar image, e.g. an older version of
   * the template: a full stream is applied to a clone of its committed image, writing
   * only the blocks that differ, so the result shares every unchanged extent with it
   * (docs/design.md §8.8). Ignored for an incremental stream, which starts from its base.
   */
  like?: string
  /** Accept only a stream authenticated under the key in this file (docs/design.md §8.6); without it, a keyed stream is refused. */
  keyFile?: string
  /** Abort the receive: nothing is committed. */
  signal?: AbortSignal
  /** Image bytes covered so far, and the image size. */
  onProgress?: (doneBytes: number, totalBytes: number) => void
}

/** What `volume.receive` committed. */
export interface ReceiveReport {
  /** Identity of the state now committed (the sender's). */
  id: string
  /** Identity of the base the stream was applied to; null for a full stream. */
  baseId: string | null
  /** Size of the committed image in bytes. */
  size: number
  /** Whether the stream's DATA records were zstd-compressed. */
  compressed: boolean
  /** Whether the stream was authenticated under a key (docs/design.md §8.6). */
  keyed: boolean
  /** The volume (options.like) whose image a full stream was applied over, else null. */
  like: string | null
  /** How the starting image was made: a clone or copy of the base (or of the `like` volume's image), or a sparse file. */
  method: CopyReport['method'] | 'sparse'
}

/** What send.ts needs of a volume (its private lifecycle steps). */
export interface SendAccess {
  vid: string
  ctx: PoolContext
  paths: VolumePaths
  /** The volume's kind, written into the stream header (a receiver can create the volume from it). */
  kind: { saveOnStop: boolean; snapOnStart: boolean; rw: boolean }
  /** Run under the volume's lock (after re-reading its record). */
  locked<T>(fn: () => Promise<T>): Promise<T>
  /** The planted-symlink check; stats of [clean, dirty, precache, import]. */
  guard(): Promise<{ clean: { size: number } | null; dirty: { size: number } | null }>
  /** The committed (clean) image of volume `vid` of the same pool, null if it has none; ERR_UNKNOWN_VOLUME for an unknown vid. */
  committedImageOf(vid: string): Promise<string | null>
  /** The volume's revisions, oldest first. */
  revisions(): Promise<{ rev: number; path: string }[]>
  /** The import frame of volume-import.ts: under the lock, `check`, then `body` writes the import file, which is committed (or deleted when `body` fails). */
  withImport<T, C>(
    size: number | null,
    body: (checked: C) => Promise<T>,
    check: (images: { dirty: { size: number } | null }) => Promise<C>,
    /** A receive's import: no marker; `received`, once `body` succeeded, is recorded by the commit. */
    frame?: { marker?: boolean; received?: () => StateChange['record'] },
  ): Promise<T>
  states: VolumeStates
}

/** Bytes asked of the native sender per step. */
const BATCH = 2 << 20

/** The committed images of a volume: the clean image, then its revisions. */
async function committed(v: SendAccess): Promise<string[]> {
  return [v.paths.clean, ...(await v.revisions()).map((r) => r.path)]
}

/** The recorded image hash of a state, else compute it (reading its data runs once) and record it. */
async function imageHash(v: SendAccess, path: string, state: { id: string; hash: string | null }, token: InstanceType<typeof native.CancelToken>): Promise<string> {
  if (state.hash) return state.hash
  const hash = await v.ctx.files.hashImage(path, token)
  await v.states.record(path, state.id, hash)
  return hash
}

/** Wire an AbortSignal to a native CancelToken; returns the detach function. */
function cancelOn(signal: AbortSignal | undefined, token: InstanceType<typeof native.CancelToken>): () => void {
  if (!signal) return () => {}
  const onAbort = () => token.cancel()
  signal.addEventListener('abort', onAbort, { once: true })
  return () => signal.removeEventListener('abort', onAbort)
}

export function sendVolume(v: SendAccess, options?: SendOptions): Readable {
  const o = validateOptions('options', options, ['base', 'compress', 'keyFile', 'signal', 'onProgress'])
  const signal = optional<AbortSignal>('options.signal', o.signal, validateSignal)
  const compress = optional<boolean>('options.compress', o.compress, validateBoolean) ?? false
  const keyFile = optional<string>('options.keyFile', o.keyFile, validatePath)
  const onProgress = optional<NonNullable<SendOptions['onProgress']>>('options.onProgress', o.onProgress, validateFunction)
  const base = o.base
  if (base !== undefined && !(typeof base === 'string' || (typeof base === 'number' && Number.isSafeInteger(base)))) {
    throw poolError('ERR_INVALID_ARG_TYPE', `base must be a revision number, got ${typeof base}`, { vid: v.vid })
  }

  async function* generate(): AsyncGenerator<Buffer> {
    if (signal?.aborted) throw abortError(signal)
    const token = new native.CancelToken()
    const detach = cancelOn(signal, token)
    let stream: InstanceType<typeof native.SendStream> | undefined
    try {
      const key = keyFile === undefined ? null : await readKeyFile(keyFile)
      const opened = await v.locked(async () => {
        const { clean, dirty } = await v.guard()
        if (!clean) {
          if (dirty) throw poolError('ERR_VOLUME_DIRTY', `Cannot send ${v.vid} while it runs: snapshots are disabled, so its only image is in use`, { vid: v.vid })
          throw poolError('ERR_MISSING_IMAGE', `Missing image file ${v.paths.clean} for volume ${v.vid}`, { vid: v.vid, path: v.paths.clean })
        }
        let basePath: string | null = null
        if (base !== undefined) {
          const rev = (await v.revisions()).find((r) => String(r.rev) === String(base))
          if (!rev) throw poolError('ERR_REVISION_NOT_FOUND', `Volume ${v.vid} has no revision ${JSON.stringify(base)}`, { vid: v.vid })
          basePath = rev.path
        }
        const [target, baseState] = await v.states.identify(basePath ? [v.paths.clean, basePath] : [v.paths.clean])
        if (!target || (basePath && !baseState)) throw poolError('ERR_SOURCE_CHANGED', `An image of ${v.vid} vanished while the send was prepared`, { vid: v.vid })
        const header = {
          size: target.size,
          targetId: target.id,
          ...v.kind,
          compressed: compress,
          keyed: key !== null,
          ...(basePath && baseState
            ? { baseId: baseState.id, baseSize: baseState.size, baseHash: await imageHash(v, basePath, baseState, token) }
            : {}),
        }
        const s = v.ctx.files.sendStream(v.paths.clean, basePath, header, key, token)
        await unwrap(s.open())
        return { stream: s, target }
      })
      stream = opened.stream
      for (;;) {
        if (signal?.aborted) throw abortError(signal)
        const { data, position } = await unwrap(stream.next(BATCH))
        if (!data) break
        onProgress?.(position, opened.target.size)
        yield data
      }
      const stats = stream.stats()
      if (stats && !opened.target.hash) {
        // The next incremental from this state need not read it: remember its hash.
        await v.locked(async () => {
          const found = await v.states.find([v.paths.clean, ...(await v.revisions()).map((r) => r.path)], opened.target.id)
          if (found) await v.states.record(found.path, opened.target.id, stats.imageHash)
        })
      }
    } catch (e) {
      if ((e as { code?: string }).code === 'ABORT_ERR') throw abortError(signal)
      throw e
    } finally {
      detach()
      if (stream) await unwrap(stream.close()).catch(() => {})
    }
  }
  return Readable.from(generate(), { objectMode: false })
}

/** Pull bytes from `it` until `buf` holds at least `n`; returns what was read (possibly fewer at the end). */
async function readAtLeast(it: AsyncIterator<ArrayBufferView>, n: number, signal?: AbortSignal): Promise<Buffer> {
  const parts: Buffer[] = []
  let have = 0
  while (have < n) {
    if (signal?.aborted) throw abortError(signal)
    const next = await it.next()
    if (next.done) break
    const chunk = toBuffer(next.value)
    parts.push(chunk)
    have += chunk.length
  }
  return Buffer.concat(parts)
}

/** A stream chunk as a Buffer over the same bytes (any ArrayBufferView; anything else a typed error). */
function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk
  const bytes = chunkBytes('chunk', chunk)
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

export async function receiveVolume(v: SendAccess, source: AsyncIterable<ArrayBufferView>, options?: ReceiveOptions): Promise<ReceiveReport> {
  if (source === null || typeof (source as Partial<AsyncIterable<ArrayBufferView>>)?.[Symbol.asyncIterator] !== 'function') {
    throw poolError('ERR_INVALID_ARG_TYPE', 'receive needs a readable stream (an async iterable of bytes)', { vid: v.vid })
  }
  const o = validateOptions('options', options, ['like', 'keyFile', 'signal', 'onProgress'])
  const like = optional<string>('options.like', o.like, validateString)
  const signal = optional<AbortSignal>('options.signal', o.signal, validateSignal)
  const onProgress = optional<NonNullable<ReceiveOptions['onProgress']>>('options.onProgress', o.onProgress, validateFunction)
  const keyFile = optional<string>('options.keyFile', o.keyFile, validatePath)
  if (signal?.aborted) throw abortError(signal)
  const key = keyFile === undefined ? null : await readKeyFile(keyFile)

  const it = source[Symbol.asyncIterator]()
  const token = new native.CancelToken()
  const detach = cancelOn(signal, token)
  try {
    const first = await readAtLeast(it, native.sendHeaderLength(), signal)
    // Checks (and under a key, authenticates) the header: refused before anything is locked or written.
    const header = await unwrap(Promise.resolve(native.parseSendHeader(first.subarray(0, native.sendHeaderLength()), key)))
    const headLen = header.headerLength ?? first.length
    // Under the lock, before anything changes: refuse a dirty volume, find the base and check it.
    // What the new image starts from: the base (incremental), a clone of the --like volume (full), or nothing.
    const check = async ({ dirty }: { dirty: unknown }): Promise<{ from: string | null; over: boolean }> => {
      if (dirty) {
        throw poolError('ERR_VOLUME_DIRTY', `Cannot receive into ${v.vid}: it is not cleanly stopped (${v.paths.dirty} exists)`, { vid: v.vid, path: v.paths.dirty })
      }
      let basePath: string | null = null
      if (header.baseId) {
        const found = await v.states.find(await committed(v), header.baseId)
        if (!found) {
          throw poolError('ERR_BASE_NOT_FOUND', `Volume ${v.vid} does not hold the base state ${header.baseId} of this incremental stream; send a full stream or one from a state it holds`, { vid: v.vid })
        }
        const hash = await imageHash(v, found.path, found.state, token)
        if (found.state.size !== header.baseSize || hash !== header.baseHash) {
          throw poolError('ERR_BASE_MISMATCH', `The base state ${header.baseId} of ${v.vid} differs from the sender's (size or image checksum); send a full stream`, { vid: v.vid, path: found.path })
        }
        basePath = found.path
      } else if (like !== undefined) {
        const image = await v.committedImageOf(like)
        if (!image) throw poolError('ERR_MISSING_IMAGE', `Volume ${like} (--like) has no committed image to start from`, { vid: v.vid })
        return { from: image, over: true }
      }
      return { from: basePath, over: false }
    }
    let received: StateChange['record'] = null
    const report = await v.withImport(null, async ({ from, over }: { from: string | null; over: boolean }) => {
      let ok = false
      let method: ReceiveReport['method'] = 'sparse'
      const r = v.ctx.files.receiveStream(v.paths.import, first.subarray(0, headLen), key, over, token)
      try {
        // A scratch clone: the commit fsyncs the import before its rename, and recovery removes any import.
        if (from) method = (await v.ctx.files.copy(from, v.paths.import, { size: header.size, signal, scratch: true })).method
        else await v.ctx.files.createSparse(v.paths.import, header.size)
        await unwrap(r.open())
        let pending: Buffer | null = first.subarray(headLen)
        for (;;) {
          if (signal?.aborted) throw abortError(signal)
          let chunk: Buffer
          if (pending) {
            chunk = pending
            pending = null
          } else {
            const next = await it.next()
            if (next.done) break
            chunk = toBuffer(next.value)
          }
          if (chunk.length === 0) continue
          const { position } = await unwrap(r.write(chunk))
          onProgress?.(position, header.size)
        }
        const { imageHash: hash } = await unwrap(r.finish())
        if (signal?.aborted) throw abortError(signal)
        received = { path: v.paths.import, id: header.targetId, hash: hash ?? null }
        ok = true
      } finally {
        if (!ok) {
          await unwrap(r.close()).catch(() => {})
        }
      }
      return { id: header.targetId, baseId: header.baseId ?? null, size: header.size, compressed: header.compressed ?? false, keyed: header.keyed ?? false, like: over ? like ?? null : null, method }
    }, check, { marker: false, received: () => received })
    onProgress?.(header.size, header.size)
    return report
  } catch (e) {
    if ((e as { code?: string }).code === 'ABORT_ERR') throw abortError(signal)
    throw e
  } finally {
    detach()
    await it.return?.().catch(() => {})
  }
}
