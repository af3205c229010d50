// Child-process entry of the crash and concurrency trials. Run with
// `node --import tsx reliability-worker.ts '<json args>'` through
// `forkWorker`. It opens the pool, tells the parent it is ready (IPC), and runs
// its seeded workload until done or killed. Its journal is the only thing the
// parent trusts afterwards.
import { Prng } from './reliability-prng'
import { Journal } from './reliability-journal'
import { loadApi, codeOf } from './reliability-api'
import { openCrashPool, runCrashWorkload } from './reliability-workload'
import { runConcurrencyWorker, type ConcurrencyArgs } from './reliability-concurrency'
import { runBatchWorkload } from './reliability-batch'

export type WorkerArgs =
  | { mode: 'crash'; poolDir: string; journal: string; seed: number; ops: number }
  | { mode: 'batch'; poolDir: string; seed: number }
  | ({ mode: 'concurrency' } & ConcurrencyArgs)

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]) as WorkerArgs
  const api = loadApi()
  if (args.mode === 'crash') {
    const pool = await openCrashPool(api, args.poolDir)
    process.send?.({ ready: true })
    const done = await runCrashWorkload(pool, args.poolDir, new Prng(args.seed), new Journal(args.journal), args.ops, (i) => {
      if (i % 8 === 0) process.send?.({ progress: i })
    })
    process.send?.({ done })
    // Stay alive (pool open) until the parent cuts power or kills us.
    await new Promise(() => {})
  } else if (args.mode === 'batch') {
    const pool = await api.ReflinkPool.open({ dirPath: args.poolDir })
    process.send?.({ ready: true })
    await runBatchWorkload(pool, new Prng(args.seed), (n) => process.send?.({ progress: n }))
  } else {
    const result = await runConcurrencyWorker(api, args, () => process.send?.({ ready: true }))
    process.send?.({ result })
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.send?.({ error: `${codeOf(e)}: ${(e as Error)?.message}` }, () => process.exit(3))
  },
)
