// The public API as the reliability suites use it: loaded from the
// package root the way a user would, plus two small helpers.
import type * as Api from '../../ts/index'

export type PoolApi = typeof Api
export type Pool = Api.ReflinkPool
export type Volume = Api.ReflinkVolume
export type VolumeConfig = Api.VolumeOptions

/** The package root (ts/index.ts), loaded lazily so a suite can be declared before the native addon loads. */
export function loadApi(): PoolApi {
  return require('../../ts/index') as PoolApi
}

/** The error code of a thrown value, or a marker saying it had none (an untyped error is itself a finding). */
export function codeOf(e: unknown): string {
  const c = (e as { code?: unknown })?.code
  return typeof c === 'string' ? c : `UNTYPED(${(e as Error)?.name ?? typeof e}: ${String((e as Error)?.message ?? e).slice(0, 120)})`
}
