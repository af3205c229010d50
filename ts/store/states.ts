// Identities of committed states (docs/design.md §8).
//
// Every committed state of a volume (its clean image and each revision) gets a random
// 128-bit identity the first time it is needed; a send stream names its target's and
// base's, and a receiver records the sender's identity for the image it built, so the
// next incremental finds its base on the other side.
//
// An identity belongs to one inode as it was: the file `.reflink-pool/states/<key>.json`
// maps the fingerprint of an image (inode number, mtime in nanoseconds, size) to its
// identity and, once known, its image hash. A rename keeps all three, so
// the identity follows the state through commit and revert; any write changes the
// mtime, so a changed or replaced image never inherits an identity (it gets a fresh one
// when next asked); a new inode (resize, a revision cloned from a clean image that has
// a second name) gets a fresh one unless the pool carries it over on purpose
// (`update({ carry })`, for the revision a commit keeps: the same bytes). Losing the file,
// or a crash between a clone and its carry, only costs identities: the next send is a
// full one. A receive's record of its new image rides in the same write as that carry.
// Entries whose image no longer exists are dropped on every write.
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { metaPaths, statesFileName } from './names'
import type { FileInfo, PoolFiles } from './files'

export interface StateEntry {
  /** 32 hex digits. */
  id: string
  /** The image hash (32 hex digits), once computed or received. */
  hash: string | null
  ino: string
  mtime: string
  size: string
}

/** What `update` changes (either or both). */
export interface StateChange {
  carry?: { from: string; to: string } | null
  record?: { path: string; id: string; hash: string | null } | null
}

export interface KnownState {
  id: string
  hash: string | null
  size: number
}

const FORMAT = 1
const HEX32 = /^[0-9a-f]{32}$/
const DIGITS = /^[0-9]+$/

function fingerprint(st: FileInfo): Pick<StateEntry, 'ino' | 'mtime' | 'size'> {
  return { ino: String(st.ino), mtime: String(st.mtimeNs), size: String(st.size) }
}

function matches(e: StateEntry, st: FileInfo): boolean {
  const f = fingerprint(st)
  return e.ino === f.ino && e.mtime === f.mtime && e.size === f.size
}

function valid(e: unknown): e is StateEntry {
  const x = e as StateEntry
  return (
    typeof x === 'object' && x !== null &&
    typeof x.id === 'string' && HEX32.test(x.id) &&
    (x.hash === null || (typeof x.hash === 'string' && HEX32.test(x.hash))) &&
    [x.ino, x.mtime, x.size].every((v) => typeof v === 'string' && DIGITS.test(v))
  )
}

/** The state book of one volume. Callers hold the volume's lock. */
export class VolumeStates {
  private readonly dir: string
  private readonly path: string

  /** `images` lists the volume's committed images now (clean and revisions) and its import file: entries of other inodes are dropped. */
  constructor(
    private readonly files: PoolFiles,
    dirPath: string,
    vid: string,
    private readonly images: () => Promise<string[]>,
  ) {
    this.dir = metaPaths(dirPath).states
    this.path = join(this.dir, statesFileName(vid))
  }

  /** The entries on disk; a missing or unreadable book is empty (identities are only lost). */
  private async read(): Promise<StateEntry[]> {
    if (!(await this.files.checkDir(this.dir)) || !(await this.files.image(this.path))) return []
    try {
      const raw = JSON.parse((await this.files.readText(this.path)) ?? '{}')
      return Array.isArray(raw.states) ? raw.states.filter(valid) : []
    } catch {
      return []
    }
  }

  /** Write `entries`, keeping only those of the volume's images and of `extra`. */
  private async write(entries: StateEntry[], extra: string[] = []): Promise<void> {
    const live = await this.stats([...(await this.images()), ...extra])
    const kept = entries.filter((e) => live.some((st) => matches(e, st)))
    await this.files.ensureDir(this.dir)
    await this.files.writeFile(this.path, JSON.stringify({ format: FORMAT, states: kept }) + '\n')
  }

  private async stats(paths: string[]): Promise<FileInfo[]> {
    return (await this.files.images(paths)).filter((st): st is FileInfo => st !== null)
  }

  /** The identity of each image in `paths` (the volume's committed images), assigning fresh ones where needed. Missing images: null. */
  async identify(paths: string[]): Promise<(KnownState | null)[]> {
    const entries = await this.read()
    let changed = false
    const out: (KnownState | null)[] = []
    for (const p of paths) {
      const st = await this.files.image(p)
      if (!st) {
        out.push(null)
        continue
      }
      let e = entries.find((x) => matches(x, st))
      if (!e) {
        e = { id: randomBytes(16).toString('hex'), hash: null, ...fingerprint(st) }
        entries.push(e)
        changed = true
      }
      out.push({ id: e.id, hash: e.hash, size: Number(st.size) })
    }
    if (changed) await this.write(entries)
    return out
  }

  /** Which of `paths` holds the state `id` (null when none does). */
  async find(paths: string[], id: string): Promise<{ path: string; state: KnownState } | null> {
    const entries = await this.read()
    for (const p of paths) {
      const st = await this.files.image(p)
      const e = st && entries.find((x) => x.id === id && matches(x, st))
      if (st && e) return { path: p, state: { id: e.id, hash: e.hash, size: Number(st.size) } }
    }
    return null
  }

  /** Record that the image at `path` (committed, or about to be) is state `id` with image hash `hash`. */
  async record(path: string, id: string, hash: string | null): Promise<void> {
    await this.update({ record: { path, id, hash } })
  }

  /**
   * Apply both kinds of change in one write of the book: `carry` gives `to` (a fresh
   * clone of `from`: the same bytes) the identity and hash of `from`, if it has one;
   * `record` names the state of an image (committed, or about to be). A commit that
   * adds a revision and puts a received image in place pays one durable write, not two.
   */
  async update(change: StateChange): Promise<void> {
    let entries = await this.read()
    const extra: string[] = []
    if (change.carry) {
      const { from, to } = change.carry
      const [src, dst] = await this.files.images([from, to])
      const e = src && dst && entries.find((x) => matches(x, src))
      if (e) {
        entries.push({ id: e.id, hash: e.hash, ...fingerprint(dst) })
        extra.push(from, to)
      }
    }
    if (change.record) {
      const { path, id, hash } = change.record
      const st = await this.files.image(path)
      if (st) {
        entries = entries.filter((x) => !matches(x, st))
        entries.push({ id, hash, ...fingerprint(st) })
        extra.push(path)
      }
    }
    if (extra.length) await this.write(entries, extra)
  }
}
