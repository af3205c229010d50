// Send of committed states to another pool (docs/design.md §8); receive.ts is the other end.
//
// Under the volume's lock, find the target (the clean image) and the optional
// base (a revision), give both their identities (states.ts), get the base's image hash
// (recorded, else computed once by reading its data), and open the native SendStream,
// which holds both files open: a commit or prune after the lock is released cannot
// change what is being sent (committed images are never modified in place). The stream
// is then pulled batch by batch as the consumer reads. At the end the target's image
// hash is recorded, so the next incremental from it does not have to read it.
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { unwrap } from '../outcome'
import { abortError } from '../errors'
import { poolError } from '../store/fail'
import { optional, validateBoolean, validateFunction, validateOptions, validatePath, validateSignal } from '../validate'
import { VolumeStates, type StateChange } from '../store/states'
import { readKeyFile } from './stream-key'
import { decodeToken, type VolumePartial } from './resume'
import { keptBaseFileName } from '../store/names'
import { cancelOn, type CancelToken, type SendStream } from '../store/files'
import type { PoolContext } from '../store/context'
import type { VolumePaths } from '../store/names'

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

/** The committed state of a volume (`volume.state()`). */
export interface VolumeState {
  /** Its identity: 32 hex digits, the same on every pool that received it. */
  id: string
  /** When it was committed here (the clean image's mtime), ISO 8601 UTC. */
  time: string
  /** Size of its image in bytes. */
  size: number
}

/** What send.ts and receive.ts need of a volume (its private lifecycle steps). */
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

/** The sender's next batch, asked for ahead of need: a rejection nobody awaits (the consumer stopped) is not an unhandled one. */
function nextBatch(stream: SendStream): Promise<{ data?: Buffer | null; position: number }> {
  const p = unwrap(stream.next(BATCH))
  p.catch(() => {})
  return p
}

/** The committed images of a volume: the clean image, its revisions, then its kept bases. */
export async function committed(v: SendAccess): Promise<string[]> {
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
export async function imageHash(v: SendAccess, path: string, state: { id: string; hash: string | null }, token: CancelToken): Promise<string> {
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
