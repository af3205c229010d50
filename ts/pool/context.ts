// What the pool's own modules (batches, removal, adoption) need of the pool, as
// an interface so that they do not import pool.ts, which imports them
// (docs/design.md §1: no import circle of more than two files in a folder).
import type { PoolContext, PoolView } from '../store/context'
import type { ReflinkVolume } from '../volume/volume'
import type { AdoptOptions, VolumeRecord } from '../store/types'

/** The pool's registry as its modules call it (it is the ReflinkPool). */
export interface Registry extends PoolView {
  readonly revisionsToKeep: number
  getVolume(vid: string): ReflinkVolume
  listVolumes(): Promise<ReflinkVolume[]>
  adoptVolume(options: AdoptOptions): Promise<ReflinkVolume>
}

export interface RegistryContext extends PoolContext {
  readonly pool: Registry
  /** Add the record of a volume made by a batch to the pool's cache; returns its volume. */
  remember(rec: VolumeRecord): ReflinkVolume
}
