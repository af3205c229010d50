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
import { chunkBytes, optional, validateBoolean, validateFunction, validateOptions, validatePath, validateSignal, validateString } from '../validate'
import { VolumeStates, type StateChange } from '../store/states'
import { readKeyFile } from './stream-key'
import { decodeToken, type PartialRecord, type VolumePartial } from './resume'
import { keptBaseFileName } from '../store/names'
import { ReadAhead } from './read-ahead'
import { asBuffer, raceAbort } from './stream'
import { cancelOn, parseSendHeader, sendHeaderLength, type CancelToken, type DecodedSendHeader, type NativeSendHeader, type SendStream } from '../store/files'
import { copyCost, guardSpace, METADATA_BYTES } from '../store/space'
import type { PoolContext } from '../store/context'
import type { VolumePaths } from '../store/names'
import type { CopyReport } from '../store/types'

/** Options of `volume.send`. */
export interface SendOptions {
  /** The revision to send the difference from (the receiver must hold it); default: a full stream. */
  base?: number | string
  /** The state (its id, as `volume.state()` or a receive reports it) to send the difference from; not with `base`. */
  since?: string
  /** A resume token from the receiver (`volume.resumeToken()` there): send only the rest of the cut stream (docs/design.md §8.9); not with base or since. */
  resume?: string
  /** Compress each DATA record with zstd (level 3); the receiver detects it. Default false. */
  compress?: boolean
  /** Authenticate the stream under the key in this file (docs/design.md §8.8): the receiver needs the same key file. */
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

/** The committed state of a volume (`volume.state()`). */
export interface VolumeState {
  /** Its identity: 32 hex digits, the same on every pool that received it. */
  id: string
  /** When it was committed here (the clean image's mtime), ISO 8601 UTC. */
  time: string
  /** Size of its image in bytes. */
  size: number
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
  guard(): Promise<{ clean: { size: number; mtimeMs: number } | null; dirty: { size: number } | null }>
  /** The volume's partial receive, kept for a resume (docs/design.md §8.9). */
  partial: VolumePartial
  /** The committed (clean) image of volume `vid` of the same pool, null if it has none; ERR_UNKNOWN_VOLUME for an unknown vid. */
  committedImageOf(vid: string): Promise<string | null>
  /** The volume's revisions, oldest first. */
  revisions(): Promise<{ rev: number; path: string }[]>
  /** The volume's kept bases (docs/design.md §8.6), by name. */
  keptBases(): Promise<{ id: string; path: string }[]>
  /** ERR_VOLUME_BUSY while another call's import is in progress (import.ts). */
  refuseWhileImporting(): Promise<void>
  /** Under the lock: commit the receive's own file with its state (`received`), or delete it (import.ts). */
  endReceive(success: boolean, file: string | null, received?: StateChange['record']): Promise<void>
  states: VolumeStates
}

/** Bytes asked of the native sender per step (4 to 8 records of data: the fewer steps, the less each byte costs). */
const BATCH = 8 << 20
/** Bytes of stream handed to the native receiver per step (about 8 records of data). */
const PIECE = 8 << 20

/** The sender's next batch, asked for ahead of need: a rejection nobody awaits (the consumer stopped) is not an unhandled one. */
function nextBatch(stream: SendStream): Promise<{ data?: Buffer | null; position: number }> {
  const p = unwrap(stream.next(BATCH))
  p.catch(() => {})
  return p
}

/** The committed images of a volume: the clean image, its revisions, then its kept bases. */
async function committed(v: SendAccess): Promise<string[]> {
  return [v.paths.clean, ...(await v.revisions()).map((r) => r.path), ...(await v.keptBases()).map((b) => b.path)]
}

/**
 * Keep the state `id` that was just sent whole as a base (docs/design.md §8.6): a clone of
 * the committed image that holds it (a copy where the filesystem cannot clone) named
 * `V.img.base@<id>`, with its identity carried over; then drop the bases of states sent
 * before it. Under the lock. A state no longer held (pruned while it was being sent) is
 * not kept: the next send from it is a full one.
 */
async function keepSentState(v: SendAccess, id: string): Promise<void> {
  const bases = await v.keptBases()
  await v.ctx.files.images(bases.map((b) => b.path)) // ERR_UNSAFE_PATH for an entry planted meanwhile
  const path = join(v.paths.dir, keptBaseFileName(v.paths.base, id))
  if (!bases.some((b) => b.path === path)) {
    const found = await v.states.find(await committed(v), id)
    if (!found) return
    await v.ctx.files.copy(found.path, path)
    await v.states.update({ carry: { from: found.path, to: path } })
  }
  for (const b of bases) if (b.path !== path) await v.ctx.files.remove(b.path)
}

/** The kept bases of the volume, oldest first, as states (docs/design.md §8.6). */
export function keptBases(v: SendAccess): Promise<VolumeState[]> {
  return v.locked(async () => {
    const out: VolumeState[] = []
    for (const b of await v.keptBases()) {
      const st = await v.ctx.files.image(b.path)
      if (st) out.push({ id: b.id, time: new Date(st.mtimeMs).toISOString(), size: st.size })
    }
    return out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0))
  })
}

