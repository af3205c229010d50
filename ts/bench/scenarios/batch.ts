// Scenario 7: batch operations (docs/design.md §7) on XFS and btrfs.
// - `reflink-pool clone -n N` of a 1-extent template, the whole CLI process:
//   target <= 0.5 ms per volume;
// - the same through the library (pool.cloneVolumes) against the floor doing
//   the same syscalls as one group commit: target <= 2.0x;
// - N clones of a 1 000-extent template against N x one FICLONE of it (the
//   floor's ioctl alone): target <= 1.2x; beside it, without targets, the
//   floor's group commit of the same clones and N FICLONEs back to back with
//   and without one syncfs (what the filesystem itself spends on the batch);
// - start + stop of N snapshot volumes in batch against one at a time: <= 0.5x;
// - event-loop p99 during a batch clone of N volumes: <= 10 ms;
// and, without targets, what a precache made at clone time costs and saves.
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { fsName, reflinkScenario, type BenchContext, type BenchFs, type Scenario } from '../context'
import { timeInterleaved } from '../interleave'
import { Skip, type PoolApi, type VolumeApi } from '../product'
import { absoluteCheck, measurement, ratioCheck, type ScenarioResult } from '../results'
import { syncFs } from '../system'
import { openPool, templateVolume } from './pool-fixture'

const BIN = join(__dirname, '..', '..', '..', 'bin', 'reflink-pool.js')
const TPL = 'vm-templates/tpl-1/root'

const targets = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `appvms/${prefix}-${i}/root`)

/** The batch calls, or the reason the product lacks them. */
function batchApi(pool: PoolApi): Required<Pick<PoolApi, 'cloneVolumes' | 'startVolumes' | 'stopVolumes'>> {
  if (!pool.cloneVolumes || !pool.startVolumes || !pool.stopVolumes) throw new Skip('the pool has no batch calls (cloneVolumes, startVolumes, stopVolumes)')
  return { cloneVolumes: pool.cloneVolumes.bind(pool), startVolumes: pool.startVolumes.bind(pool), stopVolumes: pool.stopVolumes.bind(pool) }
}

/** A fresh pool `name-<round>` holding a template with `extents` extents (untimed preparation). */
async function freshPool(ctx: BenchContext, fs: BenchFs, name: string, extents: number): Promise<{ pool: PoolApi; tpl: VolumeApi; dir: string }> {
  const pool = await openPool(ctx, name, fs)
  const tpl = await templateVolume(pool, `tpl-${extents}`, extents)
  return { pool, tpl, dir: join(fs.dir, name) }
}

