// FIFOs and devices as sources: every primitive that opens a path looks at
// the file type before any call that can block (O_NONBLOCK, fstat), so a FIFO
// never occupies a threadpool thread (docs/design.md §5). Two FIFO copies
// used to stall every later copy of the process.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { copyFile, fileUsage, resizeFile } from '../ts/index'
import { internal } from '../ts/internal'
import { within } from './helpers/within'

const scratch = () => mkdtempSync(join(tmpdir(), 'confine-fifo-'))

test('copyFile, fileUsage, resizeFile, dataRuns, fsyncFile and the import writer refuse a FIFO at once; later copies still run', async (t) => {
  const dir = scratch()
  const fifo = join(dir, 'pipe')
  execFileSync('mkfifo', [fifo])
  // More FIFO calls than the libuv threadpool has threads: none may block one.
  const calls = Array.from({ length: 6 }, (_, i) => (i % 2 ? fileUsage(fifo) : copyFile(fifo, join(dir, `out-${i}`))))
  for (const c of calls) await within(t.throwsAsync(c, { code: 'ERR_NOT_REGULAR_FILE' }), 2000, 'a FIFO is refused quickly')
  await within(t.throwsAsync(resizeFile(fifo, 4096), { code: 'ERR_NOT_REGULAR_FILE' }), 2000, 'resize')
  await within(t.throwsAsync(internal.dataRuns(fifo), { code: 'ERR_NOT_REGULAR_FILE' }), 2000, 'dataRuns')
  await within(t.throwsAsync(internal.fsyncFile(fifo), { code: 'ERR_NOT_REGULAR_FILE' }), 2000, 'fsyncFile')
  // The import writer opens through a directory handle, as inside a pool: a FIFO there is an unsafe path.
  await within(t.throwsAsync(internal.openImportWriter(fifo), { code: 'ERR_UNSAFE_PATH' }), 2000, 'import writer')
  await within(t.throwsAsync(copyFile(join(dir, 'src'), fifo), { code: 'ENOENT' }), 2000, 'a missing source')
  t.false(existsSync(join(dir, 'out-0')))
  writeFileSync(join(dir, 'src'), 'data')
  const r = await within(copyFile(join(dir, 'src'), join(dir, 'dst')), 5000, 'a normal copy afterwards')
  t.is(readFileSync(join(dir, 'dst'), 'utf8'), 'data')
  t.truthy(r.method)
  // An aborted copy still rejects with AbortError.
  const ac = new AbortController()
  ac.abort()
  await t.throwsAsync(copyFile(join(dir, 'src'), join(dir, 'dst2'), { signal: ac.signal }), { name: 'AbortError' })
})

test('a device as a source is refused without being read (/dev/zero would never end)', async (t) => {
  const dir = scratch()
  for (const dev of ['/dev/zero', '/dev/null']) {
    await within(t.throwsAsync(copyFile(dev, join(dir, 'out')), { code: 'ERR_NOT_REGULAR_FILE' }), 2000, dev)
    await within(t.throwsAsync(fileUsage(dev), { code: 'ERR_NOT_REGULAR_FILE' }), 2000, dev)
  }
  t.false(existsSync(join(dir, 'out')))
})
