// The package root as a TypeScript user sees it: what is exported, the typed
// error codes (a type test run through tsc), `await using`, and volumes made by
// another process.
import test from 'ava'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import * as api from '../ts/index'
import { ReflinkPool, isReflinkPoolError, type ReflinkPoolError } from '../ts/index'
import { runCli } from './helpers/cli-run'

const REPO = join(__dirname, '..')
const run = promisify(execFile)

function tmpPool(): string {
  return join(mkdtempSync(join(tmpdir(), 'rp-api-')), 'pool')
}

test('the package root exports the public API only (no internal, no test hooks)', (t) => {
  const names = Object.keys(api).sort()
  t.false(names.includes('internal'))
  t.deepEqual(names.filter((n) => n.startsWith('_')), [])
  t.deepEqual(names, [
    'AbortError', 'COPY_METHODS', 'DRIVER', 'ERROR_CODES', 'ReflinkPool', 'ReflinkPoolError', 'ReflinkVolume', 'VID_PREFIXES', 'VOLUME_KINDS',
    'copyFile', 'createSparseFile', 'fileUsage', 'isReflinkPoolError', 'isReflinkSupported', 'parseVid',
    'resizeFile', 'setCopyConcurrency', 'updateLoopDevSizes',
  ])
})

/** Compile `file` alone with the project's compiler settings; resolves to tsc's output ('' when clean). */
async function tsc(file: string): Promise<{ ok: boolean; output: string }> {
  const dir = mkdtempSync(join(REPO, '__test__', 'types', '.tsc-'))
  const config = join(dir, 'tsconfig.json')
  writeFileSync(config, JSON.stringify({ extends: '../../../tsconfig.json', compilerOptions: { noEmit: true }, include: [], files: [file] }))
  try {
    await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', config], { cwd: REPO })
    return { ok: true, output: '' }
  } catch (e) {
    return { ok: false, output: String((e as { stdout?: string }).stdout ?? e) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

test('ErrorCode is a closed union: a misspelt code in isReflinkPoolError does not compile', async (t) => {
  const file = join(REPO, '__test__', 'types', 'error-code.ts')
  const good = await tsc(file)
  t.true(good.ok, good.output)
  // The control: without the @ts-expect-error lines, tsc must report each typo.
  const stripped = join(REPO, '__test__', 'types', 'error-code.stripped.ts')
  writeFileSync(stripped, readFileSync(file, 'utf8').replace(/^\s*\/\/ @ts-expect-error.*$/gm, ''))
  try {
    const bad = await tsc(stripped)
    t.false(bad.ok)
    t.regex(bad.output, /'"ERR_UNKNWON_VOLUME"' is not assignable/)
    t.regex(bad.output, /'"ENOSPACE"' is not assignable/)
  } finally {
    rmSync(stripped, { force: true })
  }
})

test('library messages do not repeat their code (as Node\'s ERR_* errors)', async (t) => {
  const dir = tmpPool()
  const pool = await ReflinkPool.open({ dirPath: dir, setupCheck: false })
  try {
    const err = t.throws(() => pool.getVolume('appvms/none/root')) as ReflinkPoolError
    t.is(err.code, 'ERR_UNKNOWN_VOLUME')
    t.false(err.message.includes('ERR_UNKNOWN_VOLUME'), err.message)
    t.true(isReflinkPoolError(err, 'ERR_UNKNOWN_VOLUME'))
  } finally {
    await pool.close()
  }
})

test('await using closes the pool at the end of the scope', async (t) => {
  const dir = tmpPool()
  let kept: ReflinkPool
  {
    await using pool = await ReflinkPool.open({ dirPath: dir, setupCheck: false })
    kept = pool
    await pool.createVolume({ vid: 'appvms/a/volatile', name: 'volatile', kind: 'volatile', size: 4096 })
  }
  const err = (await t.throwsAsync(kept.createVolume({ vid: 'appvms/b/volatile', name: 'volatile' }))) as ReflinkPoolError
  t.is(err.code, 'ERR_POOL_CLOSED')
  t.is(typeof Symbol.asyncDispose, 'symbol')
})

test('loadVolume sees a volume another process made; getVolume is the documented cache', async (t) => {
  const dir = tmpPool()
  const pool = await ReflinkPool.open({ dirPath: dir, setupCheck: false })
  try {
    const made = await runCli(['--pool', dir, 'volume', 'create', 'appvms/other/volatile', '--kind', 'volatile', '--size', '1M'])
    t.is(made.status, 0, made.stderr)
    t.throws(() => pool.getVolume('appvms/other/volatile'), { code: 'ERR_UNKNOWN_VOLUME' })
    const v = await pool.loadVolume('appvms/other/volatile')
    t.is(v.vid, 'appvms/other/volatile')
    t.is(await v.size(), 1024 * 1024)
    t.is(pool.getVolume('appvms/other/volatile'), v, 'now cached')
    const removed = await runCli(['--pool', dir, 'volume', 'remove', 'appvms/other/volatile'])
    t.is(removed.status, 0, removed.stderr)
    await t.throwsAsync(pool.loadVolume('appvms/other/volatile'), { code: 'ERR_UNKNOWN_VOLUME' })
  } finally {
    await pool.close()
  }
})
