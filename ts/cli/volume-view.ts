// How volumes are shown: one JSON shape and one table for `volume list/info`,
// `usage` and `clone`, so every command describes a volume the same way.
import { humanSize, type Column } from './format'
import type { Volume } from './pool-access'
import type { FilesUsage, FootprintKind, VolumeFootprint, VolumeKind } from '../pool'
import { addUsage, emptyUsage } from '../store/footprint'
import { mapBounded } from '../bounded'

/**
 * Volumes looked at together: each view is a few stats (or a FIEMAP) on the
 * libuv threadpool, so one at a time leaves it idle (5 000 volumes: 4.4 s).
 */
const VIEW_IN_FLIGHT = 16

export interface VolumeJson {
  vid: string
  name: string
  /** The volume's kind, or 'broken' when its record is unusable. */
  kind: VolumeKind | 'broken'
  rw: boolean
  saveOnStop: boolean
  snapOnStart: boolean
  source: string | null
  revisionsToKeep: number
  /** The size the VM sees: the running image's, else the committed one's (a stopped snapshot: its source's). */
  size: number
  /** A dirty image exists: the volume is running (any kind). */
  running: boolean
  /** Same as running: kept for scripts that read it. */
  dirty: boolean
  outdated: boolean
  path: string
  /** Why the volume's record is unusable (every call on it is refused), or null. */
  broken: string | null
}

/** The size a VM started now would see: a stopped snapshot has no image of its own, so its source's. */
async function visibleSize(v: Volume, running: boolean): Promise<number> {
  if (v.snapOnStart && !running && v.source !== null) {
    try {
      return await (await v.pool.loadVolume(v.source)).size()
    } catch {
      // The source is gone or broken: the nominal size is all there is (verify says what is missing).
    }
  }
  return v.size()
}

export async function volumeJson(v: Volume): Promise<VolumeJson> {
  if (v.broken !== null) {
    const { vid, name, path, broken } = v
    return { vid, name, kind: 'broken', rw: false, saveOnStop: false, snapOnStart: false, source: null, revisionsToKeep: 0, size: 0, running: false, dirty: false, outdated: false, path, broken }
  }
  const running = await v.isRunning()
  return {
    vid: v.vid,
    name: v.name,
    kind: v.kind,
    rw: v.rw,
    saveOnStop: v.saveOnStop,
    snapOnStart: v.snapOnStart,
    source: v.source,
    revisionsToKeep: v.revisionsToKeep,
    size: await visibleSize(v, running),
    running,
    dirty: running,
    outdated: await v.isOutdated(),
    path: v.path,
    broken: null,
  }
}

export function volumeState(v: VolumeJson): string {
  if (v.broken !== null) return 'broken'
  return v.running ? (v.outdated ? 'running (outdated)' : 'running') : 'stopped'
}

/** The states `volume list --state` selects by: outdated is a running volume whose source changed since. */
export const STATE_FILTERS = ['running', 'stopped', 'outdated', 'broken'] as const

export function hasState(v: VolumeJson, state: (typeof STATE_FILTERS)[number]): boolean {
  if (state === 'broken') return v.broken !== null
  if (v.broken !== null) return false
  if (state === 'outdated') return v.running && v.outdated
  return v.running === (state === 'running')
}

// The vid is never cut: it is what a user copies into the next command.
export const volumeColumns: Column<VolumeJson>[] = [
  { header: 'VID', value: (v) => v.vid },
  { header: 'KIND', value: (v) => v.kind, drop: 2 },
  { header: 'RW', value: (v) => (v.rw ? 'rw' : 'ro'), drop: 1 },
  { header: 'SIZE', value: (v) => humanSize(v.size), align: 'right' },
  { header: 'STATE', value: volumeState },
  { header: 'SOURCE', value: (v) => v.source ?? '-', shrink: true, drop: 0 },
]

/** FIEMAP figures of a volume's current image: what a VM sees (demo, clone and `volume info`). */
export interface UsageRow {
  vid: string
  size: number
  allocated: number
  shared: number
  exclusive: number
  extents: number
}

