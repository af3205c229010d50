// createVolume options checked into a volume record, before any I/O (shared
// by createVolume, adoptVolume and the batch calls, docs/design.md §3, §7):
// one rule for the vid, the name and the kind, whichever call is made.
import { ReflinkVolume } from '../volume/volume'
import { parseVid } from '../store/vid'
import { poolError } from '../store/fail'
import { optional, validateBoolean, validateObject, validateOneOf, validateOptions, validateRevisionsToKeep, validateSize, validateString } from '../validate'
import { VOLUME_KINDS, kindFlags, volumeKind, type VolumeKind } from '../store/kind'
import { quote } from '../util/quote'
import type { Registry } from './context'
import type { VolumeOptions, VolumeRecord } from '../store/types'

const VOLUME_OPTION_KEYS = ['vid', 'vm', 'name', 'kind', 'size', 'rw', 'saveOnStop', 'snapOnStart', 'source', 'revisionsToKeep'] as const

/** The vid of the options: `vid`, else `<vm.dirPathPrefix>/<vm.name>/<name>`; checked (ERR_INVALID_VID). */
function optionsVid(o: Partial<VolumeOptions>, call: string): string {
  if (o.vid !== undefined) {
    parseVid(o.vid)
    return o.vid
  }
  if (o.vm === undefined) throw poolError('ERR_INVALID_ARG_VALUE', `${call}: give either vid or vm { name, dirPathPrefix } and name`)
  const vm = validateOptions('options.vm', o.vm, ['name', 'dirPathPrefix'])
  validateString('options.vm.name', vm.name)
  validateString('options.vm.dirPathPrefix', vm.dirPathPrefix)
  validateString('options.name', o.name)
  const vid = `${vm.dirPathPrefix}/${vm.name}/${o.name}`
  parseVid(vid)
  return vid
}

/**
 * The kind of the options (docs/design.md §3): `kind` when given (a flag given
 * beside it must agree); else the flags as Qubes reads them, a missing one
 * false; with neither, an origin (its data is kept at stop, as the CLI does).
 */
function optionsKind(o: Partial<VolumeOptions>, vid: string): VolumeKind {
  const saveOnStop = optional<boolean>('options.saveOnStop', o.saveOnStop, validateBoolean)
  const snapOnStart = optional<boolean>('options.snapOnStart', o.snapOnStart, validateBoolean)
  if (o.kind === undefined) {
    if (saveOnStop === undefined && snapOnStart === undefined) return 'origin'
    return volumeKind({ saveOnStop: saveOnStop ?? false, snapOnStart: snapOnStart ?? false })
  }
  validateOneOf('options.kind', o.kind, VOLUME_KINDS)
  const flags = kindFlags(o.kind)
  for (const [key, given] of [['saveOnStop', saveOnStop], ['snapOnStart', snapOnStart]] as const) {
    if (given !== undefined && given !== flags[key]) {
      throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid}: kind '${o.kind}' has ${key} ${flags[key]}, but ${key} ${given} was given`, { vid })
    }
  }
  return o.kind
}

/**
 * Validate createVolume options into a record (no I/O). The name is the
 * vid's last component (a different one is refused); revisionsToKeep
 * defaults to the pool's (copied, then the volume's own).
 */
export function volumeRecord(pool: Registry, options: VolumeOptions, call = 'createVolume'): VolumeRecord {
  if (options === undefined) validateObject('options', options)
  const o = validateOptions('options', options, VOLUME_OPTION_KEYS)
  const vid = optionsVid(o, call)
  const { name } = parseVid(vid)
  if (o.name !== undefined && o.name !== name) {
    throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid}: options.name ${typeof o.name === 'string' ? quote(o.name) : String(o.name)} differs from the vid's last component '${name}' (leave it out)`, { vid })
  }
  const kind = optionsKind(o, vid)
  const { saveOnStop, snapOnStart } = kindFlags(kind)
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
    throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid}: a ${kind} needs a source volume`, { vid })
  }
  if (!snapOnStart && source !== null) {
    throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid}: source is only valid with snapOnStart (kind snapshot or origin-snapshot)`, { vid })
  }
  if (source === vid) throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid} cannot be its own source`, { vid })
  return { vid, name, rw, saveOnStop, snapOnStart, source, size, revisionsToKeep }
}
