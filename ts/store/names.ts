// Every file name the pool reads or writes is built and parsed here, and only
// here (docs/design.md §2). Image names for vid V (relative to the pool directory):
//   V.img                         clean: the last committed state
//   V-dirty.img                   the image a running VM writes
//   V-precache.img                a ready clone of V.img, so start is a rename
//   V-import.img                  staging for imports
//   V.img.<N>@<YYYY-MM-DDTHH:MM:SS>Z   revision N, stamped with the old clean mtime (UTC)
//   V.img.base@<32 hex digits>    kept base: a sent state, by its identity (docs/design.md §8.6)
//   V.img.partial@<32 hex digits>  a cut receive of that state, kept for a resume (docs/design.md §8.9)
//   <any of the above>~<16 hex digits>  temporary files
// Pool metadata lives in `.reflink-pool/` (a name no vid can produce, since a
// vid must start with `appvms/` or `vm-templates/`). These are the names of
// the Qubes file-reflink driver, so a directory it laid out can be adopted
// as it is (docs/design.md §2).
import { join } from 'node:path'

export type ImageKind = 'clean' | 'dirty' | 'precache' | 'import' | 'revision' | 'base' | 'partial'

/** Suffixes appended to the vid for each single-file image kind. */
export const IMAGE_SUFFIX = {
  clean: '.img',
  dirty: '-dirty.img',
  precache: '-precache.img',
  import: '-import.img',
} as const

/** Component endings a vid may not have, because they would alias another volume's files. */
export const RESERVED_ENDINGS: readonly string[] = [
  ...Object.values(IMAGE_SUFFIX),
  '-dirty',
  '-precache',
  '-import',
]

/** Separator of temp-file names (`<target>~<random>`); never valid inside a vid. */
export const TEMP_MARK = '~'

/** Longest file name the filesystems of the matrix accept (bytes). */
export const NAME_MAX = 255

/** What a temp name adds to its target's name: the mark and 16 hex digits (the native core's temp names). */
const TEMP_TAIL = TEMP_MARK + 'f'.repeat(16)

/**
 * Highest revision number the pool uses or accepts: the next number must still
 * be a safe integer. A revision-shaped file with a larger number (planted, or
 * written by another tool) is out of range: reported, never counted, pruned,
 * reverted to or removed.
 */
export const MAX_REVISION = Number.MAX_SAFE_INTEGER - 1

export interface VolumePaths {
  clean: string
  dirty: string
  precache: string
  import: string
  /** The directory holding the images (`<dirPath>/<prefix>/<vm>`). */
  dir: string
  /** The vid's last component: the prefix of every image name in `dir`. */
  base: string
}

export function volumePaths(dirPath: string, vid: string): VolumePaths {
  const stem = join(dirPath, vid)
  const slash = vid.lastIndexOf('/')
  return {
    clean: stem + IMAGE_SUFFIX.clean,
    dirty: stem + IMAGE_SUFFIX.dirty,
    precache: stem + IMAGE_SUFFIX.precache,
    import: stem + IMAGE_SUFFIX.import,
    dir: join(dirPath, vid.slice(0, slash)),
    base: vid.slice(slash + 1),
  }
}

/** `YYYY-MM-DDTHH:MM:SS` of a time in ms since the epoch, UTC, whole seconds (truncated). */
export function revisionTimestamp(mtimeMs: number): string {
  return new Date(Math.floor(mtimeMs / 1000) * 1000).toISOString().slice(0, 19)
}

/** File name (not path) of revision `rev` of the volume whose last vid component is `base`. */
export function revisionFileName(base: string, rev: number, timestamp: string): string {
  return `${base}${IMAGE_SUFFIX.clean}.${rev}@${timestamp}Z`
}

/**
 * File name (not path) of the kept base of state `id` (32 hex digits) of the volume whose
 * last vid component is `base`. `.img.` then a letter: never a revision (digits) and never
 * another volume's image (`@` is not allowed in a vid); as long as the longest revision name.
 */
export function keptBaseFileName(base: string, id: string): string {
  return `${base}${IMAGE_SUFFIX.clean}.base@${id}`
}

/** File name of the partial receive of state `id` (docs/design.md §8.9); shaped like a kept base's. */
export function partialFileName(base: string, id: string): string {
  return `${base}${IMAGE_SUFFIX.clean}.partial@${id}`
}

export interface ParsedImageName {
  /** The vid's last component this file belongs to. */
  base: string
  kind: ImageKind
  /** Revision number (kind `revision` only); absent when out of range (above MAX_REVISION). */
  rev?: number
  /** Kind `revision` with a number above MAX_REVISION (see MAX_REVISION). */
  outOfRange?: true
  /** `YYYY-MM-DDTHH:MM:SS` (kind `revision` only). */
  timestamp?: string
  /** The state's identity (kinds `base` and `partial`). */
  id?: string
  /** True for `<image>~<random>` temporary files. */
  temp: boolean
}

