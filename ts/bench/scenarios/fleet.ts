// Scenario 7b: tearing a fleet down (docs/design.md §7), on XFS and btrfs.
// - `reflink-pool volume remove --match 'appvms/**'` of N clones, the whole CLI
//   process, against `reflink-pool clone -n N`, the whole process: target <= 2x;
// - pool.removeVolumes of N against the floor binary issuing the same syscalls
//   (locks, checks, durable intent, record and image unlinks, rmdirs, one
//   syncfs, the intent's unlink): target <= 1.5x.
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { fsName, reflinkScenario, type BenchContext, type BenchFs, type Scenario } from '../context'
import { timeInterleaved } from '../interleave'
import { Skip, type PoolApi, type VolumeApi } from '../product'
import { measurement, ratioCheck, type ScenarioResult } from '../results'
import { syncFs } from '../system'
import { openPool, templateVolume } from './pool-fixture'

const BIN = join(__dirname, '..', '..', '..', 'bin', 'reflink-pool.js')
const TPL = 'vm-templates/tpl-1/root'

const targets = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `appvms/${prefix}-${i}/root`)

function cli(args: string[]): void {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`reflink-pool ${args.join(' ')} failed: ${r.stderr}`)
}

async function fleetOn(ctx: BenchContext, fs: BenchFs, result: ScenarioResult): Promise<void> {
  if (!ctx.floor) throw new Skip(`floor binary unavailable: ${ctx.floorProblem}`)
  const floor = ctx.floor
  const n = ctx.settings.batchVolumes
  const base = join(fs.dir, 'bench-fleet')
  rmSync(base, { recursive: true, force: true })
  let seq = 0
  /** A fresh pool with the 1-extent template and, unless `clones` is 0, that many clones (untimed). */
  const fresh = async (clones: number): Promise<{ pool: PoolApi; tpl: VolumeApi; dir: string }> => {
    const pool = await openPool(ctx, join('bench-fleet', `p${seq++}`), fs)
    const tpl = await templateVolume(pool, 'tpl-1', 1)
    if (!pool.cloneVolumes || !pool.removeVolumes) throw new Skip('the pool has no cloneVolumes/removeVolumes')
    if (clones) await pool.cloneVolumes(tpl, targets('c', clones))
    return { pool, tpl, dir: pool.dirPath }
  }
  ctx.log(`fleet: ${fs.label}: remove ${n} clones (CLI, library, floor) and clone -n ${n} (CLI)`)
  let cliClonePool = ''
  let cliRemovePool = ''
  let lib: { pool: PoolApi } | null = null
  let floorDir = ''
  const floorTpl = join(base, 'floor-template')
  const leftovers: string[] = []
  // Warm the library and the floor once, untimed (one-time costs of a long-lived process).
  const warm = await fresh(n)
  await warm.pool.removeVolumes!(targets('c', n))
  spawnSync('cp', ['--reflink=always', join(warm.dir, `${TPL}.img`), floorTpl])
  await floor.batch('batch', floorTpl, join(base, 'floor-warm'), n)
  await floor.batch('remove', floorTpl, join(base, 'floor-warm'), n)
  await warm.pool.close()
  await syncFs(fs.dir)
  const times = await timeInterleaved(
    [
      {
        id: 'cli-clone',
        prepare: async () => {
          const p = await fresh(0)
          cliClonePool = p.dir
          await p.pool.close()
        },
        run: () => cli(['--pool', cliClonePool, 'clone', TPL, 'appvms/c-{n}/root', '-n', String(n)]),
        cleanup: () => void leftovers.push(cliClonePool),
      },
      {
        id: 'cli-remove',
        prepare: async () => {
          const p = await fresh(n)
          cliRemovePool = p.dir
          await p.pool.close()
        },
        run: () => cli(['--pool', cliRemovePool, 'volume', 'remove', '--match', 'appvms/**']),
        cleanup: () => void leftovers.push(cliRemovePool),
      },
      {
        id: 'library',
        prepare: async () => {
          lib = await fresh(n)
        },
        run: async () => {
          await lib!.pool.removeVolumes!(targets('c', n))
        },
        cleanup: async () => {
          leftovers.push(lib!.pool.dirPath)
          await lib!.pool.close()
        },
      },
      {
        id: 'floor',
        prepare: async () => {
          floorDir = join(base, `floor-${seq++}`)
          await floor.batch('batch', floorTpl, floorDir, n)
        },
        run: async () => (await floor.batch('remove', floorTpl, floorDir, n)).ms,
        cleanup: () => void leftovers.push(floorDir),
      },
    ],
    { rounds: ctx.settings.batchRounds, between: () => syncFs(fs.dir), onSample: (id, r, ms) => ctx.log(`  ${id} round ${r + 1}: ${(ms / n).toFixed(3)} ms per volume`) },
  )
  for (const dir of leftovers) rmSync(dir, { recursive: true, force: true })
  rmSync(base, { recursive: true, force: true })
  const perVolume = (ms: number[]) => ms.map((t) => t / n)
  const row = (id: string, what: string) => result.measurements.push(measurement(`fleet/${fs.kind}/${id}`, what, 'ms', perVolume(times.get(id)!)))
  row('cli-clone', `reflink-pool clone -n ${n}, whole process, per volume`)
  row('cli-remove', `reflink-pool volume remove --match of ${n}, whole process, per volume`)
  row('library', `pool.removeVolumes of ${n}, per volume`)
  row('floor', `floor remove batch of ${n} (same syscalls), per volume`)
  const setting = `${fsName(fs)}, ${n} volumes`
  result.checks.push(ratioCheck({ id: `fleet/${fs.kind}/cli-remove`, scenario: 'Fleet', setting, what: 'volume remove (one process) / clone -n (one process)' }, times.get('cli-remove')!, times.get('cli-clone')!, { comparison: '<=', limit: 2.0 }))
  result.checks.push(ratioCheck({ id: `fleet/${fs.kind}/library-remove`, scenario: 'Fleet', setting, what: 'pool.removeVolumes / floor remove batch (same syscalls)' }, times.get('library')!, times.get('floor')!, { comparison: '<=', limit: 1.5 }))
}

export const fleetScenario: Scenario = reflinkScenario({
  id: 'fleet',
  title: '7b. Tearing a fleet down (XFS, btrfs)',
  description:
    'Removal of many volumes in one batch (docs/design.md §7): `reflink-pool volume remove --match` of N clones as a whole CLI process against `reflink-pool clone -n N`; ' +
    'pool.removeVolumes of N against the floor binary issuing the same syscalls (locks, checks, durable intent, unlinks, rmdirs, syncfs). Every batch runs in a fresh pool made untimed; ' +
    'the filesystem is synced before every timed step.',
  runOn: fleetOn,
})
