// Scenario 4: peak RSS of a process copying the sparse image, at 1 GiB and
// 4 GiB (target ≤ 100 MiB, independent of size). Measured in a child process
// from its own VmHWM, next to the VmHWM of the same child that only loads the
// package, so the copy's own share is visible.
import { execFile } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fsName, type BenchContext, type Scenario } from '../context'
import { sparseImage } from '../fixtures'
import { need } from '../product'
import { absoluteCheck, measurement } from '../results'
import { dropCaches } from '../system'

const execFileP = promisify(execFile)
const MiB = 1024 * 1024

export interface ChildReport {
  peakRssBytes: number
  method: string | null
  bytes: number | null
}

/** Run `rss-child` with `args` (see its modes) and return what it printed. */
export async function rssChild(ctx: BenchContext, args: string[]): Promise<ChildReport> {
  const [bin, ...rest] = ctx.child.argv('rss-child', args)
  const { stdout } = await execFileP(bin, rest, { maxBuffer: 1024 * 1024 })
  return JSON.parse(stdout.trim().split('\n').pop()!) as ChildReport
}

export const memoryScenario: Scenario = {
  id: 'memory',
  title: '4. Memory: peak RSS while copying',
  description:
    'Peak resident set (VmHWM) of a Node process that loads reflink-pool and copies the sparse image with copyFile (ext4, no reflink), ' +
    'at 1 GiB and 4 GiB; the idle figure is the same process loading the package without copying.',
  async run(ctx, result) {
    need(ctx.product, 'copyFile')
    const fs = ctx.fs.ext4
    const dir = join(fs.dir, 'bench-sparse')
    mkdirSync(dir, { recursive: true })
    const idle = await rssChild(ctx, ['idle'])
    for (const size of ctx.settings.memoryImageBytes) {
      const gib = size / 1024 ** 3
      ctx.log(`memory: ${gib} GiB image on ${fs.label}`)
      const src = sparseImage(dir, size, ctx.settings.sparseDataFraction)
      const peaks: number[] = []
      let method = ''
      for (let i = 0; i < ctx.settings.memoryRuns; i++) {
        const dst = join(dir, `rss-copy-${i}`)
        await dropCaches()
        const r = await rssChild(ctx, ['copy', src, dst])
        rmSync(dst, { force: true })
        peaks.push(r.peakRssBytes / MiB)
        method = r.method ?? ''
      }
      result.measurements.push(
        measurement(`memory/${gib}GiB`, `copyFile in a child process (${ctx.child.loader})`, 'MiB', peaks, {
          detail: { method, idlePeakMiB: Number((idle.peakRssBytes / MiB).toFixed(1)), loader: ctx.child.loader },
        }),
      )
      result.checks.push(
        absoluteCheck(
          { id: `memory/${gib}GiB`, scenario: 'Memory', setting: `${fsName(fs)}, ${gib} GiB image`, what: 'peak RSS of the copying process', note: `idle process: ${(idle.peakRssBytes / MiB).toFixed(1)} MiB` },
          peaks,
          'MiB',
          { comparison: '<=', limit: 100 },
        ),
      )
    }
  },
}
