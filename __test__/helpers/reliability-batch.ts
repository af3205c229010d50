// Crash trials of the batch path (docs/design.md §4, §7): a child process
// clones a template into batches of new volumes (copy mode, some started in the
// same batch, some started by a batch start and stopped: commits), creates
// snapshot volumes in batches and starts/stops them in batches, and removes
// whole earlier batches (running volumes included: force) with removeVolumes,
// until it is cut (XFS shutdown) or SIGKILLed at a seeded moment.
// Then the pool is reopened (recovery runs) and checked from outside:
// - every listed clone holds the template's data (sha256 of its clean image,
//   and of its dirty image when it has one: nobody writes into them);
// - no image exists for a vid that is not listed (no volume half-made);
// - no temp file and no batch or remove intent is left after open;
// - each batch that finished before the cut is listed whole or not at all (its
//   vids carry its size: `b<n>x<size>-<i>`): a remove batch removes all its
//   volumes or, cut before its commit point, none, and touches no other;
// - the pool still works: one more batch clone succeeds and holds the data.
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Prng } from './reliability-prng'
import { hashFile } from './reliability-files'
import { loadApi, type Pool, type PoolApi } from './reliability-api'
import { cut, forkWorker, type CutMode } from './reliability-trials'
import type { ScratchFs } from './scratch-fs'

export const BATCH_TEMPLATE = 'vm-templates/tpl/root'
const KiB = 1024

export interface BatchTrialResult {
  seed: number
  mode: CutMode
  /** Batches the worker finished before the cut. */
  batches: number
  /** Volumes listed after reopening (template excluded). */
  listed: number
  /** Finished steps with no volume listed: remove steps and the batches they removed (0 would mean no removal ran). */
  emptySteps: number
  /** Images of unlisted vids, temps and intents removed by open. */
  removedByOpen: number
  cutAfterMs: number
  violations: string[]
}

/** A template with data in several runs (so the clones share several extents). */
async function setupBatchPool(api: PoolApi, poolDir: string, g: Prng): Promise<string> {
  const pool = await api.ReflinkPool.open({ dirPath: poolDir })
  try {
    const size = 256 * KiB
    const data = Buffer.alloc(size)
    for (let off = 0; off < size; off += 4 * KiB) if (g.bool(0.5)) g.bytes(4 * KiB).copy(data, off)
    const tpl = await pool.createVolume({ vid: BATCH_TEMPLATE, name: 'root', size, saveOnStop: true })
    await tpl.importStream((async function* () { yield data })(), size)
    return hashFile(join(poolDir, `${BATCH_TEMPLATE}.img`))
  } finally {
    await pool.close()
  }
}

/** The worker's loop: batches until killed. Reports each finished batch to the parent. */
export async function runBatchWorkload(pool: Pool, g: Prng, onBatch: (n: number) => void): Promise<never> {
  const tpl = pool.getVolume(BATCH_TEMPLATE)
  /** The vids of each batch made and not removed yet. */
  const made: string[][] = []
  for (let n = 0; ; n++) {
    const barrier = g.bool(0.5) ? 'syncfs' : 'fsync'
    if (made.length && g.bool(0.3)) {
      const [gone] = made.splice(g.int(0, made.length - 1), 1)
      await pool.removeVolumes(gone, { force: true, barrier })
      onBatch(n + 1)
      continue
    }
    const count = g.int(5, 120)
    const targets = Array.from({ length: count }, (_, i) => `appvms/b${n}x${count}-${i}/root`)
    const kind = g.pick(['copy', 'copy', 'start', 'snapshot', 'copy-then-start'] as const)
    if (kind === 'snapshot' || kind === 'copy-then-start') {
      const r = await pool.cloneVolumes(tpl, targets, { mode: kind === 'snapshot' ? 'snapshot' : 'copy', barrier })
      await pool.startVolumes(r.volumes, { barrier })
      if (g.bool(0.5)) await pool.stopVolumes(r.volumes, { barrier })
    } else {
      await pool.cloneVolumes(tpl, targets, { barrier, start: kind === 'start' })
    }
    made.push(targets)
    onBatch(n + 1)
  }
}

/** Files under `dir`, relative, recursively. */
function walk(dir: string, rel = ''): string[] {
  if (!existsSync(join(dir, rel))) return []
  return readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(dir, join(rel, e.name)) : [join(rel, e.name)]))
}

/** Batch number and size from a vid the workload made (`appvms/b<n>x<size>-<i>/root`). */
const BATCH_VID = /^appvms\/b(\d+)x(\d+)-\d+\/root$/