export async function volumeUsage(v: Volume): Promise<Omit<UsageRow, 'vid' | 'size'>> {
  const { allocated, shared, exclusive, extents } = await v.usage()
  return { allocated, shared, exclusive, extents }
}

export async function volumeUsageRows(volumes: Volume[]): Promise<UsageRow[]> {
  // A broken volume has no usable record (volume list shows it as broken).
  const usable = volumes.filter((v) => v.broken === null)
  return mapBounded(usable, VIEW_IN_FLIGHT, async (v) => ({ vid: v.vid, size: await v.size(), ...(await volumeUsage(v)) }))
}

/** volumeJson of every volume, in the order given. */
export function volumeJsonRows(volumes: Volume[]): Promise<VolumeJson[]> {
  return mapBounded(volumes, VIEW_IN_FLIGHT, volumeJson)
}

export function sumUsage(rows: UsageRow[]): Omit<UsageRow, 'vid'> {
  const total = { size: 0, allocated: 0, shared: 0, exclusive: 0, extents: 0 }
  for (const r of rows) {
    total.size += r.size
    total.allocated += r.allocated
    total.shared += r.shared
    total.exclusive += r.exclusive
    total.extents += r.extents
  }
  return total
}

/** One row of `usage`: the size the VM sees and every file of the volume by kind, with their sum. */
export interface FootprintRow {
  vid: string
  size: number
  files: Record<FootprintKind, FilesUsage>
  total: FilesUsage
}

/** The kinds in the order `usage` shows them. */
export const FOOTPRINT_KINDS: readonly FootprintKind[] = ['clean', 'precache', 'revisions', 'bases', 'dirty', 'import']

export async function volumeFootprintRows(volumes: Volume[]): Promise<FootprintRow[]> {
  const usable = volumes.filter((v) => v.broken === null) // no usable record (volume list shows it as broken)
  return mapBounded(usable, VIEW_IN_FLIGHT, async (v) => {
    const f: VolumeFootprint = await v.footprint()
    return { vid: v.vid, size: await visibleSize(v, await v.isRunning()), files: f.byKind, total: f.total }
  })
}

/** The `total` row of `usage`: every column summed over the volumes. */
export function sumFootprint(rows: FootprintRow[]): Omit<FootprintRow, 'vid'> {
  const sum: Omit<FootprintRow, 'vid'> = {
    size: 0,
    files: Object.fromEntries(FOOTPRINT_KINDS.map((k) => [k, emptyUsage()])) as Record<FootprintKind, FilesUsage>,
    total: emptyUsage(),
  }
  for (const r of rows) {
    sum.size += r.size
    addUsage(sum.total, r.total)
    for (const k of FOOTPRINT_KINDS) addUsage(sum.files[k], r.files[k])
  }
  return sum
}

/** A kind's allocated bytes, "-" when the volume has no such file. */
const kindCell = (u: FilesUsage) => (u.files === 0 ? '-' : humanSize(u.allocated))

/**
 * Which kinds of file `usage` leaves out first when the table is wider than the
 * terminal: the rare ones (an import in progress, the precache a start will
 * consume) before the ones that hold data (revisions, the running image, the
 * committed image). The vid and the totals stay.
 */
const KIND_DROP: Record<FootprintKind, number> = { import: 0, precache: 1, bases: 2, dirty: 3, revisions: 4, clean: 5 }

export const footprintColumns: Column<FootprintRow>[] = [
  { header: 'VID', value: (r) => r.vid },
  { header: 'SIZE', value: (r) => humanSize(r.size), align: 'right', drop: 6 },
  ...FOOTPRINT_KINDS.map((k): Column<FootprintRow> => ({ header: k.toUpperCase(), value: (r) => kindCell(r.files[k]), align: 'right', drop: KIND_DROP[k] })),
  { header: 'ALLOCATED', value: (r) => humanSize(r.total.allocated), align: 'right' },
  { header: 'SHARED', value: (r) => humanSize(r.total.shared), align: 'right', drop: 2 },
  { header: 'EXCLUSIVE', value: (r) => humanSize(r.total.exclusive), align: 'right' },
]
