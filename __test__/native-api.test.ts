// The binding's contract without a scratch filesystem: the generated types,
// argument validation before any syscall, Node-shaped errors, aborts that
// happen before the copy starts, and a Rust panic turned into a rejection.
import test from 'ava'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  AbortError, ERROR_CODES, ReflinkPoolError, copyFile, createSparseFile, fileUsage, isReflinkSupported,
  resizeFile, setCopyConcurrency, updateLoopDevSizes,
} from '../ts/index'
// Internals by path: the package root exports only the public API.
import { internal } from '../ts/internal'

const root = mkdtempSync(join(tmpdir(), 'reflink-pool-native-api-'))
test.after.always(() => rmSync(root, { recursive: true, force: true }))
const src = join(root, 'src')
writeFileSync(src, 'source bytes')

test('the generated native/index.d.ts matches the snapshot (API drift shows in review)', (t) => {
  t.snapshot(readFileSync(join(__dirname, '..', 'native', 'index.d.ts'), 'utf8'))
})

// Each call must reject before touching the disk: the destination (in a
// directory that does not exist yet) must not appear.
const dst = join(root, 'never-created', 'dst')
const bad: Array<[string, () => Promise<unknown>, 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE']> = [
  ['copyFile: src is a number', () => copyFile(1 as never, dst), 'ERR_INVALID_ARG_TYPE'],
  ['copyFile: empty src', () => copyFile('', dst), 'ERR_INVALID_ARG_VALUE'],
  ['copyFile: dst with a NUL byte', () => copyFile(src, 'a\0b'), 'ERR_INVALID_ARG_VALUE'],
  ['copyFile: options is a string', () => copyFile(src, dst, 'auto' as never), 'ERR_INVALID_ARG_TYPE'],
  ['copyFile: negative size', () => copyFile(src, dst, { size: -1 }), 'ERR_INVALID_ARG_VALUE'],
  ['copyFile: fractional size', () => copyFile(src, dst, { size: 1.5 }), 'ERR_INVALID_ARG_VALUE'],
  ['copyFile: size 2^53', () => copyFile(src, dst, { size: 2 ** 53 }), 'ERR_INVALID_ARG_VALUE'],
  ['copyFile: size NaN', () => copyFile(src, dst, { size: NaN }), 'ERR_INVALID_ARG_VALUE'],
  ['copyFile: size Infinity', () => copyFile(src, dst, { size: Infinity }), 'ERR_INVALID_ARG_VALUE'],
  ['copyFile: size as a string', () => copyFile(src, dst, { size: '10' as never }), 'ERR_INVALID_ARG_TYPE'],
  ['copyFile: size as a bigint', () => copyFile(src, dst, { size: 10n as never }), 'ERR_INVALID_ARG_TYPE'],
  ['copyFile: unknown reflink mode', () => copyFile(src, dst, { reflink: 'sometimes' as never }), 'ERR_INVALID_ARG_VALUE'],
  ['copyFile: copyMtime is a string', () => copyFile(src, dst, { copyMtime: 'yes' as never }), 'ERR_INVALID_ARG_TYPE'],
  ['copyFile: signal is not a signal', () => copyFile(src, dst, { signal: {} as never }), 'ERR_INVALID_ARG_TYPE'],
  ['copyFile: onProgress is not a function', () => copyFile(src, dst, { onProgress: 1 as never }), 'ERR_INVALID_ARG_TYPE'],
  ['createSparseFile: negative size', () => createSparseFile(dst, -4096), 'ERR_INVALID_ARG_VALUE'],
  ['createSparseFile: huge size', () => createSparseFile(dst, Number.MAX_VALUE), 'ERR_INVALID_ARG_VALUE'],
  ['createSparseFile: path undefined', () => createSparseFile(undefined as never, 1), 'ERR_INVALID_ARG_TYPE'],
  ['resizeFile: fractional size', () => resizeFile(src, 0.5), 'ERR_INVALID_ARG_VALUE'],
  ['updateLoopDevSizes: empty path', () => updateLoopDevSizes(''), 'ERR_INVALID_ARG_VALUE'],
  ['isReflinkSupported: srcDir is a number', () => isReflinkSupported(root, 3 as never), 'ERR_INVALID_ARG_TYPE'],
  ['fileUsage: path is null', () => fileUsage(null as never), 'ERR_INVALID_ARG_TYPE'],
  ['internal.writeFile: mode out of range', () => internal.writeFile(dst, 'x', 0o70000), 'ERR_INVALID_ARG_VALUE'],
  ['internal.mkdir: path is an object', () => internal.mkdir({} as never), 'ERR_INVALID_ARG_TYPE'],
]
for (const [name, call, code] of bad) {
  test(`bad argument rejects with ${code} before any syscall: ${name}`, async (t) => {
    const err = await t.throwsAsync(call())
    t.true(err instanceof ReflinkPoolError)
    t.is((err as ReflinkPoolError).code, code)
    t.is((err as ReflinkPoolError).errno, undefined)
    t.false(existsSync(join(root, 'never-created')))
  })
}