/** Each batch finished before the cut (numbers below `finished`) is listed whole or not at all; returns how many finished steps have no volume listed. */
function checkWholeBatches(listed: Iterable<string>, finished: number, violations: string[]): number {
  const seen = new Map<number, { size: number; listed: number }>()
  for (const vid of listed) {
    const m = BATCH_VID.exec(vid)
    if (!m) continue
    const b = seen.get(Number(m[1])) ?? { size: Number(m[2]), listed: 0 }
    b.listed++
    seen.set(Number(m[1]), b)
  }
  for (const [n, b] of seen) {
    if (n < finished && b.listed !== b.size) violations.push(`batch ${n} finished before the cut but ${b.listed} of its ${b.size} volumes are listed`)
  }
  return [...Array(finished).keys()].filter((n) => !seen.has(n)).length
}

async function checkBatchPool(api: PoolApi, poolDir: string, templateSha: string, finished: number): Promise<{ violations: string[]; listed: number; removedByOpen: number; emptySteps: number }> {
  const violations: string[] = []
  const pool = await api.ReflinkPool.open({ dirPath: poolDir })
  try {
    const removedByOpen = pool.recovery.removed.length
    const vols = (await pool.listVolumes()).filter((v) => v.vid !== BATCH_TEMPLATE)
    const listed = new Set(vols.map((v) => v.vid))
    const emptySteps = checkWholeBatches(listed, finished, violations)
    for (const v of vols) {
      const clean = join(poolDir, `${v.vid}.img`)
      const dirty = join(poolDir, `${v.vid}-dirty.img`)
      if (v.saveOnStop) {
        if (!existsSync(clean)) violations.push(`${v.vid} is listed without its clean image`)
        else if (hashFile(clean) !== templateSha) violations.push(`${v.vid} is listed but its clean image does not hold the template's data`)
      }
      if (existsSync(dirty) && hashFile(dirty) !== templateSha) violations.push(`${v.vid}: its dirty image does not hold the template's data`)
    }
    for (const f of walk(poolDir, 'appvms')) {
      if (f.includes('~')) violations.push(`temp file left after open: ${f}`)
      // A volume's files: V.img, V-dirty.img, V-precache.img and revisions V.img.<n>@<time>Z (a commit made one).
      const vid = f.replace(/(-dirty|-precache)?\.img$/, '').replace(/\.img\.\d+@[\d:T-]+Z$/, '')
      if (!f.includes('~') && !listed.has(vid)) violations.push(`image of an unlisted volume left after open: ${f}`)
    }
    for (const f of walk(poolDir, '.reflink-pool')) {
      if (f.endsWith('.batch') || f.endsWith('.remove') || f.includes('~')) violations.push(`left after open: ${f}`)
    }
    // The pool works: one more batch.
    const more = await pool.cloneVolumes(BATCH_TEMPLATE, ['appvms/after-crash/root'])
    if (hashFile(join(poolDir, 'appvms/after-crash/root.img')) !== templateSha) violations.push('a batch after the crash does not hold the data')
    if (more.volumes.length !== 1) violations.push('a batch after the crash made no volume')
    return { violations, listed: listed.size, removedByOpen, emptySteps }
  } finally {
    await pool.close()
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function runBatchTrial(fs: ScratchFs, mode: CutMode, seed: number): Promise<BatchTrialResult> {
  const api = loadApi()
  const g = new Prng(seed)
  const poolDir = join(fs.dir, `batch-${seed}`)
  const templateSha = await setupBatchPool(api, poolDir, g.fork(1))
  const worker = forkWorker({ mode: 'batch', poolDir, seed: g.fork(2).seed })
  await worker.ready
  const delay = g.fork(3).int(0, 1500)
  await sleep(delay)
  await cut(fs, mode, worker)
  const batches = Math.max(0, ...worker.messages.map((m) => m.progress ?? 0))
  const errors = worker.messages.filter((m) => m.error).map((m) => `workload failed: ${m.error}`)
  const check = await checkBatchPool(api, poolDir, templateSha, batches)
  const violations = [...check.violations, ...(mode === 'sigkill' ? errors : [])]
  if (violations.length === 0) rmSync(poolDir, { recursive: true, force: true })
  return { seed, mode, batches, listed: check.listed, emptySteps: check.emptySteps, removedByOpen: check.removedByOpen, cutAfterMs: delay, violations }
}

export function summarizeBatch(results: BatchTrialResult[]) {
  return {
    trials: results.length,
    batchesBeforeCut: results.reduce((s, r) => s + r.batches, 0),
    volumesListed: results.reduce((s, r) => s + r.listed, 0),
    stepsWithoutVolumes: results.reduce((s, r) => s + r.emptySteps, 0),
    removedByOpen: results.reduce((s, r) => s + r.removedByOpen, 0),
    violations: results.reduce((s, r) => s + r.violations.length, 0),
    failedSeeds: results.filter((r) => r.violations.length).map((r) => r.seed),
  }
}
