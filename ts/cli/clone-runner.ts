// One template to many volumes, concurrently with a bounded limit. Used by
// `reflink-pool clone` and by the demo, so both measure clones the same way.
import { UsageError } from './errors'
import { forEachBounded } from '../bounded'

export { forEachBounded }
import type { Pool, Volume } from './pool-access'

export type CloneMode = 'copy' | 'snapshot'

export interface CloneOptions {
  /** copy: save-on-stop volumes holding a reflinked copy of the template's data now;
   *  snapshot: snap-on-start volumes of the template (the reflink happens at each start). */
  mode: CloneMode
  /** Clones in flight at once. */
  concurrency: number
  signal?: AbortSignal
  onCloned?: (done: number, total: number) => void
}

export interface CloneResult {
  vids: string[]
  /** Wall time of the whole batch, ms. */
  totalMs: number
  /** Time of each clone (create + data), ms, in `vids` order. */
  perCloneMs: number[]
  /** How the data was copied, e.g. { reflink: 100 } (empty in snapshot mode: nothing is copied yet). */
  methods: Record<string, number>
}

/** Expand a target pattern: 'appvms/web-{n}/root' with count 3 -> web-1, web-2, web-3. */
export function expandTargets(targets: string[], count: number | undefined): string[] {
  if (count === undefined) return targets
  const out: string[] = []
  for (const t of targets) {
    if (!t.includes('{n}')) throw new UsageError(`--count needs a target with {n} in it, got "${t}"`)
    const width = String(count).length
    for (let i = 1; i <= count; i++) out.push(t.replaceAll('{n}', String(i).padStart(width, '0')))
  }
  return out
}

export async function cloneVolumes(pool: Pool, template: Volume, vids: string[], opts: CloneOptions): Promise<CloneResult> {
  const size = await template.size()
  const started = performance.now()
  const methods: Record<string, number> = {}
  const perCloneMs = await forEachBounded(
    vids,
    opts.concurrency,
    async (vid) => {
      const name = vid.split('/').pop() ?? vid
      if (opts.mode === 'snapshot') {
        await pool.createVolume({ vid, name, size, rw: true, saveOnStop: false, snapOnStart: true, source: template.vid })
        return
      }
      const v = await pool.createVolume({ vid, name, size, rw: true, saveOnStop: true, snapOnStart: false })
      const report = await v.importVolume(template)
      if (report) methods[report.method] = (methods[report.method] ?? 0) + 1
    },
    { signal: opts.signal, onDone: opts.onCloned },
  )
  return { vids, totalMs: performance.now() - started, perCloneMs, methods }
}
