// createVolume options checked into a volume record, before any I/O (shared
// by createVolume and the batch calls, docs/design.md §7).
import { ReflinkVolume } from './volume'
import { parseVid } from './vid'
import { poolError } from './fail'
import { checkBoolean, checkRevisionsToKeep, checkSize, checkString } from './args'
import type { ReflinkPool } from './pool'
import type { VolumeOptions, VolumeRecord } from './types'

export function volumeRecord(pool: ReflinkPool, o: VolumeOptions): VolumeRecord {
  if (typeof o !== 'object' || o === null) throw poolError('ERR_INVALID_ARG_TYPE', 'createVolume needs a volume config object')
  const name = checkString(o.name, 'name')
  let vid = o.vid
  if (vid === undefined) {
    if (typeof o.vm !== 'object' || o.vm === null) {
      throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${name}: give either vid or vm { name, dirPathPrefix }`)
    }
    vid = `${o.vm.dirPathPrefix}/${o.vm.name}/${name}`
  }
  parseVid(vid)
  const saveOnStop = checkBoolean(o.saveOnStop, 'saveOnStop') ?? false
  const snapOnStart = checkBoolean(o.snapOnStart, 'snapOnStart') ?? false
  const rw = checkBoolean(o.rw, 'rw') ?? true
  let source: string | null = null
  if (o.source !== undefined && o.source !== null) {
    if (o.source instanceof ReflinkVolume && o.source.pool !== pool) {
      throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid}: source ${o.source.vid} belongs to another pool`, { vid })
    }
    source = typeof o.source === 'string' ? o.source : o.source.vid
    parseVid(source)
  }
  if (snapOnStart && source === null) {
    throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid}: snapOnStart needs a source volume`, { vid })
  }
  if (!snapOnStart && source !== null) {
    throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid}: source is only valid with snapOnStart`, { vid })
  }
  if (source === vid) throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid} cannot be its own source`, { vid })
  return {
    vid,
    name,
    rw,
    saveOnStop,
    snapOnStart,
    source,
    size: o.size === undefined ? 0 : checkSize(o.size, 'size'),
    revisionsToKeep: o.revisionsToKeep === undefined ? null : checkRevisionsToKeep(o.revisionsToKeep, 'revisionsToKeep'),
  }
}
