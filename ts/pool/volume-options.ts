// createVolume options checked into a volume record, before any I/O (shared
// by createVolume, adoptVolume and the batch calls, docs/design.md §3, §7).
import { ReflinkVolume } from './volume'
import { parseVid } from './vid'
import { poolError } from './fail'
import { optional, validateBoolean, validateObject, validateOptions, validateRevisionsToKeep, validateSize, validateString } from '../validate'
import type { ReflinkPool } from './pool'
import type { VolumeOptions, VolumeRecord } from './types'

const VOLUME_OPTION_KEYS = ['vid', 'vm', 'name', 'size', 'rw', 'saveOnStop', 'snapOnStart', 'source', 'revisionsToKeep'] as const

/**
 * Validate createVolume options into a record (no I/O). revisionsToKeep
 * defaults to the pool's (copied, then the volume's own); `adopt` makes
 * saveOnStop default to true (adoptVolume).
 */
export function volumeRecord(pool: ReflinkPool, options: VolumeOptions, how: { call?: string; adopt?: boolean } = {}): VolumeRecord {
  const call = how.call ?? 'createVolume'
  if (options === undefined) validateObject('options', options)
  const o = validateOptions('options', options, VOLUME_OPTION_KEYS)
  validateString('options.name', o.name)
  const name = o.name
  let vid = o.vid
  if (vid === undefined) {
    if (o.vm === undefined) throw poolError('ERR_INVALID_ARG_VALUE', `${call}: give either vid or vm { name, dirPathPrefix } for volume ${name}`)
    const vm = validateOptions('options.vm', o.vm, ['name', 'dirPathPrefix'])
    validateString('options.vm.name', vm.name)
    validateString('options.vm.dirPathPrefix', vm.dirPathPrefix)
    vid = `${vm.dirPathPrefix}/${vm.name}/${name}`
  }
  parseVid(vid)
  const saveOnStop = optional<boolean>('options.saveOnStop', o.saveOnStop, validateBoolean) ?? how.adopt === true
  const snapOnStart = optional<boolean>('options.snapOnStart', o.snapOnStart, validateBoolean) ?? false
  const rw = optional<boolean>('options.rw', o.rw, validateBoolean) ?? true
  const size = optional<number>('options.size', o.size, validateSize) ?? 0
  const revisionsToKeep = optional<number>('options.revisionsToKeep', o.revisionsToKeep, validateRevisionsToKeep) ?? pool.revisionsToKeep
  let source: string | null = null
  if (o.source !== undefined && o.source !== null) {
    if (o.source instanceof ReflinkVolume && o.source.pool !== pool) {
      throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid}: source ${o.source.vid} belongs to another pool`, { vid })
    }
    source = typeof o.source === 'string' ? o.source : ((o.source as { vid?: unknown })?.vid as string)
    parseVid(source)
  }
  if (snapOnStart && source === null) {
    throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid}: snapOnStart needs a source volume`, { vid })
  }
  if (!snapOnStart && source !== null) {
    throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid}: source is only valid with snapOnStart`, { vid })
  }
  if (source === vid) throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid} cannot be its own source`, { vid })
  return { vid, name, rw, saveOnStop, snapOnStart, source, size, revisionsToKeep }
}
