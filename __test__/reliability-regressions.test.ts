// Regressions found by the reliability suites, each named after the trial that
// found it, replayed deterministically: a child process opens the pool and is
// SIGKILLed (its session stays behind, as after a power cut), the leftover the
// trial saw is planted, and the next ReflinkPool.open must remove it.
// (The third bug those trials found, an import marker left empty by a power
// cut and read as a live owner, depends on what reached the disk; the fix
// writes markers durably, and the power-cut suite is its regression check.)
import test from 'ava'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fsSuite } from './helpers/scratch-fs'
import { loadApi } from './helpers/reliability-api'
import { forkWorker } from './helpers/reliability-trials'
import { setupCrashPool, openCrashPool } from './helpers/reliability-workload'
import { Journal } from './helpers/reliability-journal'
import { Prng } from './helpers/reliability-prng'
import { tempFiles } from './helpers/reliability-files'

const xfs = fsSuite(test, 'xfs', { sizeMiB: 320 })

/** A pool whose last user died with it open; `plant` then adds what that user's crash left. */
async function crashedPool(name: string, plant: (dir: string) => void): Promise<string> {
  const dir = join(xfs.fs().dir, name)
  const journal = join(xfs.fs().dir, `${name}.jsonl`)
  await setupCrashPool(loadApi(), dir, new Prng(1), new Journal(journal))
  const w = forkWorker({ mode: 'crash', poolDir: dir, journal, seed: 1, ops: 0 })
  await w.ready
  w.child.kill('SIGKILL')
  await w.exited
  plant(dir)
  return dir
}

xfs.test.serial('regression (power-cut seed 66929086): a volume record temp file left by a crash is removed at open', async (t) => {
  const leftover = '.reflink-pool/volumes/appvms%2Fa%2Fprivate.json~864a6daeca809e7e'
  const dir = await crashedPool('record-temp', (d) => writeFileSync(join(d, leftover), '{"vid":'))
  const pool = await openCrashPool(loadApi(), dir)
  await pool.close()
  t.false(existsSync(join(dir, leftover)))
  t.deepEqual(tempFiles(dir), [])
})

xfs.test.serial('regression (power-cut seed 3588975902): a half-written import whose importer died is removed at open', async (t) => {
  const leftover = 'vm-templates/tpl/root-import.img'
  const dir = await crashedPool('import-left', (d) => writeFileSync(join(d, leftover), Buffer.alloc(8192, 1)))
  const pool = await openCrashPool(loadApi(), dir)
  await pool.close()
  t.false(existsSync(join(dir, leftover)))
})
