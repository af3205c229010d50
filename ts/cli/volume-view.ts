// How volumes are shown: one JSON shape and one table for `volume list/info`,
// `usage` and `clone`, so every command describes a volume the same way.
import { humanSize, type Column } from './format'
import type { Volume } from './pool-access'

/** SPEC §3.3 names of the four kinds. */
export function volumeKind(v: { saveOnStop: boolean; snapOnStart: boolean }): string {
  if (v.saveOnStop) return v.snapOnStart ? 'origin-snapshot' : 'origin'
  return v.snapOnStart ? 'snapshot' : 'volatile'
}

export interface VolumeJson {
  vid: string
  name: string
  kind: string
  rw: boolean
  saveOnStop: boolean
  snapOnStart: boolean
  source: string | null
  revisionsToKeep: number
  size: number
  dirty: boolean
  outdated: boolean
  path: string
  /** Why the volume's record is unusable (every call on it is refused), or null. */
  broken: string | null
}

export async function volumeJson(v: Volume): Promise<VolumeJson> {
  if (v.broken !== null) {
    const { vid, name, path, broken } = v
    return { vid, name, kind: 'broken', rw: false, saveOnStop: false, snapOnStart: false, source: null, revisionsToKeep: 0, size: 0, dirty: false, outdated: false, path, broken }
  }
  return {
    vid: v.vid,
    name: v.name,
    kind: volumeKind(v),
    rw: v.rw,
    saveOnStop: v.saveOnStop,
    snapOnStart: v.snapOnStart,
    source: v.source,
    revisionsToKeep: v.revisionsToKeep,
    size: await v.size(),
    dirty: await v.isDirty(),
    outdated: await v.isOutdated(),
    path: v.path,
    broken: null,
  }
}

export const volumeColumns: Column<VolumeJson>[] = [
  { header: 'VID', value: (v) => v.vid },
  { header: 'KIND', value: (v) => v.kind },
  { header: 'RW', value: (v) => (v.rw ? 'rw' : 'ro') },
  { header: 'SIZE', value: (v) => humanSize(v.size), align: 'right' },
  { header: 'STATE', value: (v) => (v.broken !== null ? 'broken' : v.dirty ? 'running' : v.outdated ? 'outdated' : 'stopped') },
  { header: 'SOURCE', value: (v) => v.source ?? '-' },
]

export interface UsageRow {
  vid: string
  size: number
  allocated: number
  shared: number
  exclusive: number
  extents: number
}

/** FIEMAP figures of a volume's current image. */
export async function volumeUsage(v: Volume): Promise<Omit<UsageRow, 'vid' | 'size'>> {
  const { allocated, shared, exclusive, extents } = await v.usage()
  return { allocated, shared, exclusive, extents }
}

export async function volumeUsageRows(volumes: Volume[]): Promise<UsageRow[]> {
  const rows: UsageRow[] = []
  // A broken volume has no usable record (volume list shows it as broken).
  for (const v of volumes) if (v.broken === null) rows.push({ vid: v.vid, size: await v.size(), ...(await volumeUsage(v)) })
  return rows
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

export const usageColumns: Column<Omit<UsageRow, 'vid'> & { vid: string }>[] = [
  { header: 'VID', value: (r) => r.vid },
  { header: 'SIZE', value: (r) => humanSize(r.size), align: 'right' },
  { header: 'ALLOCATED', value: (r) => humanSize(r.allocated), align: 'right' },
  { header: 'SHARED', value: (r) => humanSize(r.shared), align: 'right' },
  { header: 'EXCLUSIVE', value: (r) => humanSize(r.exclusive), align: 'right' },
  { header: 'EXTENTS', value: (r) => String(r.extents), align: 'right' },
]
