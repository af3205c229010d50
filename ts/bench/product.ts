// The product as the harness sees it: the public API from the package root
// (ts/index.ts, or dist/index.js when compiled), loaded lazily so that a
// harness run on a half-built tree reports which scenarios could not run
// instead of failing to start.

export interface CopyResult {
  method: string
  bytes: number
}

export interface VolumeApi {
  vid: string
  path: string
  start(): Promise<unknown>
  stop(opts?: { discard?: boolean }): Promise<unknown>
  size(): Promise<number>
  importFile(path: string, opts?: { sparse?: 'auto' | 'always' }): Promise<CopyResult>
  exportToFile(path: string): Promise<CopyResult>
  exportStream(opts?: { start?: number; end?: number }): NodeJS.ReadableStream
  importStream(readable: AsyncIterable<Uint8Array>, size: number): Promise<unknown>
  importPipe(source: string, size: number): Promise<unknown>
}

export interface PoolApi {
  dirPath: string
  createVolume(config: Record<string, unknown>): Promise<VolumeApi>
  getVolume(vid: string): Promise<VolumeApi>
  cloneVolumes?(template: VolumeApi | string, targets: string[], opts?: Record<string, unknown>): Promise<{ volumes: VolumeApi[]; methods: Record<string, number> }>
  startVolumes?(volumes: VolumeApi[], opts?: Record<string, unknown>): Promise<string[]>
  stopVolumes?(volumes: VolumeApi[], opts?: Record<string, unknown>): Promise<void>
  removeVolumes?(volumes: (VolumeApi | string)[], opts?: Record<string, unknown>): Promise<unknown>
  listVolumes(): unknown
  close(): Promise<void> | void
}

export interface ProductApi {
  copyFile(src: string, dst: string, opts?: { reflink?: 'auto' | 'always' | 'never' }): Promise<CopyResult>
  fileUsage(path: string): Promise<{ allocated: number; shared: number; exclusive: number; extents: number }>
  ReflinkPool: { open(opts: { dirPath: string; setupCheck?: boolean }): Promise<PoolApi> }
}

export interface Product {
  copyFile?: ProductApi['copyFile']
  fileUsage?: ProductApi['fileUsage']
  ReflinkPool?: ProductApi['ReflinkPool']
  /** Why parts are missing (the root does not load, or lacks an export). */
  problems: string[]
}

/** The package root's exports that the harness needs, with the reason for any that are missing. */
export function loadProduct(): Product {
  let mod: Partial<ProductApi>
  try {
    mod = require('../index') as Partial<ProductApi>
  } catch (e) {
    return { problems: [`the package root (ts/index.ts) does not load: ${(e as Error).message.split('\n')[0]}`] }
  }
  const problems: string[] = []
  if (!mod.ReflinkPool) {
    // The pool layer may be wired into the package root later than it exists.
    try {
        mod = { ...mod, ReflinkPool: (require('../pool') as Partial<ProductApi>).ReflinkPool }
      if (mod.ReflinkPool) problems.push('ReflinkPool is not exported by the package root: loaded from ts/pool')
    } catch {}
  }
  if (typeof mod.copyFile !== 'function') problems.push('the package root does not export copyFile')
  if (typeof mod.fileUsage !== 'function') problems.push('the package root does not export fileUsage')
  if (typeof mod.ReflinkPool?.open !== 'function') problems.push('the package root does not export ReflinkPool.open')
  return { copyFile: mod.copyFile, fileUsage: mod.fileUsage, ReflinkPool: mod.ReflinkPool, problems }
}

/** The API a scenario needs, or throws the reason it is missing (the scenario is then reported skipped). */
export function need<K extends 'copyFile' | 'fileUsage' | 'ReflinkPool'>(p: Product, key: K): NonNullable<Product[K]> {
  const v = p[key]
  if (!v) throw new Skip(`${key} unavailable: ${p.problems.join('; ')}`)
  return v as NonNullable<Product[K]>
}

/** Thrown for a scenario (part) that cannot run here; reported as skipped with its reason, never as met. */
export class Skip extends Error {}
