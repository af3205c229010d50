// Faults of the durable copy on real filesystems: a cross-filesystem copy
// falls back, ENOSPC and aborts clean up their temp file, a throwing progress
// callback stops the copy, and the copy limiter queues and aborts waiters.
import anyTest, { type TestFn } from 'ava'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { AbortError, ReflinkPoolError, copyFile, fileUsage, isReflinkSupported, setCopyConcurrency } from '../ts/index'
import { fsSuite, mountScratch } from './helpers/scratch-fs'
import { MiB, allocated, scatteredRuns, sha256File, tempFiles, writeData, writeSparse } from './helpers/native-files'

const test = anyTest as TestFn
const ext4 = fsSuite(test, 'ext4')
const xfs = fsSuite(test, 'xfs')
let seq = 0
function dir(root: string, label: string): string {
  const d = join(root, `${++seq}-${label}`)
  mkdirSync(d)
  return d
}

ext4.test('cross-filesystem copy ext4 -> XFS succeeds through the read-write fallback', async (t) => {
  const from = dir(ext4.fs().dir, 'cross-src')
  const to = dir(xfs.fs().dir, 'cross-dst')
  const src = join(from, 'src')
  await writeSparse(src, 256 * MiB, scatteredRuns(256 * MiB, 8, MiB))
  const r = await copyFile(src, join(to, 'dst'))
  t.log(`ext4 -> xfs: method=${r.method} bytes=${r.bytes} allocated src=${allocated(src)} dst=${allocated(join(to, 'dst'))}`)
  // FICLONE gives EXDEV; since Linux 5.19 copy_file_range refuses different
  // filesystem types with EXDEV too, so the data runs go through pread/pwrite.
  t.is(r.method, 'read-write')
  t.is(r.bytes, 8 * MiB)
  t.true(allocated(join(to, 'dst')) <= allocated(src) * 1.05)
  t.is(await sha256File(join(to, 'dst')), await sha256File(src))
})

ext4.test('across filesystems a reflink is impossible: the probe says no and reflink always refuses', async (t) => {
  const from = dir(ext4.fs().dir, 'cross-always-src')
  const to = dir(xfs.fs().dir, 'cross-always-dst')
  t.false(await isReflinkSupported(to, from))
  t.true(await isReflinkSupported(to, dir(xfs.fs().dir, 'same-fs')))
  await writeData(join(from, 'src'), MiB)
  const err = (await t.throwsAsync(copyFile(join(from, 'src'), join(to, 'dst'), { reflink: 'always' }))) as ReflinkPoolError
  t.is(err.code, 'ERR_REFLINK_UNSUPPORTED')
  t.is(err.path, join(from, 'src'))
  t.false(existsSync(join(to, 'dst')))
  t.deepEqual(tempFiles(to), [])
})

ext4.test('ENOSPC on a small full filesystem rejects with ENOSPC and leaves no temp file', async (t) => {
  const small = mountScratch('ext4', { sizeMiB: 64 })
  t.teardown(() => small.unmount())
  const src = join(small.dir, 'src')
  await writeData(src, 40 * MiB)
  writeFileSync(join(small.dir, 'dst'), 'old')
  const err = (await t.throwsAsync(copyFile(src, join(small.dir, 'dst')))) as ReflinkPoolError
  t.log(`ENOSPC: syscall=${err.syscall} message=${err.message}`)
  t.true(err instanceof ReflinkPoolError)
  t.is(err.code, 'ENOSPC')
  t.is(err.errno, -28)
  t.deepEqual(tempFiles(small.dir), [])
  t.is(readFileSync(join(small.dir, 'dst'), 'utf8'), 'old')
})

// Timing-sensitive (the abort must land while chunks remain): serial, so no
// other test keeps the JS thread busy while the first progress report waits.
ext4.test.serial('abort mid-copy of a large file rejects with AbortError and leaves dst untouched', async (t) => {
  const d = dir(ext4.fs().dir, 'abort')
  const src = join(d, 'src')
  const dst = join(d, 'dst')
  await writeData(src, 256 * MiB)
  writeFileSync(dst, 'old')
  const ac = new AbortController()
  const reports: number[] = []
  const err = (await t.throwsAsync(copyFile(src, dst, {
    signal: ac.signal,
    onProgress: (done) => {
      reports.push(done)
      ac.abort()
    },
  }))) as AbortError
  t.log(`aborted after progress reports ${JSON.stringify(reports)}`)
  t.true(err instanceof AbortError)
  t.is(err.code, 'ABORT_ERR')
  t.is(err.name, 'AbortError')
  t.true(reports[0] < 256 * MiB, 'the abort came before the end')
  t.is(readFileSync(dst, 'utf8'), 'old')
  t.deepEqual(tempFiles(d), [])
  rmSync(d, { recursive: true })
})

ext4.test.serial('a throwing onProgress stops the copy and rejects with its error', async (t) => {
  const d = dir(ext4.fs().dir, 'progress-throws')
  await writeData(join(d, 'src'), 256 * MiB)
  const boom = new Error('progress callback failed')
  const err = await t.throwsAsync(copyFile(join(d, 'src'), join(d, 'dst'), {
    onProgress: () => {
      throw boom
    },
  }))
  t.is(err, boom)
  t.false(existsSync(join(d, 'dst')))
  t.deepEqual(tempFiles(d), [])
  rmSync(d, { recursive: true })
})

ext4.test.serial('the copy limiter runs one copy at a time when set to 1 and aborts a queued copy', async (t) => {
  const d = dir(ext4.fs().dir, 'limiter')
  await writeData(join(d, 'src'), 96 * MiB)
  setCopyConcurrency(1)
  t.teardown(() => setCopyConcurrency(2))
  const events: string[] = []
  const copy = (name: string, signal?: AbortSignal) =>
    copyFile(join(d, 'src'), join(d, name), {
      reflink: 'never',
      signal,
      onProgress: (done, total) => events.push(`${name}:${done === total ? 'end' : 'run'}`),
    }).then((r) => {
      events.push(`${name}:resolved`)
      return r
    })
  const ac = new AbortController()
  const a = copy('a')
  const queued = copy('queued', ac.signal)
  const b = copy('b')
  ac.abort()
  const err = await t.throwsAsync(queued)
  t.true(err instanceof AbortError)
  t.false(events.some((e) => e.startsWith('queued')), 'the queued copy never started')
  t.false(existsSync(join(d, 'queued')))
  await Promise.all([a, b])
  const firstB = events.findIndex((e) => e.startsWith('b:'))
  t.true(firstB > events.indexOf('a:resolved'), `b started after a finished: ${events.join(' ')}`)
  t.is(await sha256File(join(d, 'b')), await sha256File(join(d, 'src')))
  t.is(statSync(join(d, 'a')).size, 96 * MiB)
  rmSync(d, { recursive: true })
})


xfs.test('a file larger than 2^53 bytes: fileUsage rejects with ERR_OUT_OF_RANGE rather than a rounded size', async (t) => {
  const huge = join(dir(xfs.fs().dir, 'huge'), 'huge.img')
  // XFS allows sparse files up to 8 EiB; Node cannot even ask for this size, so truncate(1) makes it.
  execFileSync('truncate', ['-s', String(2n ** 54n), huge])
  const err = await t.throwsAsync(fileUsage(huge), { instanceOf: ReflinkPoolError })
  t.is(err?.code, 'ERR_OUT_OF_RANGE')
})
