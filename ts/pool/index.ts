// Public surface of the pool layer (re-exported by the package root).
export { ReflinkPool } from './pool'
export { ReflinkVolume } from './volume'
export { parseVid, VID_PREFIXES, type ParsedVid, type VidPrefix } from './vid'
export type { RecoveryReport } from './recovery'
export type { FilesUsage, FootprintKind, VolumeFootprint } from './footprint'
export * from './types'
export type { BatchOptions, BatchBarrier, BatchReport, CloneVolumesOptions } from './batch'
export type { SendOptions, ReceiveOptions, ReceiveReport, VolumeState } from './send'
