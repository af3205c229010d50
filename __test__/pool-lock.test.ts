// The pool's volume locks (native VolumeLock, flock(2); ts/store/lock.ts): waits
// never occupy the libuv threadpool, a killed holder's lock is handed over by
// the kernel, release removes the file, planted paths are refused.
import test from 'ava'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, promises as fsp, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { native } from '../ts/binding'
import { unwrap } from '../ts/outcome'
import { lockAbandoned, Locks } from '../ts/store/lock'
import { PoolFiles } from '../ts/store/files'
import { within } from './helpers/within'

const scratch = () => mkdtempSync(join(tmpdir(), 'pool-lock-'))

/** The lock file `path` named through its directory's handle, as the pool names it. */
async function lockOf(path: string): Promise<InstanceType<typeof native.VolumeLock>> {
  return (await PoolFiles.open(dirname(path), false)).lockFile(path)
}

/** Whether `p` is still pending after `ms`. */
async function pendingAfter(p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false
  p.then(
    () => (settled = true),
    () => (settled = true),
  )
  await new Promise((r) => setTimeout(r, ms))
  return !settled
}

test('lock waits do not occupy the libuv threadpool (more waiters than its 4 threads)', async (t) => {
  const dir = scratch()
  const paths = Array.from({ length: 6 }, (_, i) => join(dir, `v${i}.lock`))
  const holders = await Promise.all(paths.map(lockOf))
  for (const h of holders) await unwrap(h.acquire())
  const waiters = await Promise.all(paths.map(lockOf))
  const waits = waiters.map((w) => unwrap(w.acquire()))
  t.true(await pendingAfter(Promise.race(waits), 200), 'no waiter gets a held lock')
  // A threadpool task (fs read) still runs while six lock waits are pending.
  await within(fsp.readFile(__filename), 5000, 'readFile behind six lock waits')
  await within(unwrap(native.fsStats(dir)), 5000, 'a native threadpool task behind six lock waits')
  for (const h of holders) t.true(await unwrap(h.release()))
  await within(Promise.all(waits), 5000, 'waiters woken by release')
  for (const p of paths) t.true(existsSync(p), 'each waiter holds the file at the path')
  for (const w of waiters) t.true(await unwrap(w.release()))
  t.deepEqual(await fsp.readdir(dir), [], 'release removes every lock file')
})

test('a lock held by another fd is not free; a lock file nobody holds is abandoned (and removed)', async (t) => {
  const dir = scratch()
  const path = join(dir, 'v.lock')
  const files = await PoolFiles.open(dir, false)
  const held = files.lockFile(path)
  await unwrap(held.acquire())
  t.false(await unwrap(files.lockFile(path).tryAcquire()))
  t.false(await lockAbandoned(files, path), 'a held lock is not abandoned')
  await t.throwsAsync(unwrap(held.acquire()), { code: 'ERR_INVALID_ARG_VALUE' }, 'one object holds one lock once')
  t.true(await unwrap(held.release()))
  t.false(await unwrap(held.release()), 'a second release is a no-op')
  t.false(existsSync(path))
  writeFileSync(path, '', { mode: 0o600 }) // as a killed holder leaves it
  t.true(await lockAbandoned(files, path))
  t.false(existsSync(path), 'probing took the lock and removed its file')
})

test('a lock file planted as a symlink is refused without following it', async (t) => {
  const dir = scratch()
  const path = join(dir, 'v.lock')
  symlinkSync(join(dir, 'victim'), path)
  const err = await t.throwsAsync(unwrap((await lockOf(path)).acquire()), { code: 'ERR_UNSAFE_PATH' })
  t.is((err as { path?: string } | undefined)?.path, path)
  await t.throwsAsync(new Locks(await PoolFiles.open(dir, false), dir).with('v.lock', async () => t.fail('ran without the lock')), { code: 'ERR_UNSAFE_PATH' })
  t.false(existsSync(join(dir, 'victim')))
})

test('a waiter gets the lock of a holder process killed by SIGKILL (the kernel releases it)', async (t) => {
  const dir = scratch()
  const path = join(dir, 'v.lock')
  const script = `
    const native = require(${JSON.stringify(resolve(__dirname, '../native/index.js'))})
    const dir = new native.PoolDir(${JSON.stringify(dir)})
    dir.open(false).then(() => new native.VolumeLock(dir, 'v.lock').acquire()).then((o) => { if (o.status !== 'ok') throw new Error(o.error.message); console.log('LOCKED'); setInterval(() => {}, 1000) })`
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  await within(
    new Promise<void>((res, rej) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('LOCKED') && res())
      child.on('exit', (code) => rej(new Error(`child exited (${code}) before locking`)))
    }),
    10_000,
    'child takes the lock',
  )
  const mine = await lockOf(path)
  const wait = unwrap(mine.acquire())
  t.true(await pendingAfter(wait, 300), 'the child holds the lock')
  child.kill('SIGKILL')
  await within(wait, 5000, 'lock handed over after the holder was killed')
  t.true(existsSync(path))
  t.true(await unwrap(mine.release()))
  t.false(existsSync(path))
})
