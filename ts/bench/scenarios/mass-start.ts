// Scenario 2: start() then stop() of 1 000 snapshot volumes of one
// 1 000-extent template, serially and with 8 in flight; target: the rate with
// 8 in flight ≥ 1.5 × the serial rate. Run on XFS and on btrfs, each next to
// the kernel's own ceiling for this workload: the floor binary cloning the
// start+stop syscalls (link, clone, unlink, with their fsyncs) on the same
// template from 8 processes at once against from one.
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fsName, reflinkFilesystems, type BenchContext, type BenchFs, type Scenario } from '../context'
import { timeInterleaved } from '../interleave'
import { Floor } from '../peers'
import { measurement, ratioCheck, type ScenarioResult } from '../results'
import { syncFs } from '../system'
import { inParallel, openPool, snapshotVolumes, templateVolume } from './pool-fixture'

/**
 * The syscalls of `count` snapshot start+stop cycles issued by the floor from
 * `procs` processes at once: link the template image into the VM directory,
 * clone it to the dirty image, unlink both, each with its fsyncs. No locks, no
 * stat calls, no JS: what the kernel allows.
 */
async function floorCycles(floors: Floor[], procs: number, template: string, outDir: string, count: number): Promise<void> {
  await Promise.all(
    floors.slice(0, procs).map(async (f, p) => {
      for (let i = p; i < count; i += procs) {
        const clean = join(outDir, `vm-${i}`, 'root.img')
        const dirty = join(outDir, `vm-${i}`, 'root-dirty.img')
        await f.copy('link', template, clean)
        await f.copy('clone', clean, dirty)
        await f.copy('unlink', dirty)
        await f.copy('unlink', clean)
      }
    }),
  )
}

async function massStartOn(ctx: BenchContext, fs: BenchFs, result: ScenarioResult): Promise<void> {
  const n = ctx.settings.massStartVolumes
  const inFlight = ctx.settings.massStartInFlight
  const setting = `${fsName(fs)}, ${n} snapshot volumes`
  const pool = await openPool(ctx, 'bench-mass-start', fs)
  const floors: Floor[] = []
  try {
    ctx.log(`mass start: ${fs.label}: template and ${n} snapshot volumes`)
    const tpl = await templateVolume(pool, 'template', 1000)
    const vols = await snapshotVolumes(pool, tpl, 'vm', n)
    await ctx.settle()
    const cycle = async (i: number) => {
      await vols[i].start()
      await vols[i].stop()
    }
    const samples = await timeInterleaved(
      [
        { id: 'serial', run: () => inParallel(n, 1, cycle) },
        { id: 'parallel', run: () => inParallel(n, inFlight, cycle) },
      ],
      { rounds: ctx.settings.massStartRounds, between: () => syncFs(fs.dir), onSample: (id, r, ms) => ctx.log(`  mass start ${fs.kind} round ${r + 1}: ${id} ${((n * 1000) / ms).toFixed(0)} starts/s`) },
    )
    const rate = (ms: number[]) => ms.map((t) => (n * 1000) / t)
    result.measurements.push(measurement(`mass-start/${fs.kind}/serial`, 'start+stop, 1 in flight', 'starts/s', rate(samples.get('serial')!)))
    result.measurements.push(measurement(`mass-start/${fs.kind}/parallel`, `start+stop, ${inFlight} in flight`, 'starts/s', rate(samples.get('parallel')!)))
    // rate(parallel) / rate(serial) = time(serial) / time(parallel), per round
    result.checks.push(
      ratioCheck(
        { id: `mass-start/${fs.kind}/speedup`, scenario: 'Mass start', setting, what: `starts/s with ${inFlight} in flight / serial` },
        samples.get('serial')!,
        samples.get('parallel')!,
        { comparison: '>=', limit: 1.5 },
      ),
    )

    if (!ctx.floor) return
    // The same cycles on the same template image, from the floor: what the kernel allows in parallel.
    const template = join(fs.dir, 'bench-mass-start', 'vm-templates', 'template', 'root.img')
    const out = join(fs.dir, 'bench-mass-start', 'floor-out')
    for (let i = 0; i < inFlight; i++) floors.push(await Floor.start())
    await ctx.settle()
    const kernel = await timeInterleaved(
      [1, inFlight].map((procs) => ({
        id: String(procs),
        prepare: () => {
          for (let i = 0; i < n; i++) mkdirSync(join(out, `vm-${i}`), { recursive: true })
        },
        run: () => floorCycles(floors, procs, template, out, n),
        cleanup: () => rmSync(out, { recursive: true, force: true }),
      })),
      { rounds: ctx.settings.massStartRounds, between: () => syncFs(fs.dir) },
    )
    result.measurements.push(measurement(`mass-start/${fs.kind}/floor-serial`, 'floor start+stop syscalls, 1 process', 'starts/s', rate(kernel.get('1')!)))
    result.measurements.push(measurement(`mass-start/${fs.kind}/floor-parallel`, `floor start+stop syscalls, ${inFlight} processes`, 'starts/s', rate(kernel.get(String(inFlight))!)))
    result.checks.push(
      ratioCheck(
        { id: `mass-start/${fs.kind}/floor-speedup`, scenario: 'Mass start', setting, what: `kernel ceiling: floor start+stop syscalls, ${inFlight} processes / 1` },
        kernel.get('1')!,
        kernel.get(String(inFlight))!,
        null,
      ),
    )
  } finally {
    for (const f of floors) f.stop()
    await pool.close()
  }
}

export const massStartScenario: Scenario = {
  id: 'mass-start',
  title: '2. Mass start of snapshot volumes (XFS, btrfs)',
  description:
    'start() then stop() of every snapshot volume of one 1 000-extent template (each start hardlinks the template image and reflinks it ' +
    'to the dirty image; each stop removes both), one at a time and with 8 in flight, passes interleaved. The kernel ceiling row times the ' +
    'same syscalls (link + dir fsync, durable clone, two unlinks + dir fsync) issued by the floor binary from 8 processes at once against from one.',
  async run(ctx, result) {
    for (const fs of reflinkFilesystems(ctx)) await massStartOn(ctx, fs, result)
  },
}
