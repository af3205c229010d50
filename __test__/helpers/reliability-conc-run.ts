// Parent side of the concurrency suites: N worker processes on one shared
// pool, or many concurrent promises on one volume in this process.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadApi } from './reliability-api'
import { forkWorker } from './reliability-trials'
import { CONC_VOLUMES, checkConcPool, openConcPool, runOps, setupConcPool, type ConcurrencyResult } from './reliability-concurrency'

export interface ConcFigures {
  processes: number
  operations: number
  kinds: Record<string, number>
  refusals: Record<string, number>
  violations: number
  details: string[]
}

function figures(processes: number, results: ConcurrencyResult[], after: string[]): ConcFigures {
  const refusals: Record<string, number> = {}
  const kinds: Record<string, number> = {}
  for (const r of results) for (const [k, v] of Object.entries(r.errors)) refusals[k] = (refusals[k] ?? 0) + v
  for (const r of results) for (const [k, v] of Object.entries(r.kinds)) kinds[k] = (kinds[k] ?? 0) + v
  const details = [...results.flatMap((r) => r.violations), ...after]
  return { processes, operations: results.reduce((s, r) => s + r.ops, 0), kinds, refusals, violations: details.length, details }
}

/** `processes` child processes doing `ops` seeded random operations each on the 8 shared volumes. */
export async function runMultiProcess(poolDir: string, processes: number, ops: number, seed: number): Promise<ConcFigures> {
  const api = loadApi()
  const logs = mkdtempSync(join(tmpdir(), 'reliability-tags-'))
  await setupConcPool(api, poolDir)
  const workers = Array.from({ length: processes }, (_, proc) =>
    forkWorker({ mode: 'concurrency', poolDir, seed: (seed + proc * 7919) >>> 0, proc, ops, tagLog: join(logs, `p${proc}.tags`) }))
  const results: ConcurrencyResult[] = []
  const crashed: string[] = []
  await Promise.all(workers.map(async (w, proc) => {
    const code = await w.exited
    const res = w.messages.find((m) => m.result)?.result
    const err = w.messages.find((m) => m.error)?.error
    if (res) results.push(res)
    else crashed.push(`process ${proc} exited ${code} without a result${err ? `: ${err}` : ''}`)
  }))
  const after = await checkConcPool(api, poolDir, workers.map((_, proc) => join(logs, `p${proc}.tags`)))
  rmSync(logs, { recursive: true, force: true })
  return figures(processes, results, [...crashed, ...after])
}

/** `ops` concurrent random operations (one Promise.all) on one save-on-stop volume, in this process. */
export async function runInProcess(poolDir: string, ops: number, seed: number): Promise<ConcFigures> {
  const api = loadApi()
  const logs = mkdtempSync(join(tmpdir(), 'reliability-tags-'))
  const tagLog = join(logs, 'inproc.tags')
  await setupConcPool(api, poolDir)
  const vid = CONC_VOLUMES[4].vid
  const pool = await openConcPool(api, poolDir)
  let res: ConcurrencyResult
  try {
    res = await runOps(pool, { poolDir, seed, proc: 0, ops, tagLog }, () => vid, true)
  } finally {
    await pool.close()
  }
  const after = await checkConcPool(api, poolDir, [tagLog])
  rmSync(logs, { recursive: true, force: true })
  return figures(1, [res], after)
}
