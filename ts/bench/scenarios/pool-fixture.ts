// Pools for scenarios 2 and 6: a fresh pool on the XFS scratch filesystem,
// a save-on-stop template volume whose committed image has a chosen number of
// extents (written through the volume's own start/stop), and many snapshot
// volumes of it.
import { join } from 'node:path'
import type { BenchContext, BenchFs } from '../context'
import { writeExtentTemplate } from '../fixtures'
import { need, type PoolApi, type VolumeApi } from '../product'

/** A fresh pool `name` on `fs` (default: the XFS scratch filesystem). */
export async function openPool(ctx: BenchContext, name: string, fs: BenchFs = ctx.fs.xfs): Promise<PoolApi> {
  const ReflinkPool = need(ctx.product, 'ReflinkPool')
  return ReflinkPool.open({ dirPath: join(fs.dir, name), setupCheck: fs.kind !== 'cwd' })
}

/** `vm-templates/<name>/root`, committed with `extents` data extents. */
export async function templateVolume(pool: PoolApi, name: string, extents: number): Promise<VolumeApi> {
  const size = extents === 1 ? 16 * 1024 * 1024 : extents * 2 * 16 * 1024
  const tpl = await pool.createVolume({ vm: { name, dirPathPrefix: 'vm-templates' }, name: 'root', size, saveOnStop: true, rw: true })
  await tpl.start()
  writeExtentTemplate(tpl.path, extents)
  await tpl.stop()
  return tpl
}

/** Snapshot (snap-on-start) volumes `appvms/<prefix>-<i>/root` of `template`, created `inFlight` at a time. */
export async function snapshotVolumes(pool: PoolApi, template: VolumeApi, prefix: string, count: number, inFlight = 8): Promise<VolumeApi[]> {
  const vols: VolumeApi[] = new Array(count)
  await inParallel(count, inFlight, async (i) => {
    vols[i] = await pool.createVolume({ vm: { name: `${prefix}-${i}`, dirPathPrefix: 'appvms' }, name: 'root', snapOnStart: true, source: template.vid, rw: true })
  })
  return vols
}

/** Run `task(0..count-1)` with at most `limit` in flight. */
export async function inParallel(count: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < count) await task(next++)
  }
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker))
}
