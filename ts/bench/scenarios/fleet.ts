// Scenario 7b: the life of a fleet (docs/design.md §7, issue 20), on XFS and btrfs.
// - `reflink-pool volume remove --match 'appvms/**'` of N clones, the whole CLI
//   process, against `reflink-pool clone -n N`, the whole process: target <= 2x;
// - pool.removeVolumes of N against the floor binary issuing the same syscalls
//   (locks, checks, durable intent, record and image unlinks, rmdirs, one
//   syncfs, the intent's unlink): target <= 1.5x;
// - `volume start --match` + `volume stop --match` of K clones (one CLI process
//   each) against K `volume start VID` processes and K `volume stop VID`
//   processes: target <= 0.1x;
// - a fleet's day through the library (cloneVolumes of N from the template,
//   startVolumes, 1 MiB written into each dirty image, stopVolumes, which
//   commits, removeVolumes) against the floor's `fleetday`, the same syscalls
//   and barriers issued directly: target <= 1.3x.
import { spawnSync } from 'node:child_process'
import { closeSync, openSync, rmSync, writeSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
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
  const fresh: Fresh = async (clones) => {
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
  const perVolume = (ms: number[]) => ms.map((t) => t / n)
  const row = (id: string, what: string) => result.measurements.push(measurement(`fleet/${fs.kind}/${id}`, what, 'ms', perVolume(times.get(id)!)))
  row('cli-clone', `reflink-pool clone -n ${n}, whole process, per volume`)
  row('cli-remove', `reflink-pool volume remove --match of ${n}, whole process, per volume`)
  row('library', `pool.removeVolumes of ${n}, per volume`)
  row('floor', `floor remove batch of ${n} (same syscalls), per volume`)
  const setting = `${fsName(fs)}, ${n} volumes`
  result.checks.push(ratioCheck({ id: `fleet/${fs.kind}/cli-remove`, scenario: 'Fleet', setting, what: 'volume remove (one process) / clone -n (one process)' }, times.get('cli-remove')!, times.get('cli-clone')!, { comparison: '<=', limit: 2.0 }))
  result.checks.push(ratioCheck({ id: `fleet/${fs.kind}/library-remove`, scenario: 'Fleet', setting, what: 'pool.removeVolumes / floor remove batch (same syscalls)' }, times.get('library')!, times.get('floor')!, { comparison: '<=', limit: 1.5 }))
  await startStopRows(ctx, fs, result, fresh)
  await fleetDayRows(ctx, fs, result, fresh, floorTpl)
  rmSync(base, { recursive: true, force: true })
}

type Fresh = (clones: number) => Promise<{ pool: PoolApi; tpl: VolumeApi; dir: string }>

/** `volume start` + `volume stop` of K clones: one CLI process each against one process per vid and command. */
async function startStopRows(ctx: BenchContext, fs: BenchFs, result: ScenarioResult, fresh: Fresh): Promise<void> {
  const k = ctx.settings.batchStartVolumes
  const vids = targets('c', k)
  ctx.log(`fleet: ${fs.label}: volume start + stop of ${k} clones, one CLI process each against ${k} processes each`)
  const dirs: Record<string, string> = {}
  const leftovers: string[] = []
  const prepare = (id: string) => async () => {
    const p = await fresh(k)
    dirs[id] = p.dir
    await p.pool.close()
  }
  const times = await timeInterleaved(
    [
      {
        id: 'batch',
        prepare: prepare('batch'),
        run: () => {
          cli(['--pool', dirs.batch, 'volume', 'start', '--match', 'appvms/**'])
          cli(['--pool', dirs.batch, 'volume', 'stop', '--match', 'appvms/**'])
        },
        cleanup: () => void leftovers.push(dirs.batch),
      },
      {
        id: 'processes',
        prepare: prepare('processes'),
        run: () => {
          for (const vid of vids) cli(['--pool', dirs.processes, 'volume', 'start', vid])
          for (const vid of vids) cli(['--pool', dirs.processes, 'volume', 'stop', vid])
        },
        cleanup: () => void leftovers.push(dirs.processes),
      },
    ],
    { rounds: ctx.settings.batchRounds, between: () => syncFs(fs.dir), onSample: (id, r, ms) => ctx.log(`  start+stop ${id} round ${r + 1}: ${(ms / 1000).toFixed(2)} s`) },
  )
  for (const dir of leftovers) rmSync(dir, { recursive: true, force: true })
  result.measurements.push(measurement(`fleet/${fs.kind}/cli-start-stop-batch`, `reflink-pool volume start --match + volume stop --match of ${k} clones (2 processes)`, 'ms', times.get('batch')!))
  result.measurements.push(measurement(`fleet/${fs.kind}/cli-start-stop-processes`, `reflink-pool volume start VID, then volume stop VID, for each of ${k} clones (${2 * k} processes)`, 'ms', times.get('processes')!))
  result.checks.push(ratioCheck({ id: `fleet/${fs.kind}/cli-start-stop`, scenario: 'Fleet', setting: `${fsName(fs)}, ${k} clones`, what: `volume start + stop: one CLI process each / ${k} processes each` }, times.get('batch')!, times.get('processes')!, { comparison: '<=', limit: 0.1 }))
}

const DAY_WRITE = Buffer.alloc(1024 * 1024, 0x5a)

/** A fleet's day through the library against the floor's `fleetday` (same syscalls and barriers). */
async function fleetDayRows(ctx: BenchContext, fs: BenchFs, result: ScenarioResult, fresh: Fresh, floorTpl: string): Promise<void> {
  const floor = ctx.floor!
  const n = ctx.settings.batchVolumes
  const vids = targets('d', n)
  ctx.log(`fleet: ${fs.label}: a day of ${n} clones (clone, start, write 1 MiB, stop, remove), library against floor`)
  let lib: { pool: PoolApi; tpl: VolumeApi } | null = null
  let floorDir = ''
  let seq = 0
  const phases: Record<'library' | 'floor', Record<string, number[]>> = { library: {}, floor: {} }
  const note = (who: 'library' | 'floor', name: string, ms: number) => (phases[who][name] ??= []).push(ms)
  const times = await timeInterleaved(
    [
      {
        id: 'library',
        prepare: async () => {
          lib = await fresh(0)
        },
        run: async () => {
          const { pool, tpl } = lib!
          let t = performance.now()
          const lap = (name: string) => {
            const now = performance.now()
            note('library', name, now - t)
            t = now
          }
          const { volumes } = await pool.cloneVolumes!(tpl, vids)
          lap('clone')
          const paths = await pool.startVolumes!(volumes)
          lap('start')
          for (const path of paths) {
            const fd = openSync(path, 'r+')
            try {
              writeSync(fd, DAY_WRITE, 0, DAY_WRITE.length, 0)
            } finally {
              closeSync(fd)
            }
          }
          lap('write')
          await pool.stopVolumes!(volumes)
          lap('stop')
          await pool.removeVolumes!(volumes)
          lap('remove')
        },
        cleanup: async () => {
          const dir = lib!.pool.dirPath
          await lib!.pool.close()
          rmSync(dir, { recursive: true, force: true })
        },
      },
      {
        id: 'floor',
        prepare: () => {
          floorDir = join(fs.dir, 'bench-fleet', `day-floor-${seq++}`)
        },
        run: async () => {
          const r = await floor.fleetDay(floorTpl, floorDir, n)
          for (const [name, ms] of Object.entries(r.phases)) note('floor', name, ms)
          return r.ms
        },
        cleanup: () => rmSync(floorDir, { recursive: true, force: true }),
      },
    ],
    { rounds: ctx.settings.batchRounds, between: () => syncFs(fs.dir), onSample: (id, r, ms) => ctx.log(`  day ${id} round ${r + 1}: ${(ms / n).toFixed(3)} ms per volume`) },
  )
  for (const who of ['library', 'floor'] as const) {
    for (const [name, ms] of Object.entries(phases[who])) {
      result.measurements.push(measurement(`fleet/${fs.kind}/day-${who}-${name}`, `fleet day, ${who}: ${name} of ${n}, ms`, 'ms', ms))
    }
  }
  result.measurements.push(measurement(`fleet/${fs.kind}/day-library`, `fleet day through the library (${n} clones), per volume`, 'ms', times.get('library')!.map((t) => t / n)))
  result.measurements.push(measurement(`fleet/${fs.kind}/day-floor`, `fleet day, floor fleetday (same syscalls and barriers), per volume`, 'ms', times.get('floor')!.map((t) => t / n)))
  result.checks.push(ratioCheck({ id: `fleet/${fs.kind}/day`, scenario: 'Fleet', setting: `${fsName(fs)}, ${n} clones, 1 MiB each`, what: 'fleet day (clone, start, write, stop, remove) through the library / floor fleetday (same syscalls and barriers)' }, times.get('library')!, times.get('floor')!, { comparison: '<=', limit: 1.3 }))
}

export const fleetScenario: Scenario = reflinkScenario({
  id: 'fleet',
  title: '7b. The life of a fleet (XFS, btrfs)',
  description:
    'Removal of many volumes in one batch (docs/design.md §7): `reflink-pool volume remove --match` of N clones as a whole CLI process against `reflink-pool clone -n N`; ' +
    'pool.removeVolumes of N against the floor binary issuing the same syscalls (locks, checks, durable intent, unlinks, rmdirs, syncfs); ' +
    '`volume start --match` + `volume stop --match` of K clones (one process each) against one process per vid and command; ' +
    'a fleet day through the library (clone N, start, write 1 MiB into each, stop, remove) against the floor binary\'s `fleetday` (the same syscalls and barriers). Every batch runs in a fresh pool made untimed; ' +
    'the filesystem is synced before every timed step.',
  runOn: fleetOn,
})
