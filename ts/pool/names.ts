// Every file name the pool reads or writes is built and parsed here, and only
// here (SPEC §3.2). Image names for vid V (relative to the pool directory):
//   V.img                         clean: the last committed state
//   V-dirty.img                   the image a running VM writes
//   V-precache.img                a ready clone of V.img, so start is a rename
//   V-import.img                  staging for imports
//   V.img.<N>@<YYYY-MM-DDTHH:MM:SS>Z   revision N, stamped with the old clean mtime (UTC)
//   <any of the above>~<random>   temporary files
// Pool metadata lives in `.reflink-pool/` (a name no vid can produce, since a
// vid must start with `appvms/` or `vm-templates/`).
import { join } from 'node:path'

export type ImageKind = 'clean' | 'dirty' | 'precache' | 'import' | 'revision'

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

export interface ParsedImageName {
  /** The vid's last component this file belongs to. */
  base: string
  kind: ImageKind
  /** Revision number (kind `revision` only). */
  rev?: number
  /** `YYYY-MM-DDTHH:MM:SS` (kind `revision` only). */
  timestamp?: string
  /** True for `<image>~<random>` temporary files. */
  temp: boolean
}

const REVISION_RE = /^(.+)\.img\.([1-9][0-9]{0,15})@(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z$/

/** Parse a file name found in a VM directory; null when it is none of ours. */
export function parseImageName(fileName: string): ParsedImageName | null {
  const mark = fileName.indexOf(TEMP_MARK)
  const temp = mark >= 0
  const name = temp ? fileName.slice(0, mark) : fileName
  if (temp && mark === fileName.length - 1) return null
  const rev = REVISION_RE.exec(name)
  if (rev) return { base: rev[1], kind: 'revision', rev: Number(rev[2]), timestamp: rev[3], temp }
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

const RECORD_EXT = '.json'
const LOCK_EXT = '.lock'
const IMPORT_MARK_EXT = '.import'

/** Flat file name standing for a vid in the metadata directories (`/` is percent-encoded). */
function vidKey(vid: string): string {
  return vid.split('/').map(encodeURIComponent).join('%2F')
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
