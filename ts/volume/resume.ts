// Resume of a cut receive (docs/design.md §8.9).
//
// A receive whose stream is cut (it ends before its END record, the source fails, or
// the receive is aborted) keeps the records it verified: its own file, fsynced, renamed
// to V.img.partial@<target id>, and a record in .reflink-pool/partials/<vid>.json that
// says which stream it belongs to and how far it got. The partial is never one of the
// volume's images (no revision, never started from); recovery removes it only once its
// record is gone (dropped: `receive --abort`, a receive that commits, a new cut one).
// The resume token carries the record's facts to the sender, with a checksum that
// catches a token corrupted on the way; the receiver checks the resumed stream against
// its own record, never against the token, so a forged token only gets a refusal.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { metaPaths, parseImageName, partialFileName, statesFileName, type VolumePaths } from '../store/names'
import { poolError } from '../store/fail'
import type { PoolFiles } from '../store/files'

const FORMAT = 1
const TOKEN_PREFIX = 'rfp-resume-1.'

/** What a partial receive is of and how far it got. */
export interface PartialRecord {
  format: 1
  /** The state being received (the stream's target identity). */
  targetId: string
  /** The base of the incremental stream, null for a full one. */
  baseId: string | null
  /** Size of the image being received. */
  size: number
  /** The image offset below which every byte is verified (the resumed stream starts here). */
  offset: number
  /** Records verified and applied, over every cut. */
  records: number
  /** A full stream applied over another volume's image (receive --like): the resume must be too. */
  over: boolean
}

/** What a resume token carries (docs/design.md §8.9). */
export interface ResumeToken {
  vid: string
  targetId: string
  baseId: string | null
  offset: number
  records: number
}

const HEX32 = /^[0-9a-f]{32}$/

function isRecord(r: unknown): r is PartialRecord {
  const o = r as Partial<PartialRecord>
  return (
    typeof o === 'object' && o !== null && o.format === FORMAT &&
    typeof o.targetId === 'string' && HEX32.test(o.targetId) &&
    (o.baseId === null || (typeof o.baseId === 'string' && HEX32.test(o.baseId))) &&
    [o.size, o.offset, o.records].every((n) => Number.isSafeInteger(n) && (n as number) >= 0) &&
    (o.offset as number) <= (o.size as number) && typeof o.over === 'boolean'
  )
}

/** The partial receive of one volume: its record and its file. Call under the volume's lock. */
export class VolumePartial {
  private readonly dir: string
  private readonly recordPath: string

  constructor(
    private readonly files: PoolFiles,
    dirPath: string,
    private readonly vid: string,
    private readonly paths: VolumePaths,
  ) {
    this.dir = metaPaths(dirPath).partials
    this.recordPath = join(this.dir, statesFileName(vid))
  }

  /** The partial file of state `targetId`. */
  file(targetId: string): string {
    return join(this.paths.dir, partialFileName(this.paths.base, targetId))
  }

  /** The partial receive, if its record is valid and its file is there at the recorded size; else null. */
  async read(): Promise<(PartialRecord & { path: string }) | null> {
    let rec: unknown
    try {
      rec = JSON.parse((await this.files.readText(this.recordPath)) ?? 'null')
    } catch {
      return null
    }
    if (!isRecord(rec)) return null
    const path = this.file(rec.targetId)
    const st = await this.files.image(path)
    return st && st.size === rec.size ? { ...rec, path } : null
  }

  /** Keep the receive's file `name` (in the volume's directory, fsynced) as the partial described by `rec`, replacing any earlier one. */
  async keep(name: string, rec: PartialRecord): Promise<void> {
    await this.drop()
    await this.files.rename(join(this.paths.dir, name), this.file(rec.targetId))
    await this.files.ensureDir(this.dir)
    // The file is in place before its record: a crash between leaves a file without a record, which recovery removes.
    await this.files.writeFile(this.recordPath, JSON.stringify(rec) + '\n')
  }

  /** Drop the partial: its record first (then it is no longer resumable), then every partial file of the volume. */
  async drop(): Promise<boolean> {
    const had = await this.files.remove(this.recordPath)
    for (const name of await this.files.names(this.paths.dir).catch(() => [])) {
      const parsed = parseImageName(name)
      if (parsed?.kind === 'partial' && parsed.base === this.paths.base) await this.files.remove(join(this.paths.dir, name))
    }
    return had
  }

  /** The token a sender resumes from (`volume resume-token`); ERR_RESUME_MISMATCH when there is no partial receive. */
  async token(): Promise<string> {
    const p = await this.read()
    if (!p) throw poolError('ERR_RESUME_MISMATCH', `Volume ${this.vid} holds no partial receive to resume`, { vid: this.vid })
    return encodeToken({ vid: this.vid, targetId: p.targetId, baseId: p.baseId, offset: p.offset, records: p.records })
  }
}

function check(payload: string): string {
  return createHash('sha256').update(payload).digest('hex').slice(0, 16)
}

/** `rfp-resume-1.<base64url of the JSON facts>.<16 hex digits of their sha256>`. */
export function encodeToken(t: ResumeToken): string {
  const payload = Buffer.from(JSON.stringify([t.vid, t.targetId, t.baseId, t.offset, t.records])).toString('base64url')
  return `${TOKEN_PREFIX}${payload}.${check(payload)}`
}

/** Parse a resume token; ERR_INVALID_ARG_VALUE for one that is malformed, corrupted or altered. */
export function decodeToken(token: unknown): ResumeToken {
  const bad = () => poolError('ERR_INVALID_ARG_VALUE', 'not a valid resume token (corrupted or altered): ask the receiver for a new one with `volume resume-token VID`')
  if (typeof token !== 'string' || !token.startsWith(TOKEN_PREFIX)) throw bad()
  const [payload, sum, ...rest] = token.slice(TOKEN_PREFIX.length).split('.')
  if (rest.length || !payload || sum !== check(payload)) throw bad()
  let f: unknown
  try {
    f = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
  } catch {
    throw bad()
  }
  if (!Array.isArray(f) || f.length !== 5) throw bad()
  const [vid, targetId, baseId, offset, records] = f as unknown[]
  const ok =
    typeof vid === 'string' && typeof targetId === 'string' && HEX32.test(targetId) &&
    (baseId === null || (typeof baseId === 'string' && HEX32.test(baseId))) &&
    Number.isSafeInteger(offset) && (offset as number) > 0 && (offset as number) % 4096 === 0 &&
    Number.isSafeInteger(records) && (records as number) > 0
  if (!ok) throw bad()
  return { vid: vid as string, targetId: targetId as string, baseId: baseId as string | null, offset: offset as number, records: records as number }
}