test('a missing source rejects with ENOENT naming the source, like a Node fs error', async (t) => {
  const missing = join(root, 'missing')
  const err = (await t.throwsAsync(copyFile(missing, join(root, 'out')))) as ReflinkPoolError
  t.true(err instanceof ReflinkPoolError)
  t.is(err.code, 'ENOENT')
  t.is(err.errno, -2)
  t.is(err.path, missing)
  t.is(typeof err.syscall, 'string')
  t.regex(err.message, /^ENOENT: no such file or directory, /)
  t.true(err.message.includes(`'${missing}'`))
  t.false(existsSync(join(root, 'out')))
})

test('an already-aborted signal rejects with AbortError before starting', async (t) => {
  const ac = new AbortController()
  ac.abort(new Error('stop'))
  const target = join(root, 'aborted-dir', 'dst')
  const err = (await t.throwsAsync(copyFile(src, target, { signal: ac.signal }))) as AbortError
  t.true(err instanceof AbortError)
  t.is(err.name, 'AbortError')
  t.is(err.code, 'ABORT_ERR')
  t.is((err.cause as Error).message, 'stop')
  t.false(existsSync(join(root, 'aborted-dir')))
})

test('a Rust panic inside a task becomes a rejected promise with ERR_INTERNAL', async (t) => {
  const err = (await t.throwsAsync(internal.__testPanic('deliberate test panic'))) as ReflinkPoolError
  t.is(err.code, 'ERR_INTERNAL')
  t.regex(err.message, /deliberate test panic/)
  // The process is alive and the binding still works.
  t.is((await fileUsage(src)).size, 'source bytes'.length)
})

test('every library code in the table is ERR_* or ABORT_ERR and documented', (t) => {
  for (const [code, text] of Object.entries(ERROR_CODES)) {
    t.regex(code, /^(ERR_[A-Z_]+|ABORT_ERR)$/)
    t.true(text.length > 10)
  }
  for (const code of ['ERR_REFLINK_UNSUPPORTED', 'ERR_INVALID_ARG_VALUE', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_VID',
    'ERR_UNKNOWN_VOLUME', 'ERR_VOLUME_EXISTS', 'ERR_VOLUME_DIRTY', 'ERR_REVISION_NOT_FOUND', 'ERR_VOLUME_READ_ONLY',
    'ERR_NOT_SAVE_ON_STOP', 'ERR_MISSING_IMAGE', 'ERR_SHRINK_REFUSED', 'ERR_INTERNAL', 'ABORT_ERR']) {
    t.true(code in ERROR_CODES, code)
  }
})

test('setCopyConcurrency refuses non-positive or fractional limits', (t) => {
  for (const n of [0, -1, 1.5, NaN]) {
    t.is((t.throws(() => setCopyConcurrency(n)) as ReflinkPoolError).code, 'ERR_INVALID_ARG_VALUE')
  }
})

test('internal durable helpers and the import writer work and report errors with paths', async (t) => {
  const d = join(root, 'internal', 'a', 'b')
  await internal.mkdir(d)
  await internal.writeFile(join(d, 'cfg.json'), '{"x":1}')
  t.is(readFileSync(join(d, 'cfg.json'), 'utf8'), '{"x":1}')
  await internal.hardlink(join(d, 'cfg.json'), join(d, 'link.json'))
  await internal.rename(join(d, 'link.json'), join(d, 'moved.json'))
  t.is(readFileSync(join(d, 'moved.json'), 'utf8'), '{"x":1}')
  t.true(await internal.remove(join(d, 'moved.json')))
  t.false(await internal.remove(join(d, 'moved.json')))
  await internal.fsyncDir(d)
  await internal.fsyncFile(join(d, 'cfg.json'))
  const stats = await internal.fsStats(d)
  t.true(stats.size > 0 && stats.used <= stats.size)

  const img = join(d, 'import.img')
  await createSparseFile(img, 1024 * 1024)
  const w = await internal.openImportWriter(img)
  const zeros = Buffer.alloc(256 * 1024)
  const data = Buffer.alloc(64 * 1024, 0x61)
  t.deepEqual(await w.write([zeros, zeros]), { position: 512 * 1024, written: 0 }, 'all-zero chunks write nothing')
  t.deepEqual(await w.write(data), { position: 576 * 1024, written: data.length })
  t.deepEqual(await w.write(Buffer.alloc(1024 * 1024 - 576 * 1024)), { position: 1024 * 1024, written: data.length })
  const past = (await t.throwsAsync(w.write(Buffer.alloc(1, 1)))) as ReflinkPoolError
  t.is(past.code, 'ERR_INVALID_ARG_VALUE')
  t.is(past.path, img)
  t.deepEqual(await w.finish(), { position: 1024 * 1024, written: data.length })
  const content = readFileSync(img)
  t.true(content.subarray(512 * 1024, 576 * 1024).equals(data))
  t.is(content.subarray(0, 512 * 1024).indexOf(0x61), -1)
  const runs = await internal.dataRuns(img)
  t.is(runs.size, 1024 * 1024)
  t.true(runs.runs.some((r) => r.offset <= 512 * 1024 && r.offset + r.length >= 576 * 1024))

  const enoent = (await t.throwsAsync(internal.rename(join(d, 'nope'), join(d, 'x')))) as ReflinkPoolError
  t.is(enoent.code, 'ENOENT')
  t.is(enoent.errno, -2)
})