const REVISION_RE = /^(.+)\.img\.([1-9][0-9]*)@(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z$/
const KEPT_BASE_RE = /^(.+)\.img\.(base|partial)@([0-9a-f]{32})$/

/** Parse a file name found in a VM directory; null when it is none of ours. */
export function parseImageName(fileName: string): ParsedImageName | null {
  const mark = fileName.indexOf(TEMP_MARK)
  const temp = mark >= 0
  const name = temp ? fileName.slice(0, mark) : fileName
  if (temp && mark === fileName.length - 1) return null
  const rev = REVISION_RE.exec(name)
  if (rev) {
    const n = rev[2].length <= 16 ? Number(rev[2]) : Infinity
    if (n <= MAX_REVISION) return { base: rev[1], kind: 'revision', rev: n, timestamp: rev[3], temp }
    return { base: rev[1], kind: 'revision', outOfRange: true, timestamp: rev[3], temp }
  }
  const kept = KEPT_BASE_RE.exec(name)
  if (kept) return { base: kept[1], kind: kept[2] as 'base' | 'partial', id: kept[3], temp }
  // Longest suffix first: `-dirty.img` also ends in `.img`.
  for (const kind of ['dirty', 'precache', 'import', 'clean'] as const) {
    const suffix = IMAGE_SUFFIX[kind]
    if (name.length > suffix.length && name.endsWith(suffix)) {
      return { base: name.slice(0, -suffix.length), kind, temp }
    }
  }
  return null
}

/** Directory of pool metadata, relative to the pool directory. */
export const META_DIR = '.reflink-pool'

export function metaPaths(dirPath: string) {
  const meta = join(dirPath, META_DIR)
  return {
    meta,
    poolConfig: join(meta, 'pool.json'),
    volumes: join(meta, 'volumes'),
    locks: join(meta, 'locks'),
    sessions: join(meta, 'sessions'),
    recordsCache: join(meta, 'volumes.cache.json'),
    /** Identities of committed states, one file per volume (docs/design.md §8). */
    states: join(meta, 'states'),
    /** The partial receive of a volume kept for a resume, one file per volume (docs/design.md §8.9). */
    partials: join(meta, 'partials'),
  }
}

const SESSION_EXT = '.session'

/** File name of an open pool instance's session marker (see recovery.ts). */
export const sessionFileName = (id: string) => id + SESSION_EXT
export const isSessionName = (fileName: string) => fileName.endsWith(SESSION_EXT) && !fileName.includes(TEMP_MARK)

const BATCH_EXT = '.batch'

/** File name of a batch's intent (the vids it makes), in the sessions directory (docs/design.md §7). */
export const batchFileName = (id: string) => id + BATCH_EXT
export const isBatchName = (fileName: string) => fileName.endsWith(BATCH_EXT) && !fileName.includes(TEMP_MARK)

const REMOVAL_EXT = '.remove'

/** File name of a remove batch's intent (the vids it removes: recovery finishes them), in the sessions directory. */
export const removalFileName = (id: string) => id + REMOVAL_EXT
export const isRemovalName = (fileName: string) => fileName.endsWith(REMOVAL_EXT) && !fileName.includes(TEMP_MARK)

const RECORD_EXT = '.json'
const LOCK_EXT = '.lock'
const IMPORT_MARK_EXT = '.import'

/** Flat file name standing for a vid in the metadata directories (`/` is percent-encoded, as `%2F`). */
function vidKey(vid: string): string {
  return encodeURIComponent(vid)
}

function keyVid(key: string): string | null {
  try {
    return decodeURIComponent(key)
  } catch {
    return null
  }
}

export const recordFileName = (vid: string) => vidKey(vid) + RECORD_EXT
export const lockFileName = (vid: string) => vidKey(vid) + LOCK_EXT
export const importMarkFileName = (vid: string) => vidKey(vid) + IMPORT_MARK_EXT
/** File name of a volume's state identities in `metaPaths().states` (same key as its record). */
export const statesFileName = (vid: string) => vidKey(vid) + RECORD_EXT

/**
 * The longest file name of each family derived from `vid` (without checking
 * the vid): its VM directory, its longest image names (the temp file of a
 * revision with the largest number, and of a kept base: the same length), and
 * its longest metadata name (the temp file of its import marker). A vid is
 * usable only when all fit NAME_MAX.
 */
export function derivedNames(vid: string): Array<{ what: string; name: string }> {
  const parts = vid.split('/')
  const base = parts[parts.length - 1]
  const longestMeta = [RECORD_EXT, LOCK_EXT, IMPORT_MARK_EXT].reduce((a, b) => (b.length > a.length ? b : a))
  return [
    { what: 'VM directory', name: parts.slice(1, -1).join('/') },
    { what: 'revision temp file', name: revisionFileName(base, MAX_REVISION, '0000-00-00T00:00:00') + TEMP_TAIL },
    { what: 'kept base temp file', name: keptBaseFileName(base, 'f'.repeat(32)) + TEMP_TAIL },
    { what: 'metadata temp file', name: vidKey(vid) + longestMeta + TEMP_TAIL },
  ]
}

/** Parse a metadata file name back to its vid and kind; null for anything else (temps included). */
export function parseMetaName(fileName: string): { vid: string; kind: 'record' | 'lock' | 'import' } | null {
  if (fileName.includes(TEMP_MARK)) return null
  for (const [ext, kind] of [[RECORD_EXT, 'record'], [LOCK_EXT, 'lock'], [IMPORT_MARK_EXT, 'import']] as const) {
    if (fileName.endsWith(ext) && fileName.length > ext.length) {
      const vid = keyVid(fileName.slice(0, -ext.length))
      // Shape only (prefix/vm/name); callers validate the vid fully before using it.
      return vid === null || vid.split('/').length !== 3 ? null : { vid, kind }
    }
  }
  return null
}
