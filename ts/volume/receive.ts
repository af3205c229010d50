// Receive of a send stream into a volume (docs/design.md §8); send.ts is the other end.
//
// Read and check the header first (a corrupt or unknown header changes
// nothing); under the lock refuse a dirty volume or one with an import in progress
// (ERR_VOLUME_BUSY: the import file is its caller's), find the base by identity among
// the committed images and check its size and image hash; then the native ReceiveStream
// builds the new image in a file of its own (`<import>~<random>`, O_EXCL: a clone of the
// base resized to the target size, or a sparse file), applies and verifies every record
// and the image hash, and the file is committed like an import (a revision is added; the
// commit fsyncs the file). The sender's identity for the new image is written with the
// revision's carried one, in one write of the state book before the rename. The file
// lives only under the volume's lock; recovery removes it by its temp name. Any failure
// or abort deletes it: nothing committed changes (docs/design.md §8.5). Waiting for the
// stream races the abort signal, so a silent sender cannot hold an abort up.
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { unwrap } from '../outcome'
import { abortError } from '../errors'
import { poolError } from '../store/fail'
import { chunkBytes, optional, validateFunction, validateOptions, validatePath, validateSignal, validateString } from '../validate'
import type { StateChange } from '../store/states'
import { readKeyFile } from './stream-key'
import type { PartialRecord } from './resume'
import { ReadAhead } from './read-ahead'
import { asBuffer, raceAbort } from './stream'
import { cancelOn, parseSendHeader, sendHeaderLength, type DecodedSendHeader, type NativeSendHeader } from '../store/files'
import { copyCost, guardSpace, METADATA_BYTES } from '../store/space'
import type { PoolContext } from '../store/context'
import type { CopyReport } from '../store/types'
import { committed, imageHash, type SendAccess } from './send'

/** Options of `volume.receive`. */
export interface ReceiveOptions {
  /**
   * A volume of this pool (its vid) that holds a similar image, e.g. an older version of
   * the template: a full stream is applied to a clone of its committed image, writing
   * only the blocks that differ, so the result shares every unchanged extent with it
   * (docs/design.md §8.10). Ignored for an incremental stream, which starts from its base.
   */
  like?: string
  /** Accept only a stream authenticated under the key in this file (docs/design.md §8.8); without it, a keyed stream is refused. */
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
  /** Whether the stream was authenticated under a key (docs/design.md §8.8). */
  keyed: boolean
  /** The image offset a resumed stream continued from (docs/design.md §8.9), else null. */
  resumedFrom: number | null
  /** The volume (options.like) whose image a full stream was applied over, else null. */
  like: string | null
  /** How the starting image was made: a clone or copy of the base (or of the `like` volume's image), or a sparse file. */
  method: CopyReport['method'] | 'sparse'
}

/** Bytes of stream handed to the native receiver per step (about 8 records of data). */
const PIECE = 8 << 20

/** What `pool.receiveVolume` committed. */
export interface ReceiveVolumeReport extends ReceiveReport {
  /** Whether the pool lacked the volume and this receive created it. */
  created: boolean
}

/** What a pool needs to receive into a volume it may lack (receiveCreating). */
export interface ReceiveTarget<V extends ReceivingVolume> {
  /** The volume as on disk now, or null when the pool has none of that vid. */
  load(): Promise<V | null>
  /** Create it (an origin volume) with these settings. */
  create(settings: { size: number; rw: boolean }): Promise<V>
}
/** What receiveCreating uses of a volume. */
interface ReceivingVolume {
  receive: ReceiverFn
  receiveOpened(source: AsyncIterable<ArrayBufferView>, options: ReceiveOptions | undefined, opened: OpenedStream): Promise<ReceiveReport>
  resumeToken(): Promise<string>
  cleanIno(): Promise<number | null>
  discardIfUntouched(ino: number): Promise<boolean>
}
type ReceiverFn = (source: AsyncIterable<ArrayBufferView>, options?: ReceiveOptions) => Promise<ReceiveReport>

/** A stream whose header was read and decoded (once) before its volume was made: the receive goes on from there. */
export interface OpenedStream {
  it: AsyncIterator<ArrayBufferView>
  /** The bytes read so far: the header, maybe some data. */
  first: Buffer
  decoded: DecodedSendHeader
}