async function batchOn(ctx: BenchContext, fs: BenchFs, result: ScenarioResult): Promise<void> {
  if (!ctx.floor) throw new Skip(`floor binary unavailable: ${ctx.floorProblem}`)
  const floor = ctx.floor
  const s = ctx.settings
  const n = s.batchVolumes
  const setting = `${fsName(fs)}, ${n} volumes`
  const base = join(fs.dir, 'bench-batch')
  rmSync(base, { recursive: true, force: true })
  let seq = 0
  const open: { pool: PoolApi; tpl: VolumeApi; dir: string }[] = []
  const fresh = async (extents: number) => {
    const p = await freshPool(ctx, fs, join('bench-batch', `p${seq++}`), extents)
    open.push(p)
    return p
  }
  const closeAll = async () => {
    for (const p of open.splice(0)) {
      await p.pool.close()
      rmSync(p.dir, { recursive: true, force: true })
    }
  }

  // 1. The whole CLI process, and the library call against the floor's group commit.
  ctx.log(`batch: ${fs.label}: clone -n ${n} (CLI, library, floor)`)
  let cliPool = ''
  let lib: { pool: PoolApi; tpl: VolumeApi } | null = null
  let floorDir = ''
  const floorTpl = join(base, 'floor-template')
  // The floor clones the same committed template image as the library.
  const floorTemplateFrom = (poolDir: string) => spawnSync('cp', ['--reflink=always', join(poolDir, `${TPL}.img`), floorTpl])
  // Every peer's volumes stay until all rounds are done (the library's pools too, in
  // closeAll): removing 1 000 volumes leaves the filesystem background work (XFS
  // inode inactivation) that would land in whichever peer runs next.
  const leftovers: string[] = []
  const methods = new Set<string>()
  // One untimed batch each for the library and the floor, both long-lived like an
  // orchestrator: the first in a process pays its one-time costs (code and dentry
  // caches, JIT), which the rounds do not measure. The CLI is timed cold each round.
  const warm = await fresh(1)
  await batchApi(warm.pool).cloneVolumes(warm.tpl, targets('w', n))
  floorTemplateFrom(warm.dir)
  await floor.batch('batch', floorTpl, join(base, 'floor-warm'), n)
  leftovers.push(join(base, 'floor-warm'))
  await syncFs(fs.dir)
  const clone = await timeInterleaved(
    [
      {
        id: 'cli',
        prepare: async () => {
          const p = await fresh(1)
          cliPool = p.dir
          await p.pool.close()
          open.splice(open.indexOf(p), 1)
        },
        run: () => {
          const r = spawnSync(process.execPath, [BIN, '--pool', cliPool, 'clone', TPL, 'appvms/c-{n}/root', '-n', String(n)], { encoding: 'utf8' })
          if (r.status !== 0) throw new Error(`reflink-pool clone failed: ${r.stderr}`)
        },
        cleanup: () => void leftovers.push(cliPool),
      },
      {
        id: 'library',
        prepare: async () => {
          lib = await fresh(1)
        },
        run: async () => {
          const r = await batchApi(lib!.pool).cloneVolumes(lib!.tpl, targets('l', n))
          for (const m of Object.keys(r.methods)) methods.add(m)
        },
      },
      {
        id: 'floor',
        prepare: async () => {
          floorDir = join(base, `floor-${seq++}`)
          const p = await fresh(1)
          floorTemplateFrom(p.dir)
        },
        run: async () => (await floor.batch('batch', floorTpl, floorDir, n)).ms,
        cleanup: () => void leftovers.push(floorDir),
      },
    ],
    { rounds: s.batchRounds, between: () => syncFs(fs.dir), onSample: (id, r, ms) => ctx.log(`  ${id} round ${r + 1}: ${(ms / n).toFixed(3)} ms per volume`) },
  )
  await closeAll()
  for (const dir of leftovers) rmSync(dir, { recursive: true, force: true })
  const perVolume = (ms: number[]) => ms.map((t) => t / n)
  result.measurements.push(measurement(`batch/${fs.kind}/cli`, `reflink-pool clone -n ${n}, whole process, per volume`, 'ms', perVolume(clone.get('cli')!)))
  result.measurements.push(measurement(`batch/${fs.kind}/library`, `pool.cloneVolumes of ${n}, per volume`, 'ms', perVolume(clone.get('library')!), { detail: { method: [...methods].join('+') } }))
  result.measurements.push(measurement(`batch/${fs.kind}/floor`, `floor group commit of ${n} clones, per volume`, 'ms', perVolume(clone.get('floor')!)))
  result.checks.push(absoluteCheck({ id: `batch/${fs.kind}/cli`, scenario: 'Batch', setting: `${setting}, 1-extent template`, what: `reflink-pool clone -n ${n}: whole CLI process, ms per volume` }, perVolume(clone.get('cli')!), 'ms', { comparison: '<=', limit: 0.5 }))
  result.checks.push(ratioCheck({ id: `batch/${fs.kind}/library`, scenario: 'Batch', setting: `${setting}, 1-extent template`, what: 'pool.cloneVolumes / floor group commit (same syscalls)', note: `method: ${[...methods].join('+')}` }, clone.get('library')!, clone.get('floor')!, { comparison: '<=', limit: 2.0 }))

  // 2. A 1 000-extent template: N clones through the library, the floor's group commit
  // of them (same syscalls), N FICLONEs back to back with and without one syncfs
  // after them, and N x one FICLONE alone. The rows between the last and the first say
  // where the time goes: btrfs defers the extent references a clone adds to the
  // transaction commit that syncfs forces, which one ioctl alone never pays.
  const m = s.batchExtentVolumes
  ctx.log(`batch: ${fs.label}: ${m} clones of a 1 000-extent template`)
  const TPL_1000 = 'vm-templates/tpl-1000/root.img'
  // Every peer of a round clones its own fresh template (same making, same sync), kept with its clones until the round ends.
  let big: { pool: PoolApi; tpl: VolumeApi; dir: string } | null = null
  const freshTemplate = async () => {
    big = await fresh(1000)
  }
  const floorPeer = (id: string, mode: 'batch' | 'clones' | 'clonesync') => ({
    id,
    prepare: freshTemplate,
    run: async () => (await floor.batch(mode, join(big!.dir, TPL_1000), join(big!.dir, `floor-${id}`), m)).ms,
    cleanup: closeAll,
  })
  const extent = await timeInterleaved(
    [
      {
        id: 'library',
        prepare: freshTemplate,
        run: async () => void (await batchApi(big!.pool).cloneVolumes(big!.tpl, targets('x', m))),
        cleanup: closeAll,
      },
      floorPeer('floor', 'batch'),
      floorPeer('clonesync', 'clonesync'),
      floorPeer('clones', 'clones'),
      {
        // N x the median of 5 FICLONEs of the template, each alone into a new file (kept until the round ends).
        id: 'ficlone',
        prepare: freshTemplate,
        run: async () => {
          const samples = []
          for (let i = 0; i < 5; i++) samples.push((await floor.copy('ficlone', join(big!.dir, TPL_1000), join(big!.dir, `ficlone-${i}`))).ms)
          return samples.sort((a, b) => a - b)[2] * m
        },
        cleanup: closeAll,
      },
    ],
    { rounds: s.batchRounds, between: () => syncFs(fs.dir), onSample: (id, r, ms) => ctx.log(`  ${id} round ${r + 1}: ${ms.toFixed(0)} ms`) },
  )
  const extentSetting = `${fsName(fs)}, ${m} volumes, 1 000-extent template`
  result.measurements.push(
    measurement(`batch/${fs.kind}/extents-library`, `pool.cloneVolumes of ${m}, 1 000-extent template`, 'ms', extent.get('library')!),
    measurement(`batch/${fs.kind}/extents-floor`, `floor group commit of ${m} clones of the template (same syscalls)`, 'ms', extent.get('floor')!),
    measurement(`batch/${fs.kind}/extents-clonesync`, `${m} x FICLONE of the template back to back + one syncfs (floor)`, 'ms', extent.get('clonesync')!),
    measurement(`batch/${fs.kind}/extents-clones`, `${m} x FICLONE of the template back to back, no barrier (floor)`, 'ms', extent.get('clones')!),
    measurement(`batch/${fs.kind}/extents-ficlone`, `${m} x one FICLONE of the template (floor, ioctl alone)`, 'ms', extent.get('ficlone')!),
  )
  result.checks.push(
    ratioCheck({ id: `batch/${fs.kind}/extents`, scenario: 'Batch', setting: extentSetting, what: `pool.cloneVolumes / (${m} x one FICLONE)` }, extent.get('library')!, extent.get('ficlone')!, { comparison: '<=', limit: 1.2 }),
    ratioCheck(
      { id: `batch/${fs.kind}/extents-floor`, scenario: 'Batch', setting: extentSetting, what: 'pool.cloneVolumes / floor group commit (same syscalls)', note: 'informational: the library\'s own share' },
      extent.get('library')!,
      extent.get('floor')!,
      null,
    ),
    ratioCheck(
      { id: `batch/${fs.kind}/extents-fs`, scenario: 'Batch', setting: extentSetting, what: `(${m} x FICLONE + syncfs) / (${m} x one FICLONE)`, note: 'informational: the filesystem\'s cost of making the clones durable' },
      extent.get('clonesync')!,
      extent.get('ficlone')!,
      null,
    ),
  )

  // 3. Start + stop of snapshot volumes: batch against one at a time.
  const k = s.batchStartVolumes
  ctx.log(`batch: ${fs.label}: start + stop of ${k} snapshot volumes`)
  const snap = await fresh(1)
  const api = batchApi(snap.pool)
  const vols = (await api.cloneVolumes(snap.tpl, targets('s', k), { mode: 'snapshot' })).volumes
  const startStop = await timeInterleaved(
    [
      {
        id: 'batch',
        run: async () => {
          await api.startVolumes(vols)
          await api.stopVolumes(vols)
        },
      },
      {
        id: 'serial',
        run: async () => {
          for (const v of vols) {
            await v.start()
            await v.stop()
          }
        },
      },
    ],
    { rounds: s.batchRounds, between: () => syncFs(fs.dir) },
  )
  result.measurements.push(measurement(`batch/${fs.kind}/start-stop-batch`, `startVolumes + stopVolumes of ${k}`, 'ms', startStop.get('batch')!))
  result.measurements.push(measurement(`batch/${fs.kind}/start-stop-serial`, `start() + stop() of ${k}, one at a time`, 'ms', startStop.get('serial')!))
  result.checks.push(ratioCheck({ id: `batch/${fs.kind}/start-stop`, scenario: 'Batch', setting: `${fsName(fs)}, ${k} snapshot volumes, 1-extent template`, what: 'start + stop: batch / one at a time' }, startStop.get('batch')!, startStop.get('serial')!, { comparison: '<=', limit: 0.5 }))

  // 4. Event-loop delay during a batch clone of N volumes.
  // The same process idle for as long, right after: the share of the delay that is the machine's (a loaded host delays timers too).
  const p99: number[] = []
  const idle: number[] = []
  for (let r = 0; r < s.batchRounds; r++) {
    const p = await fresh(1)
    await syncFs(fs.dir)
    const h = monitorEventLoopDelay({ resolution: 1 })
    h.enable()
    const t0 = performance.now()
    await batchApi(p.pool).cloneVolumes(p.tpl, targets('e', n))
    const ms = performance.now() - t0
    h.disable()
    p99.push(h.percentile(99) / 1e6)
    const quiet = monitorEventLoopDelay({ resolution: 1 })
    quiet.enable()
    await new Promise((resolve) => setTimeout(resolve, ms))
    quiet.disable()
    idle.push(quiet.percentile(99) / 1e6)
    await closeAll()
  }
  result.measurements.push(measurement(`batch/${fs.kind}/event-loop-idle-p99`, 'event-loop delay p99 of the same process idle for as long', 'ms', idle))
  result.measurements.push(measurement(`batch/${fs.kind}/event-loop-p99`, `event-loop delay p99 during a ${n}-volume batch clone`, 'ms', p99))
  result.checks.push(absoluteCheck({ id: `batch/${fs.kind}/event-loop`, scenario: 'Batch', setting, what: 'event-loop p99 during a batch clone', note: `same process idle: ${idle.map((v) => v.toFixed(1)).join(', ')} ms` }, p99, 'ms', { comparison: '<=', limit: 10 }))

  // 5. Does a precache made at clone time pay for itself? Its cost in the batch, and the first start with and without it.
  const q = Math.min(200, n)
  const pre = await fresh(1)
  const papi = batchApi(pre.pool)
  const precacheCost: Record<string, number[]> = { with: [], without: [], startWith: [], startWithout: [] }
  for (let r = 0; r < s.batchRounds; r++) {
    for (const precache of [true, false]) {
      await syncFs(fs.dir)
      const t0 = performance.now()
      const made = (await papi.cloneVolumes(pre.tpl, targets(`p${r}${precache ? 'y' : 'n'}`, q), { precache })).volumes
      precacheCost[precache ? 'with' : 'without'].push((performance.now() - t0) / q)
      await syncFs(fs.dir)
      const t1 = performance.now()
      for (const v of made) await v.start()
      precacheCost[precache ? 'startWith' : 'startWithout'].push((performance.now() - t1) / q)
    }
  }
  await closeAll()
  result.measurements.push(measurement(`batch/${fs.kind}/precache-clone`, `batch clone with a precache per volume, per volume (${q})`, 'ms', precacheCost.with))
  result.measurements.push(measurement(`batch/${fs.kind}/plain-clone`, `batch clone without precache, per volume (${q})`, 'ms', precacheCost.without))
  result.measurements.push(measurement(`batch/${fs.kind}/start-precache`, 'first start() with the precache (a rename)', 'ms', precacheCost.startWith))
  result.measurements.push(measurement(`batch/${fs.kind}/start-plain`, 'first start() without it (a clone)', 'ms', precacheCost.startWithout))
  result.checks.push(ratioCheck({ id: `batch/${fs.kind}/precache`, scenario: 'Batch', setting: `${fsName(fs)}, ${q} volumes`, what: '(clone + first start) with precache / without', note: 'informational: the precache pays only if this is < 1' }, precacheCost.with.map((c, i) => c + precacheCost.startWith[i]), precacheCost.without.map((c, i) => c + precacheCost.startWithout[i]), null))
  rmSync(base, { recursive: true, force: true })
}

export const batchScenario: Scenario = reflinkScenario({
  id: 'batch',
  title: '7. Batch operations (XFS, btrfs)',
  description:
    'Group commits of many volumes (docs/design.md §7): `reflink-pool clone -n 1000` of a 1-extent template as a whole CLI process; pool.cloneVolumes of 1 000 ' +
    'against the floor binary issuing the same syscalls (locks, temps, FICLONE, syncfs, renames, syncfs, records, fsync); clones of a 1 000-extent template against ' +
    'N x the FICLONE ioctl alone, with the floor\'s group commit of them and N FICLONEs back to back with and without one syncfs to show where the time goes; startVolumes + stopVolumes of snapshot volumes against start()/stop() one at a time; the event-loop p99 during a batch; ' +
    'and what a precache made at clone time costs and saves. Every batch runs in a fresh pool (made untimed); the filesystem is synced before every timed step.',
  runOn: batchOn,
})
