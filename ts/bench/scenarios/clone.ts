// Scenario 1: durable reflink copy of templates with 1, 1 000 and 10 000
// extents on XFS and btrfs. The product's copyFile (temp file, FICLONE, fsync,
// rename, directory fsync, through the binding and the TS layer) against the
// floor doing the same syscalls directly: target ≤ 1.10. The non-durable
// reflink tools are shown for reference.
import { mkdirSync, rmSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { join } from 'node:path'
import { fsName, reflinkScenario, type BenchContext, type BenchFs, type Scenario } from '../context'
import { writeExtentTemplate } from '../fixtures'
import { timeInterleaved } from '../interleave'
import { copyPeer, cpReflinkAlways, Floor, nodeCopyFileFicloneForce, reflinkPackage, type Peer } from '../peers'
import { need, Skip } from '../product'
import { measurement, ratioCheck, type ScenarioResult } from '../results'
import { syncFs } from '../system'

async function cloneOn(ctx: BenchContext, fs: BenchFs, result: ScenarioResult): Promise<void> {
  const copyFile = need(ctx.product, 'copyFile')
  const fileUsage = need(ctx.product, 'fileUsage')
  if (!ctx.floor) throw new Skip(`floor binary unavailable: ${ctx.floorProblem}`)
  const base = join(fs.dir, 'bench-clone')
  mkdirSync(base, { recursive: true })
  const methods = new Set<string>()
  const product: Peer = {
    id: 'copyFile',
    label: 'reflink-pool copyFile',
    durable: true,
    copy: async (src, dst) => {
      methods.add((await copyFile(src, dst)).method)
    },
  }
  const npm = reflinkPackage()
  // A second floor process, timed like the first: their ratio shows how much of a
  // difference this machine's noise alone produces (an A/A control). Its wall time
  // seen from here (request and answer over a pipe) is recorded too: like copyFile,
  // which wakes a threadpool thread and then the JS thread, it includes waking a
  // process, so copyFile / that figure isolates the scheduling cost of the hop.
  const control = await Floor.start()
  let ipcWall: number[] = []
  const controlPeer: Peer = {
    id: 'floor-2',
    label: 'floor, second process (A/A control)',
    durable: true,
    copy: async (src, dst) => {
      const t0 = performance.now()
      const { ms } = await control.copy('clone', src, dst)
      ipcWall.push(performance.now() - t0)
      return ms
    },
  }
  const peers: Peer[] = [product, ctx.floor.peer('clone'), controlPeer, nodeCopyFileFicloneForce, cpReflinkAlways]
  if (typeof npm === 'string') result.skipped = [...(result.skipped ?? []), npm]
  else peers.push(npm)

  try {
    for (const extents of ctx.settings.cloneExtents) {
      const template = join(base, `template-${extents}`)
      const out = join(base, `out-${extents}`)
      mkdirSync(out, { recursive: true })
      ctx.log(`clone: ${fs.label}: writing a ${extents}-extent template`)
      const dataBytes = writeExtentTemplate(template, extents)
      const realExtents = (await fileUsage(template)).extents
      await ctx.settle()
      methods.clear()
      ipcWall = []
      const samples = await timeInterleaved(
        peers.map((p) => copyPeer(p, template, out)),
        { rounds: extents >= 10000 ? ctx.settings.cloneRoundsLarge : ctx.settings.cloneRounds, between: () => syncFs(fs.dir), deferCleanup: true },
      )
      const setting = `${fsName(fs)}, ${extents} extent${extents === 1 ? '' : 's'}`
      for (const p of peers) {
        result.measurements.push(
          measurement(`clone/${fs.kind}/${extents}-extents/${p.id}`, p.label, 'ms', samples.get(p.id)!, {
            durable: p.durable,
            detail: p === product ? { method: [...methods].join('+'), extents: realExtents, dataBytes } : undefined,
          }),
        )
      }
      result.measurements.push(measurement(`clone/${fs.kind}/${extents}-extents/floor-ipc`, 'floor (second process) timed from JS over its pipe', 'ms', ipcWall, { durable: true }))
      const subject = samples.get('copyFile')!
      result.checks.push(
        ratioCheck(
          { id: `clone/${fs.kind}/${extents}/floor`, scenario: 'Clone', setting, what: 'copyFile / floor', note: `method: ${[...methods].join('+')}` },
          subject,
          samples.get('floor')!,
          { comparison: '<=', limit: 1.1 },
        ),
      )
      result.checks.push(
        ratioCheck(
          { id: `clone/${fs.kind}/${extents}/floor-2`, scenario: 'Clone', setting, what: 'floor / floor (A/A control: noise of the machine)' },
          samples.get('floor')!,
          samples.get('floor-2')!,
          null,
        ),
      )
      result.checks.push(
        ratioCheck(
          { id: `clone/${fs.kind}/${extents}/floor-ipc`, scenario: 'Clone', setting, what: 'copyFile / floor timed from JS (pipe round trip: includes waking a process)' },
          subject,
          ipcWall,
          null,
        ),
      )
      for (const p of peers.slice(3)) {
        result.checks.push(
          ratioCheck(
            { id: `clone/${fs.kind}/${extents}/${p.id}`, scenario: 'Clone', setting, what: `copyFile / ${p.label}`, note: 'peer does not fsync' },
            subject,
            samples.get(p.id)!,
            null,
          ),
        )
      }
      rmSync(out, { recursive: true, force: true })
      rmSync(template, { force: true })
    }
  } finally {
    control.stop()
  }
}

export const cloneScenario: Scenario = reflinkScenario({
  id: 'clone',
  title: '1. Durable reflink copy (XFS, btrfs)',
  description:
    'Copy a template with 1, 1 000 and 10 000 extents: reflink-pool `copyFile` (temp file, FICLONE, fsync, rename, directory fsync) ' +
    'against the floor (the same syscalls from a Rust binary, timed inside it), and against fs.copyFile(COPYFILE_FICLONE_FORCE), ' +
    '@reflink/reflink and cp --reflink=always, which do not fsync. The filesystem is synced (syncfs) before every timed copy; the copies are deleted only after the last round (deleting a 10 000-extent clone keeps XFS busy in the background for about a second).',
  runOn: cloneOn,
})
