// Scenario 5: event-loop delay (perf_hooks.monitorEventLoopDelay, 1 ms
// resolution) in this process while 16 copies of scenario 3's image run
// concurrently through copyFile; target p99 ≤ 10 ms. Every syscall of a copy
// must run off the JS thread for this to hold.
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fsName, type Scenario } from '../context'
import { sparseImage } from '../fixtures'
import { need } from '../product'
import { absoluteCheck, measurement } from '../results'
import { dropCaches } from '../system'

export const eventLoopScenario: Scenario = {
  id: 'event-loop',
  title: '5. Event-loop delay during 16 concurrent copies',
  description:
    'p99 of perf_hooks.monitorEventLoopDelay (resolution 1 ms) in the process running 16 concurrent copyFile calls of the sparse image (ext4), ' +
    'page cache dropped before each round; the libuv threadpool is left at its default size unless UV_THREADPOOL_SIZE is set.',
  async run(ctx, result) {
    const copyFile = need(ctx.product, 'copyFile')
    const fs = ctx.fs.ext4
    const dir = join(fs.dir, 'bench-sparse')
    const out = join(dir, 'event-loop')
    mkdirSync(out, { recursive: true })
    const size = ctx.settings.sparseImageBytes
    const src = sparseImage(dir, size, ctx.settings.sparseDataFraction)
    const n = ctx.settings.eventLoopCopies
    const p99: number[] = []
    const max: number[] = []
    const wall: number[] = []
    const methods = new Set<string>()
    for (let round = 0; round < ctx.settings.eventLoopRounds; round++) {
      await dropCaches()
      const h = monitorEventLoopDelay({ resolution: 1 })
      const t0 = performance.now()
      h.enable()
      const results = await Promise.all(Array.from({ length: n }, (_, i) => copyFile(src, join(out, `copy-${i}`))))
      h.disable()
      wall.push(performance.now() - t0)
      for (const r of results) methods.add(r.method)
      p99.push(h.percentile(99) / 1e6)
      max.push(h.max / 1e6)
      ctx.log(`event loop round ${round + 1}: p99 ${p99[round].toFixed(2)} ms, max ${max[round].toFixed(2)} ms, ${n} copies in ${wall[round].toFixed(0)} ms`)
      rmSync(out, { recursive: true, force: true })
      mkdirSync(out, { recursive: true })
    }
    const setting = `${fsName(fs)}, ${n} × ${size / 1024 ** 3} GiB copies`
    result.measurements.push(measurement('event-loop/p99', 'event-loop delay p99', 'ms', p99, { detail: { method: [...methods].join('+') } }))
    result.measurements.push(measurement('event-loop/max', 'event-loop delay max', 'ms', max))
    result.measurements.push(measurement('event-loop/wall', `${n} concurrent copies, wall time`, 'ms', wall))
    result.checks.push(absoluteCheck({ id: 'event-loop/p99', scenario: 'Event loop', setting, what: 'p99 event-loop delay', note: `method: ${[...methods].join('+')}` }, p99, 'ms', { comparison: '<=', limit: 10 }))
    rmSync(out, { recursive: true, force: true })
  },
}
