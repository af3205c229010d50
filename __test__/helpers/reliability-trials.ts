// One crash trial, parent side: set up a fresh pool on the scratch XFS, start
// the workload in a child process, cut it at a seeded moment (power cut with
// the XFS shutdown ioctl, or SIGKILL), remount if the power was cut, and run
// the invariant checker. Everything a failing trial needs to be replayed is
// its seed (RELIABILITY_SEED=<seed>); its journal is kept for inspection.
import { fork, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Prng } from './reliability-prng'
import { Journal } from './reliability-journal'
import { loadApi } from './reliability-api'
import { setupCrashPool } from './reliability-workload'
import { checkCrashPool } from './reliability-invariants'
import type { ScratchFs } from './scratch-fs'
import type { WorkerArgs } from './reliability-worker'
import type { ConcurrencyResult } from './reliability-concurrency'

export type CutMode = 'powercut' | 'sigkill'

export interface TrialResult {
  seed: number
  mode: CutMode
  /** Operations the workload completed before the cut. */
  ops: number
  /** The operation in flight at the cut, if any. */
  inflight: string | null
  dirtyAfterCrash: number
  leftoversAfterOpen: number
  cutAfterMs: number
  violations: string[]
  journal: string
}

const WORKER = join(__dirname, 'reliability-worker.ts')
const SBIN = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`

/** What a worker tells its parent over IPC. */
export interface WorkerMessage {
  ready?: boolean
  progress?: number
  done?: number
  result?: ConcurrencyResult
  error?: string
}

/** Start a worker child process with its arguments; resolves once it says it is ready. */
export function forkWorker(args: WorkerArgs): { child: ChildProcess; ready: Promise<void>; exited: Promise<number | null>; messages: WorkerMessage[] } {
  const child = fork(WORKER, [JSON.stringify(args)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const messages: WorkerMessage[] = []
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: WorkerMessage) => {
      messages.push(m)
      if (m?.ready) resolve()
      if (m?.error) reject(new Error(`worker failed: ${m.error}`))
    })
    exited.then((code) => reject(new Error(`worker exited (${code}) before it was ready`)))
  })
  return { child, ready, exited, messages }
}

function sh(bin: string, args: string[]): void {
  execFileSync(bin, args, { env: { ...process.env, PATH: SBIN }, stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Cut power to the XFS at `fs.dir`: shutdown without flushing the log, as a power loss would. */
export function powerCut(fs: ScratchFs): void {
  sh('xfs_io', ['-x', '-c', 'shutdown', fs.dir])
}

/** Unmount and mount the scratch filesystem again (log recovery runs on mount). */
export function remount(fs: ScratchFs): void {
  for (let i = 0; ; i++) {
    try {
      sh('umount', [fs.dir])
      break
    } catch (e) {
      if (i >= 25) throw e
      execFileSync('sleep', ['0.2'])
    }
  }
  sh('mount', [fs.device, fs.dir])
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Cut the worker: power (XFS shutdown, then the worker is made sure to be gone, then remount) or SIGKILL. */
export async function cut(fs: ScratchFs, mode: CutMode, worker: { child: ChildProcess; exited: Promise<number | null> }): Promise<void> {
  if (mode === 'powercut') {
    powerCut(fs)
    // The workload now fails on its own (EIO); give it a moment, then make sure it is gone.
    const ended = await Promise.race([worker.exited.then(() => true), sleep(1500).then(() => false)])
    if (!ended) worker.child.kill('SIGKILL')
  } else {
    worker.child.kill('SIGKILL')
  }
  await worker.exited
  if (mode === 'powercut') remount(fs)
}

export async function runCrashTrial(fs: ScratchFs, mode: CutMode, seed: number, opts: { ops?: number; maxDelayMs?: number; journalDir?: string } = {}): Promise<TrialResult> {
  const api = loadApi()
  const g = new Prng(seed)
  const poolDir = join(fs.dir, `trial-${seed}`)
  const journalDir = opts.journalDir ?? mkdtempSync(join(tmpdir(), 'reliability-journal-'))
  const journal = join(journalDir, `${mode}-${seed}.jsonl`)
  rmSync(journal, { force: true })
  await setupCrashPool(api, poolDir, g.fork(1), new Journal(journal))

  const worker = forkWorker({ mode: 'crash', poolDir, journal, seed: g.fork(2).seed, ops: opts.ops ?? 400 })
  await worker.ready
  const delay = g.fork(3).int(0, opts.maxDelayMs ?? 800)
  await sleep(delay)
  const cutAt = Date.now()
  await cut(fs, mode, worker)

  const check = await checkCrashPool(api, poolDir, journal, seed)
  const violations = [...check.violations]
  // Before a power cut nothing may fail; after SIGKILL nothing failed at all.
  for (const f of check.replay.failures) {
    if (mode === 'sigkill' || f.t < cutAt) violations.push(`${f.op} on ${f.vid} failed with ${f.code} before the ${mode}`)
  }
  for (const m of worker.messages) {
    if (m?.error && mode === 'sigkill') violations.push(`workload failed: ${m.error}`)
  }
  // A passing trial leaves nothing behind; a failing one keeps its pool and journal for inspection.
  if (violations.length === 0) {
    rmSync(poolDir, { recursive: true, force: true })
    if (!opts.journalDir) rmSync(journalDir, { recursive: true, force: true })
  }
  return {
    seed,
    mode,
    ops: check.replay.completed,
    inflight: check.replay.lastInflight,
    dirtyAfterCrash: check.dirtyAfterCrash,
    leftoversAfterOpen: check.leftoversAfterOpen,
    cutAfterMs: delay,
    violations,
    journal,
  }
}

/** Figures of a batch of trials, as the suites print them and the full run stores them. */
export function summarize(results: TrialResult[]) {
  const inflight: Record<string, number> = {}
  for (const r of results) if (r.inflight) inflight[r.inflight] = (inflight[r.inflight] ?? 0) + 1
  return {
    trials: results.length,
    operations: results.reduce((s, r) => s + r.ops, 0),
    cutMidOperation: results.filter((r) => r.inflight).length,
    inflightAtCut: inflight,
    dirtyAfterCrash: results.reduce((s, r) => s + r.dirtyAfterCrash, 0),
    leftoversAfterOpen: results.reduce((s, r) => s + r.leftoversAfterOpen, 0),
    violations: results.reduce((s, r) => s + r.violations.length, 0),
    failedSeeds: results.filter((r) => r.violations.length).map((r) => r.seed),
  }
}
