// Scenario 6: a pool holding 10 000 volumes (snapshot volumes of one
// template). Reopening it ≤ 1 s, listVolumes() ≤ 50 ms, and creating one more
// volume not more than 1.5 × slower than in a pool holding only the template.
import { performance } from 'node:perf_hooks'
import { fsName, type Scenario } from '../context'
import { timeInterleaved } from '../interleave'
import { absoluteCheck, measurement, ratioCheck } from '../results'
import { need, type PoolApi } from '../product'
import { dropCaches, syncFs } from '../system'
import { openPool, snapshotVolumes, templateVolume } from './pool-fixture'
import { join } from 'node:path'

export const scaleScenario: Scenario = {
  id: 'scale',
  title: '6. Scale: a pool of 10 000 volumes (XFS)',
  description:
    'A pool holding many snapshot volumes of one template: time to reopen it (ReflinkPool.open, which loads every volume record and runs recovery) with the page cache dropped and cached, ' +
    'listVolumes() (after another pool object added a volume, so it rescans, and unchanged), and createVolume() of one more snapshot volume against the same call in a pool holding only the template (interleaved).',
  async run(ctx, result) {
    const ReflinkPool = need(ctx.product, 'ReflinkPool')
    const n = ctx.settings.scaleVolumes
    const rounds = ctx.settings.scaleRounds
    const setting = `${fsName(ctx.fs.xfs)}, ${n} volumes`
    const fullDir = join(ctx.fs.xfs.dir, 'bench-scale-full')
    let full: PoolApi = await openPool(ctx, 'bench-scale-full')
    const empty = await openPool(ctx, 'bench-scale-empty')
    try {
      ctx.log(`scale: creating ${n} volumes`)
      const t0 = performance.now()
      const fullTpl = await templateVolume(full, 'template', 1)
      await snapshotVolumes(full, fullTpl, 'vm', n)
      ctx.log(`scale: ${n} volumes created in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
      const emptyTpl = await templateVolume(empty, 'template', 1)
      await ctx.settle()

      // Reopening with the page cache dropped (a process starting after boot or
      // after memory pressure: every record read from disk) and right after that
      // (warm). The target applies to the cold open where the cache can be dropped.
      const cold: number[] = []
      const warm: number[] = []
      for (let r = 0; r < rounds; r++) {
        for (const list of ctx.canDropCaches ? [cold, warm] : [warm]) {
          await full.close()
          if (list === cold) await dropCaches()
          const t = performance.now()
          full = await ReflinkPool.open({ dirPath: fullDir })
          list.push(performance.now() - t)
        }
      }
      // listVolumes() answers from a cache while the record directory is unchanged;
      // after another process adds a volume it rescans. Both are timed; the target
      // applies to the rescan, the slower case.
      const cached: number[] = []
      const rescans: number[] = []
      let listed = 0
      const other = await ReflinkPool.open({ dirPath: fullDir })
      try {
        for (let r = 0; r < rounds; r++) {
          await snapshotVolumes(other, fullTpl, `listed-${r}`, 1)
          let t = performance.now()
          listed = ((await full.listVolumes()) as unknown[]).length
          rescans.push(performance.now() - t)
          t = performance.now()
          await full.listVolumes()
          cached.push(performance.now() - t)
        }
      } finally {
        await other.close()
      }
      const creates = await timeInterleaved(
        [
          { id: 'full', run: async (r) => void (await snapshotVolumes(full, fullTpl, `extra-${r}`, 1)) },
          { id: 'empty', run: async (r) => void (await snapshotVolumes(empty, emptyTpl, `extra-${r}`, 1)) },
        ],
        { rounds: ctx.settings.scaleCreateRounds, between: () => syncFs(ctx.fs.xfs.dir) },
      )
      if (cold.length) result.measurements.push(measurement('scale/open-cold', `ReflinkPool.open of ${n} volumes, page cache dropped`, 'ms', cold))
      result.measurements.push(measurement('scale/open-warm', `ReflinkPool.open of ${n} volumes, cached`, 'ms', warm))
      result.measurements.push(measurement('scale/list-rescan', `listVolumes() of ${n} volumes after another pool object added one`, 'ms', rescans, { detail: { listed } }))
      result.measurements.push(measurement('scale/list-cached', `listVolumes() of ${n} volumes, unchanged`, 'ms', cached))
      result.measurements.push(measurement('scale/create-full', `createVolume in a pool of ${n}`, 'ms', creates.get('full')!))
      result.measurements.push(measurement('scale/create-empty', 'createVolume in a pool holding only the template', 'ms', creates.get('empty')!))
      const target = { comparison: '<=' as const, limit: 1000 }
      if (cold.length) result.checks.push(absoluteCheck({ id: 'scale/open-cold', scenario: 'Scale', setting, what: 'ReflinkPool.open, page cache dropped' }, cold, 'ms', target))
      result.checks.push(absoluteCheck({ id: 'scale/open-warm', scenario: 'Scale', setting, what: 'ReflinkPool.open, cached' }, warm, 'ms', cold.length ? null : target))
      result.checks.push(absoluteCheck({ id: 'scale/list', scenario: 'Scale', setting, what: 'listVolumes() after a change elsewhere', note: `${listed} listed` }, rescans, 'ms', { comparison: '<=', limit: 50 }))
      result.checks.push(absoluteCheck({ id: 'scale/list-cached', scenario: 'Scale', setting, what: 'listVolumes(), unchanged pool' }, cached, 'ms', null))
      result.checks.push(
        ratioCheck({ id: 'scale/create', scenario: 'Scale', setting, what: 'createVolume: full pool / empty pool' }, creates.get('full')!, creates.get('empty')!, { comparison: '<=', limit: 1.5 }),
      )
    } finally {
      await full.close()
      await empty.close()
    }
  },
}