/**
 * Receive into the volume `vid`, creating it when the pool lacks it (docs/design.md §8.5):
 * the header is read first, a full stream's size and kind make the volume (an origin: a
 * receiving pool holds no source for an origin-snapshot; a v1 header has no kind, so
 * origin, read-write), and a receive that then fails removes the volume it made (unless
 * another call committed into it meanwhile), so a refused stream changes nothing; a cut
 * one that kept what it verified keeps the volume, empty, for its resume. An incremental
 * stream cannot create: its base is missing.
 * Options are checked by the receive itself; here only the key is read, to parse the header.
 */
export async function receiveCreating<V extends ReceivingVolume>(
  vid: string,
  target: ReceiveTarget<V>,
  source: AsyncIterable<ArrayBufferView>,
  options?: ReceiveOptions,
): Promise<ReceiveVolumeReport> {
  const existing = await target.load()
  if (existing) return { ...(await existing.receive(source, options)), created: false }
  if (source === null || typeof (source as Partial<AsyncIterable<ArrayBufferView>>)?.[Symbol.asyncIterator] !== 'function') {
    throw poolError('ERR_INVALID_ARG_TYPE', 'receive needs a readable stream (an async iterable of bytes)', { vid })
  }
  const signal = options?.signal
  const it = source[Symbol.asyncIterator]()
  let opened: OpenedStream
  let header: NativeSendHeader
  try {
    // A keyed header authenticates only under its key: a stream that is refused creates nothing.
    const key = typeof options?.keyFile === 'string' ? await readKeyFile(options.keyFile) : null
    const first = await readAtLeast(it, sendHeaderLength(), signal)
    opened = { it, first, decoded: await parseSendHeader(first, key) }
    header = opened.decoded.fields
    if (header.baseId) {
      throw poolError('ERR_UNKNOWN_VOLUME', `No volume ${vid} to apply this incremental stream to (it needs the base state ${header.baseId}); a full stream creates the volume`, { vid })
    }
  } catch (e) {
    stopSource(source, it)
    throw e
  }
  const made = await target.create({ size: header.size, rw: header.rw ?? true }).catch((e: unknown) => {
    stopSource(source, it)
    throw e
  })
  const ino = await made.cleanIno()
  try {
    return { ...(await made.receiveOpened(source, options, opened)), created: true }
  } catch (e) {
    // A cut that kept what it verified leaves the volume for a resume (docs/design.md §8.9): a
    // first transfer is the longest. Else the volume goes, unless another call committed into it.
    const resumable = await made.resumeToken().then(() => true, () => false)
    if (!resumable && ino !== null) await made.discardIfUntouched(ino).catch(() => {})
    throw e
  }
}

/** Pull bytes from `it` until `buf` holds at least `n`; returns what was read (possibly fewer at the end). */
async function readAtLeast(it: AsyncIterator<ArrayBufferView>, n: number, signal?: AbortSignal): Promise<Buffer> {
  const parts: Buffer[] = []
  let have = 0
  while (have < n) {
    const next = await raceAbort(it.next(), signal)
    if (next.done) break
    const chunk = asBuffer(chunkBytes('chunk', next.value))
    parts.push(chunk)
    have += chunk.length
  }
  return Buffer.concat(parts)
}


/**
 * What a receive could write, from its header alone (the space guard's `need`): a full
 * stream every byte it has not yet sent; an incremental, a --like or a resumed receive
 * also starts from a clone of an image of the stream's size, a copy without reflinks.
 * An incremental or --like writes only what differs, which is not known before the data.
 */
async function receiveCost(ctx: PoolContext, header: NativeSendHeader, like: boolean): Promise<number> {
  const data = header.baseId || like ? 0 : header.size - (header.resumeFrom ?? 0)
  const cloned = header.baseId || like || header.resumeFrom != null
  return data + (cloned ? await copyCost(ctx, async () => header.size) : METADATA_BYTES)
}

/**
 * Receive a stream into `v` (docs/design.md §8.5), one straight sequence: decode the header
 * (once: `opened` when pool.receiveVolume already did), check the space, then under the
 * lock (taken once) check the header against the volume, write, verify and commit.
 */
