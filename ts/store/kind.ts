// The kind of a volume (docs/design.md §3), decided here and only here from
// the two Qubes flags of its record: saveOnStop (S, its changes are kept) and
// snapOnStart (SoS, it starts from a clone of its source's clean image).
// Lifecycle, batch, pool and CLI switch on the kind, never on a combination
// of the flags, so no two places can disagree about what a pair means; a
// question about one flag alone (does it commit on stop? has it a source?)
// reads that flag.

/** The four kinds of volume (docs/design.md §3). */
export const VOLUME_KINDS = ['origin', 'snapshot', 'volatile', 'origin-snapshot'] as const
/**
 * What a volume is: `origin` (S & !SoS: keeps its own committed image),
 * `snapshot` (SoS & !S: a fresh clone of its source at each start, dropped at
 * stop), `origin-snapshot` (S & SoS: starts from its source, commits on stop),
 * `volatile` (neither: a new empty image at each start).
 */
export type VolumeKind = (typeof VOLUME_KINDS)[number]

/** The two Qubes flags a kind stands for. */
export interface KindFlags {
  /** Commit the running image on stop. */
  saveOnStop: boolean
  /** Start from a fresh reflink of the source. */
  snapOnStart: boolean
}

/** The kind of a record (or anything carrying the two flags). */
export function volumeKind(flags: KindFlags): VolumeKind {
  if (flags.saveOnStop) return flags.snapOnStart ? 'origin-snapshot' : 'origin'
  return flags.snapOnStart ? 'snapshot' : 'volatile'
}

/** The flags of a kind (the inverse of volumeKind). */
export function kindFlags(kind: VolumeKind): KindFlags {
  return { saveOnStop: kind === 'origin' || kind === 'origin-snapshot', snapOnStart: kind === 'snapshot' || kind === 'origin-snapshot' }
}

/**
 * How a volume's start makes its dirty image (docs/design.md §3):
 * - `precache`: an origin: rename its precache, else clone its clean image;
 * - `rename`: an origin with snapshots disabled (revisionsToKeep -1): rename
 *   the clean image itself to dirty;
 * - `source`: snapshot and origin-snapshot: hardlink the source's clean image,
 *   clone it to dirty;
 * - `sparse`: volatile: a new sparse image of the nominal size.
 */
export type StartWay = 'precache' | 'rename' | 'source' | 'sparse'

/** The StartWay of a record. */
export function startWay(rec: KindFlags & { revisionsToKeep: number }): StartWay {
  switch (volumeKind(rec)) {
    case 'origin':
      return rec.revisionsToKeep === -1 ? 'rename' : 'precache'
    case 'snapshot':
    case 'origin-snapshot':
      return 'source'
    case 'volatile':
      return 'sparse'
  }
}
