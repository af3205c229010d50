// Scenario 2: start() then stop() of 1 000 snapshot volumes of one
// 1 000-extent template on XFS, serially and with 8 in flight; target: the
// rate with 8 in flight ≥ 1.5 × the serial rate.
import { fsName, type Scenario } from '../context'
import { timeInterleaved } from '../interleave'
import { measurement, ratioCheck } from '../results'
import { syncFs } from '../system'
import { inParallel, openPool, snapshotVolumes, templateVolume } from './pool-fixture'

export const massStartScenario: Scenario = {
  id: 'mass-start',
  title: '2. Mass start of snapshot volumes (XFS)',
  description:
    'start() then stop() of every snapshot volume of one 1 000-extent template (each start hardlinks the template image and reflinks it ' +
    'to the dirty image; each stop removes both), one at a time and with 8 in flight, passes interleaved.',
  async run(ctx, result) {
    const n = ctx.settings.massStartVolumes
    const inFlight = ctx.settings.massStartInFlight
    const pool = await openPool(ctx, 'bench-mass-start')
    try {
      ctx.log(`mass start: template and ${n} snapshot volumes`)
      const tpl = await templateVolume(pool, 'template', 1000)
      const vols = await snapshotVolumes(pool, tpl, 'vm', n)
      await syncFs(ctx.fs.xfs.dir)
      const cycle = async (i: number) => {
        await vols[i].start()
        await vols[i].stop()
      }
      const samples = await timeInterleaved(
        [
          { id: 'serial', run: () => inParallel(n, 1, cycle) },
          { id: 'parallel', run: () => inParallel(n, inFlight, cycle) },
        ],
        { rounds: ctx.settings.massStartRounds, between: () => syncFs(ctx.fs.xfs.dir), onSample: (id, r, ms) => ctx.log(`  mass start round ${r + 1}: ${id} ${((n * 1000) / ms).toFixed(0)} starts/s`) },
      )
      const rate = (ms: number[]) => ms.map((t) => (n * 1000) / t)
      result.measurements.push(measurement('mass-start/serial', 'start+stop, 1 in flight', 'starts/s', rate(samples.get('serial')!)))
      result.measurements.push(measurement('mass-start/parallel', `start+stop, ${inFlight} in flight`, 'starts/s', rate(samples.get('parallel')!)))
      // rate(parallel) / rate(serial) = time(serial) / time(parallel), per round
      result.checks.push(
        ratioCheck(
          { id: 'mass-start/speedup', scenario: 'Mass start', setting: `${fsName(ctx.fs.xfs)}, ${n} snapshot volumes`, what: `starts/s with ${inFlight} in flight / serial` },
          samples.get('serial')!,
          samples.get('parallel')!,
          { comparison: '>=', limit: 1.5 },
        ),
      )
    } finally {
      await pool.close()
    }
  },
}
