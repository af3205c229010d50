// The slice of the public API (issue 3) the reliability suites drive, typed
// structurally so the harness states exactly what it relies on, and loaded
// from the package root the way a user would.
import type { Readable } from 'node:stream'

export interface VolumeConfig {
  vid?: string
  vm?: { name: string; dirPathPrefix: string }
  name: string
  size?: number
  rw?: boolean
  saveOnStop?: boolean
  snapOnStart?: boolean
  source?: string | Volume
  revisionsToKeep?: number
}

export interface Volume {
  vid: string
  name: string
  rw: boolean
  saveOnStop: boolean
  snapOnStart: boolean
  revisionsToKeep: number
  path: string
  create(): Promise<unknown>
  verify(): Promise<unknown>
  start(): Promise<unknown>
  stop(opts?: { discard?: boolean }): Promise<unknown>
  revert(rev?: number | string): Promise<unknown>
  resize(size: number, opts?: { allowShrink?: boolean }): Promise<unknown>
  export(): Promise<string>
  exportEnd(path: string): Promise<unknown>
  importData(size: number): Promise<string>
  importDataEnd(success: boolean): Promise<unknown>
  importVolume(src: Volume): Promise<unknown>
  importStream(readable: Readable, size: number, opts?: { signal?: AbortSignal }): Promise<unknown>
  isDirty(): boolean | Promise<boolean>
  isOutdated(): boolean | Promise<boolean>
  revisions: Record<string, string> | (() => Promise<Record<string, string>>)
  remove(): Promise<unknown>
}

export interface Pool {
  dirPath: string
  config: Record<string, unknown>
  createVolume(cfg: VolumeConfig): Promise<Volume>
  getVolume(vid: string): Volume
  listVolumes(): Volume[] | Promise<Volume[]>
  close(): Promise<void> | void
}

export interface PoolOptions {
  dirPath: string
  name?: string
  revisionsToKeep?: number
  setupCheck?: boolean
  ephemeralVolatile?: boolean
}

export interface PoolApi {
  ReflinkPool: { open(opts: PoolOptions): Promise<Pool> }
}

/** The package root (ts/index.ts), loaded lazily so the harness compiles before the API lands. */
export function loadApi(): PoolApi {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../../ts/index') as PoolApi
}

/** `revisions` whether the API exposes it as a getter or an async method. */
export async function revisionsOf(v: Volume): Promise<Record<string, string>> {
  const r = v.revisions
  return typeof r === 'function' ? await r.call(v) : r
}

export async function listOf(p: Pool): Promise<Volume[]> {
  return await p.listVolumes()
}

/** The error code of a thrown value, or a marker saying it had none (an untyped error is itself a finding). */
export function codeOf(e: unknown): string {
  const c = (e as { code?: unknown })?.code
  return typeof c === 'string' ? c : `UNTYPED(${(e as Error)?.name ?? typeof e}: ${String((e as Error)?.message ?? e).slice(0, 120)})`
}