/** Drop the kept base of state `id`; ERR_BASE_NOT_FOUND when the volume keeps none for it. */
export function forgetBase(v: SendAccess, id: string): Promise<void> {
  const want = validateStateId('id', id, v.vid)
  return v.locked(async () => {
    const base = (await v.keptBases()).find((b) => b.id === want)
    if (!base) throw poolError('ERR_BASE_NOT_FOUND', `Volume ${v.vid} keeps no base for the state ${want} (see volume.bases())`, { vid: v.vid })
    await v.ctx.files.image(base.path) // ERR_UNSAFE_PATH for a planted symlink, FIFO or directory: never removed
    await v.ctx.files.remove(base.path)
  })
}

/** The recorded image hash of a state, else compute it (reading its data runs once) and record it. */
async function imageHash(v: SendAccess, path: string, state: { id: string; hash: string | null }, token: CancelToken): Promise<string> {
  if (state.hash) return state.hash
  const hash = await v.ctx.files.hashImage(path, token)
  await v.states.record(path, state.id, hash)
  return hash
}

export function sendVolume(v: SendAccess, options?: SendOptions): Readable {
  const o = validateOptions('options', options, ['base', 'since', 'resume', 'compress', 'keyFile', 'signal', 'onProgress'])
  const signal = optional<AbortSignal>('options.signal', o.signal, validateSignal)
  const compress = optional<boolean>('options.compress', o.compress, validateBoolean) ?? false
  const keyFile = optional<string>('options.keyFile', o.keyFile, validatePath)
  const onProgress = optional<NonNullable<SendOptions['onProgress']>>('options.onProgress', o.onProgress, validateFunction)
  const base = o.base
  if (base !== undefined && !(typeof base === 'string' || (typeof base === 'number' && Number.isSafeInteger(base)))) {
    throw poolError('ERR_INVALID_ARG_TYPE', `base must be a revision number, got ${typeof base}`, { vid: v.vid })
  }
  const since = o.since === undefined ? undefined : validateStateId('options.since', o.since, v.vid)
  if (base !== undefined && since !== undefined) {
    throw poolError('ERR_INVALID_ARG_VALUE', 'base (a revision) and since (a state id) name the same thing: give one', { vid: v.vid })
  }
  const resume = o.resume === undefined ? undefined : decodeToken(o.resume)
  if (resume && (base !== undefined || since !== undefined)) {
    throw poolError('ERR_INVALID_ARG_VALUE', 'a resume token names its own state and base: give it without base or since', { vid: v.vid })
  }

  async function* generate(): AsyncGenerator<Buffer> {
    if (signal?.aborted) throw abortError(signal)
    const { token, detach } = cancelOn(signal)
    let stream: SendStream | undefined
    try {
      const key = keyFile === undefined ? null : await readKeyFile(keyFile)
      const opened = await v.locked(async () => {
        await cleanImage(v)
        // A planted entry under a kept base's name refuses the send now, not after its last byte.
        await v.ctx.files.images((await v.keptBases()).map((b) => b.path))
        let basePath: string | null = null
        let targetPath = v.paths.clean
        if (resume) {
          // The state and base the cut stream was of, wherever they are now (clean, a revision, a kept base).
          const images = await committed(v)
          const found = await v.states.find(images, resume.targetId)
          const foundBase = resume.baseId ? await v.states.find(images, resume.baseId) : null
          if (!found || (resume.baseId && !foundBase)) {
            throw poolError('ERR_RESUME_MISMATCH', `Volume ${v.vid} no longer holds the ${found ? 'base' : 'state'} the resume token continues (${found ? resume.baseId : resume.targetId}); send a full stream`, { vid: v.vid })
          }
          targetPath = found.path
          basePath = foundBase?.path ?? null
        } else if (base !== undefined) {
          const rev = (await v.revisions()).find((r) => String(r.rev) === String(base))
          if (!rev) throw poolError('ERR_REVISION_NOT_FOUND', `Volume ${v.vid} has no revision ${JSON.stringify(base)}`, { vid: v.vid })
          basePath = rev.path
        } else if (since !== undefined) {
          const found = await v.states.find(await committed(v), since)
          if (!found) {
            throw poolError('ERR_BASE_NOT_FOUND', `Volume ${v.vid} no longer holds the state ${since} (pruned, and not kept as a base); send a full stream`, { vid: v.vid })
          }
          basePath = found.path
        }
        const [target, baseState] = await v.states.identify(basePath ? [targetPath, basePath] : [targetPath])
        if (!target || (basePath && !baseState)) throw poolError('ERR_SOURCE_CHANGED', `An image of ${v.vid} vanished while the send was prepared`, { vid: v.vid })
        if (resume && resume.offset > target.size) {
          throw poolError('ERR_RESUME_MISMATCH', `The resume token's offset ${resume.offset} lies beyond the state's ${target.size} bytes`, { vid: v.vid })
        }
        const header = {
          size: target.size,
          targetId: target.id,
          ...v.kind,
          compressed: compress,
          keyed: key !== null,
          ...(resume ? { resumeFrom: resume.offset } : {}),
          ...(basePath && baseState
            ? { baseId: baseState.id, baseSize: baseState.size, baseHash: await imageHash(v, basePath, baseState, token) }
            : {}),
        }
        const s = v.ctx.files.sendStream(targetPath, basePath, header, key, token)
        await unwrap(s.open())
        return { stream: s, target }
      })
      stream = opened.stream
      // The lock is not held while the stream flows (docs/design.md §8.6): the open
      // descriptors pin the images, and a stalled receiver must not hold up the volume.
      // One batch is held back: the last one carries the END record, which leaves only once
      // the state is kept as a base. If keeping it fails (a full disk), the stream ends
      // without its END and the receiver commits nothing: no end trusts a state the other lacks.
      let held: { data: Buffer; position: number } | null = null
      for (let ahead = nextBatch(stream); ; ) {
        if (signal?.aborted) throw abortError(signal)
        const { data, position } = await ahead
        if (!data) break
        // The core makes the next batch while the consumer takes this one.
        ahead = nextBatch(stream)
        if (held) {
          onProgress?.(held.position, opened.target.size)
          yield held.data
        }
        held = { data, position }
      }
      const stats = stream.stats()
      await v.locked(async () => {
        if (stats && !opened.target.hash) {
          // The next incremental from this state need not read it: remember its hash.
          const found = await v.states.find(await committed(v), opened.target.id)
          if (found) await v.states.record(found.path, opened.target.id, stats.imageHash)
        }
        // Sent whole: the receiver's next incremental starts from it, whatever pruning does.
        await keepSentState(v, opened.target.id)
      })
      if (signal?.aborted) throw abortError(signal)
      if (held) {
        onProgress?.(held.position, opened.target.size)
        yield held.data
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

/** A state id as the CLI and the API take it: 32 hex digits (any case). */
function validateStateId(name: string, id: unknown, vid: string): string {
  if (typeof id !== 'string') throw poolError('ERR_INVALID_ARG_TYPE', `${name} must be a state id (a string), got ${typeof id}`, { vid })
  if (!/^[0-9a-fA-F]{32}$/.test(id)) throw poolError('ERR_INVALID_ARG_VALUE', `${name} must be a state id of 32 hex digits, got ${JSON.stringify(id.slice(0, 40))}`, { vid })
  return id.toLowerCase()
}

/** The committed state of the volume: its identity (given now if it has none yet), time and size. */
export function volumeState(v: SendAccess): Promise<VolumeState> {
  return v.locked(async () => {
    const clean = await cleanImage(v, 'read the state of')
    const [state] = await v.states.identify([v.paths.clean])
    if (!state) throw poolError('ERR_SOURCE_CHANGED', `The clean image of ${v.vid} vanished while its state was read`, { vid: v.vid })
    return { id: state.id, time: new Date(clean.mtimeMs).toISOString(), size: state.size }
  })
}

/** The clean image (under the lock), or the error that says why there is none to `what`. */
async function cleanImage(v: SendAccess, what = 'send'): Promise<{ size: number; mtimeMs: number }> {
  const { clean, dirty } = await v.guard()
  if (clean) return clean
  if (dirty) throw poolError('ERR_VOLUME_DIRTY', `Cannot ${what} ${v.vid} while it runs: snapshots are disabled, so its only image is in use`, { vid: v.vid })
  throw poolError('ERR_MISSING_IMAGE', `Missing image file ${v.paths.clean} for volume ${v.vid}`, { vid: v.vid, path: v.paths.clean })
}

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

  const it = opened?.it ?? source[Symbol.asyncIterator]()
  const { token, detach } = cancelOn(signal)
  try {
    const first = opened?.first ?? (await readAtLeast(it, sendHeaderLength(), signal))
    // Checks (and under a key, authenticates) the header: refused before anything is locked or written.
    const decoded = opened?.decoded ?? (await parseSendHeader(first, keyFile === undefined ? null : await readKeyFile(keyFile)))
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