export async function receiveVolume(v: SendAccess, source: AsyncIterable<ArrayBufferView>, options?: ReceiveOptions, opened?: OpenedStream): Promise<ReceiveReport> {
  if (source === null || typeof (source as Partial<AsyncIterable<ArrayBufferView>>)?.[Symbol.asyncIterator] !== 'function') {
    throw poolError('ERR_INVALID_ARG_TYPE', 'receive needs a readable stream (an async iterable of bytes)', { vid: v.vid })
  }
  const o = validateOptions('options', options, ['like', 'keyFile', 'signal', 'onProgress'])
  const like = optional<string>('options.like', o.like, validateString)
  const signal = optional<AbortSignal>('options.signal', o.signal, validateSignal)
  const onProgress = optional<NonNullable<ReceiveOptions['onProgress']>>('options.onProgress', o.onProgress, validateFunction)
  const keyFile = optional<string>('options.keyFile', o.keyFile, validatePath)
  if (signal?.aborted) throw abortError(signal)
  // Checked before any byte of the stream is waited for (a silent sender never delays the refusal).
  const key = opened || keyFile === undefined ? null : await readKeyFile(keyFile)

  const it = opened?.it ?? source[Symbol.asyncIterator]()
  const { token, detach } = cancelOn(signal)
  try {
    const first = opened?.first ?? (await readAtLeast(it, sendHeaderLength(), signal))
    // Checks (and under a key, authenticates) the header: refused before anything is locked or written.
    const decoded = opened?.decoded ?? (await parseSendHeader(first, key))
    const header = decoded.fields
    const headLen = header.headerLength ?? first.length
    // Before the lock and the import marker: a refusal leaves even the lock directory as it was.
    await guardSpace(v.ctx, `receive into ${v.vid}`, () => receiveCost(v.ctx, header, like !== undefined))
    const report = await v.locked(async () => {
      // 1. Check the header against the volume, before anything changes: refuse a dirty volume;
      // find what the new image starts from: the partial receive a resumed stream continues
      // (checked against our own record, docs/design.md §8.9), the base (incremental, checked),
      // a clone of the --like volume's image (full), or nothing.
      const { dirty } = await v.guard()
      if (dirty) {
        throw poolError('ERR_VOLUME_DIRTY', `Cannot receive into ${v.vid}: it is not cleanly stopped (${v.paths.dirty} exists)`, { vid: v.vid, path: v.paths.dirty })
      }
      let resumed: PartialRecord | null = null
      let from: string | null = null
      let over = false
      if (header.resumeFrom != null) {
        const p = await v.partial.read()
        if (!p || p.targetId !== header.targetId || p.baseId !== (header.baseId ?? null) || p.size !== header.size || p.offset !== header.resumeFrom) {
          const held = p ? `a partial receive of state ${p.targetId} up to byte ${p.offset}` : 'no partial receive'
          throw poolError('ERR_RESUME_MISMATCH', `This resumed stream continues state ${header.targetId} from byte ${header.resumeFrom}, but ${v.vid} holds ${held}; ask for a new token (volume resume-token) or send a full stream`, { vid: v.vid })
        }
        resumed = p
        from = p.path
        over = p.over
      } else if (header.baseId) {
        const found = await v.states.find(await committed(v), header.baseId)
        if (!found) {
          throw poolError('ERR_BASE_NOT_FOUND', `Volume ${v.vid} does not hold the base state ${header.baseId} of this incremental stream; send a full stream or one from a state it holds`, { vid: v.vid })
        }
        const hash = await imageHash(v, found.path, found.state, token)
        if (found.state.size !== header.baseSize || hash !== header.baseHash) {
          throw poolError('ERR_BASE_MISMATCH', `The base state ${header.baseId} of ${v.vid} differs from the sender's (size or image checksum); send a full stream`, { vid: v.vid, path: found.path })
        }
        from = found.path
      } else if (like !== undefined) {
        const image = await v.committedImageOf(like)
        if (!image) throw poolError('ERR_MISSING_IMAGE', `Volume ${like} (--like) has no committed image to start from`, { vid: v.vid })
        from = image
        over = true
      }
      await v.refuseWhileImporting()

      // 2. Write into a file of its own (a clone of the base or of the --like image, or sparse),
      // never the import name another call holds; 3. verify: finish() checks the END record
      // and the image hash. A cut (the source failed or ended early, or an abort) keeps what
      // was verified for a resume; a refused record does not.
      let own: string | null = null
      let refused = false
      const r = v.ctx.files.receiveStream(v.paths.import, from, decoded, over, token)
      let done: ReceiveReport
      let received: StateChange['record']
      try {
        const made = await unwrap(r.open())
        own = join(v.paths.dir, made.name!)
        const method: ReceiveReport['method'] = made.method ?? 'sparse'
        // The stream goes to the core in pieces of up to PIECE bytes, one task each (not one
        // per pipe chunk): the next piece is read while the core writes the last one.
        const ahead = new ReadAhead(it, PIECE, source instanceof Readable, signal)
        const rest = first.subarray(headLen)
        for (let piece: Buffer | null = rest.length ? rest : await ahead.take(); piece; piece = await ahead.take()) {
          if (signal?.aborted) throw abortError(signal)
          refused = true
          const { position } = await unwrap(r.write(piece))
          refused = false
          onProgress?.(position, header.size)
        }
        // Aborted while the sender closed: the abort is the cause, not a short stream.
        if (signal?.aborted) throw abortError(signal)
        const { imageHash: hash } = await unwrap(r.finish())
        if (signal?.aborted) throw abortError(signal)
        received = { path: own, id: header.targetId, hash: hash ?? null }
        // Verified whole, still under the lock: a partial receive has nothing left to resume
        // (dropped here, not after the commit: the lock may pass to a waiting import first).
        await v.partial.drop()
        done = { id: header.targetId, baseId: header.baseId ?? null, size: header.size, compressed: header.compressed ?? false, keyed: header.keyed ?? false, like: over && !resumed ? like ?? null : null, resumedFrom: header.resumeFrom ?? null, method }
      } catch (e) {
        try {
          if (!refused || signal?.aborted) {
            // The native side says whether anything was verified and the END not seen.
            const cut = await unwrap(r.suspend()).catch(() => null)
            if (cut?.name) {
              await v.partial.keep(cut.name, {
                format: 1, targetId: header.targetId, baseId: header.baseId ?? null, size: header.size,
                offset: cut.position, records: (resumed?.records ?? 0) + (cut.records ?? 0), over,
              })
              own = null
              if (e instanceof Error) {
                e.message += `; the first ${cut.position} bytes, verified, are kept: resumeToken() gives the sender where to resume`
                Object.defineProperty(e, 'resumableFrom', { value: cut.position, enumerable: true })
              }
            }
          }
        } finally {
          // Unlinks the file unless suspend() handed it over; what is left of it goes.
          await unwrap(r.close()).catch(() => {})
          await v.endReceive(false, own)
        }
        throw e
      }
      // 4. Commit: the state is recorded, then its file becomes the clean image.
      await v.endReceive(true, own, received)
      return done
    })
    onProgress?.(header.size, header.size)
    return report
  } catch (e) {
    // Aborted: that is the cause, even when the sender closed meanwhile (Ctrl-C reaches both ends of a pipe).
    if (signal?.aborted || (e as { code?: string }).code === 'ABORT_ERR') {
      const aborted = abortError(signal)
      // What was verified before the abort is kept: say so, as for a cut stream.
      const kept = (e as { resumableFrom?: number }).resumableFrom
      if (kept !== undefined) Object.defineProperty(aborted, 'resumableFrom', { value: kept, enumerable: true })
      throw aborted
    }
    throw e
  } finally {
    detach()
    stopSource(source, it)
  }
}

/**
 * Stop the producer without waiting for it: a Node stream is destroyed (closing a pipe
 * whose sender is silent), any other iterator told to return. Awaiting return() would
 * wait behind a pending next(), i.e. for the silent sender.
 */
function stopSource(source: unknown, it: AsyncIterator<unknown>): void {
  if (source instanceof Readable) source.destroy()
  else void Promise.resolve(it.return?.()).catch(() => {})
}
