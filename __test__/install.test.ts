// What `npm install reflink-pool` gives a user without a Rust toolchain: the main
// tarball and this host's platform tarball (from `npm pack`) installed offline into
// a fresh project with no cargo/rustc on PATH. Checks require, import, the CLI,
// a strict TypeScript consumer, publint and attw, and that the main tarball alone
// fails at load naming the missing platform package. Needs `npm run build` first.
import test from 'ava'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  consumerEnv, hostPlatformPackage, installConsumer, ok, packMain, packPlatform, packRuntimeDeps,
  pathWithoutRust, repoRoot, run, sizeKiB, tarballFiles, type RunResult,
} from './helpers/pack-install'

const work = mkdtempSync(join(tmpdir(), 'reflink-pool-install-'))
const env = consumerEnv(pathWithoutRust(join(work, 'bin')))
const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version
const platform = hostPlatformPackage()
const platformName = platform.manifest.name
const full = join(work, 'consumer') // main + platform tarballs
const mainOnly = join(work, 'consumer-main-only')

let mainTgz = ''
let platformTgz = ''
let fullInstall: RunResult
let mainOnlyInstall: RunResult

test.before(async () => {
  mainTgz = await packMain(work, env)
  platformTgz = await packPlatform(work, env)
  const deps = await packRuntimeDeps(work, env)
  fullInstall = await installConsumer(full, [mainTgz, platformTgz, ...deps], env)
  mainOnlyInstall = await installConsumer(mainOnly, [mainTgz, ...deps], env)
})

test.after.always(() => {
  rmSync(work, { recursive: true, force: true })
})

/** Run `code` with node inside a consumer project, with the Rust-free environment. */
const node = (cwd: string, args: string[]) => run(process.execPath, args, { cwd, env })

test.serial('the consumer environment has no cargo or rustc on PATH', async (t) => {
  for (const tool of ['cargo', 'rustc']) {
    const r = await run('sh', ['-c', `command -v ${tool}`], { env })
    t.not(r.code, 0, `${tool} found at ${r.stdout.trim()}`)
  }
})

test.serial('tarballs: the main package ships no addon, the platform package ships exactly its addon', async (t) => {
  const mainFiles = await tarballFiles(mainTgz)
  const platformFiles = await tarballFiles(platformTgz)
  t.log(`${mainTgz.split('/').pop()}: ${sizeKiB(mainTgz)}, ${mainFiles.length} files`)
  t.log(`${platformTgz.split('/').pop()}: ${sizeKiB(platformTgz)}, ${platformFiles.length} files`)
  t.false(mainFiles.some((f) => f.endsWith('.node')), mainFiles.join(', '))
  for (const f of ['package.json', 'dist/index.js', 'dist/index.d.ts', 'native/index.js', 'native/index.d.ts', 'LICENSE', 'README.md']) {
    t.true(mainFiles.includes(f), `main tarball lacks ${f}`)
  }
  t.false(mainFiles.some((f) => f.startsWith('ts/') || f.startsWith('__test__/') || f.startsWith('crates/')), 'sources leaked into the tarball')
  t.deepEqual(platformFiles.filter((f) => f.endsWith('.node')), [platform.manifest.main])
})

test.serial('the main tarball ships what the library and the CLI run, nothing else', async (t) => {
  const files = await tarballFiles(mainTgz)
  t.log(`main tarball files:\n${files.join('\n')}`)
  t.false(files.some((f) => f.endsWith('.map')), 'no source maps')
  // Declarations only for the library's types: the CLI, the bench and util are programs, not API.
  t.deepEqual(files.filter((f) => /^dist\/(cli|bench|util)\/.*\.d\.ts$/.test(f)), [])
  // The bench ships because `reflink-pool bench` runs it (compiled JS only).
  // The CLI bundle (scripts/bundle-cli.mjs) is what bin/reflink-pool.js loads.
  for (const f of ['dist/cli/main.js', 'dist/cli/main.bundle.js', 'dist/cli/main.bundle.cache', 'dist/bench/main.js', 'dist/bench/rss-child.js', 'dist/util/loopfs.js']) t.true(files.includes(f), f)
  // Every compiled file comes from a current source (no stale outputs of moved modules).
  const stale = files.filter((f) => f.startsWith('dist/') && f.endsWith('.js') && f !== 'dist/cli/main.bundle.js' && !existsSync(join(repoRoot, 'ts', f.slice(5).replace(/\.js$/, '.ts'))))
  t.deepEqual(stale, [])
})

test.serial('npm installs both tarballs offline from an empty cache', (t) => {
  t.is(fullInstall.code, 0, fullInstall.stderr)
  const installed = JSON.parse(readFileSync(join(full, 'node_modules', platformName, 'package.json'), 'utf8')) as { version: string }
  t.is(installed.version, version)
})

test.serial('require() loads the addon from the platform package and copies a file', async (t) => {
  const script = `
    const fs = require('node:fs'), path = require('node:path'), os = require('node:os')
    const rp = require('reflink-pool')
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rp-cjs-'))
    fs.writeFileSync(path.join(dir, 'a'), 'hello')
    rp.copyFile(path.join(dir, 'a'), path.join(dir, 'b')).then((res) => {
      const addon = fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/)[5]).find((p) => p && p.endsWith('.node'))
      console.log(JSON.stringify({ res, copied: fs.readFileSync(path.join(dir, 'b'), 'utf8'), addon }))
      fs.rmSync(dir, { recursive: true })
    })`
  const r = ok(await node(full, ['-e', script]), 'require reflink-pool')
  const out = JSON.parse(r.stdout) as { res: { method: string; bytes: number }; copied: string; addon: string }
  t.log(`copy method in ${tmpdir()}: ${out.res.method}`)
  t.is(out.copied, 'hello')
  t.true(['reflink', 'copy-range', 'read-write'].includes(out.res.method))
  t.is(out.addon, join(full, 'node_modules', platformName, platform.manifest.main as string))
})

test.serial('import loads with named exports (ESM consumer of the CommonJS build)', async (t) => {
  const r = ok(
    await node(full, ['--input-type=module', '-e', `
      import { copyFile, ReflinkPool, ReflinkPoolError, ERROR_CODES } from 'reflink-pool'
      import * as ns from 'reflink-pool'
      console.log(JSON.stringify({ copyFile: typeof copyFile, pool: typeof ReflinkPool, err: typeof ReflinkPoolError, codes: Object.keys(ERROR_CODES).length, dflt: typeof ns.default }))`]),
    'import reflink-pool',
  )
  const out = JSON.parse(r.stdout) as { copyFile: string; pool: string; err: string; codes: number; dflt: string }
  t.is(out.copyFile, 'function')
  t.is(out.pool, 'function') // re-exported from ts/pool: cjs-module-lexer must see it
  t.is(out.err, 'function')
  t.true(out.codes > 0)
  t.is(out.dflt, 'object') // the CommonJS exports object, as Node gives it to ESM
})

test.serial('the CLI bin prints the package version', async (t) => {
  const r = ok(await node(full, [join(full, 'node_modules', '.bin', 'reflink-pool'), '--version']), 'reflink-pool --version')
  t.is(r.stdout.trim(), version)
})

test.serial('the CLI runs a small demo', async (t) => {
  const r = await run(join(full, 'node_modules', '.bin', 'reflink-pool'), ['demo', '--clones', '3', '--data-mib', '2', '--json'], { cwd: full, env, timeoutMs: 120_000 })
  t.is(r.code, 0, r.stderr)
  const report = JSON.parse(r.stdout) as { place: string }
  t.log(`demo place: ${report.place}`)
  t.is(typeof report.place, 'string')
})

test.serial('reflink-pool bench from the install: no cargo, no apt-get; it says what is missing and skips the floor rows', async (t) => {
  // cargo and apt-get shims that record any call: the harness must not run either.
  const shims = join(work, 'shims')
  mkdirSync(shims, { recursive: true })
  const calls = join(work, 'shim-calls.log')
  for (const tool of ['cargo', 'apt-get', 'apt']) {
    writeFileSync(join(shims, tool), `#!/bin/sh\necho "${tool} $*" >> ${calls}\nexit 1\n`, { mode: 0o755 })
  }
  const out = join(work, 'bench-out')
  const r = await run(join(full, 'node_modules', '.bin', 'reflink-pool'), ['bench', '--', '--quick', '--only', 'clone', '--out', out], {
    cwd: full,
    env: { ...env, PATH: `${shims}:${env.PATH}`, REFLINK_POOL_FLOOR: undefined },
    timeoutMs: 300_000,
  })
  t.log(r.stderr.split('\n').filter((l) => /unavailable|skipped|missing/.test(l)).join('\n'))
  t.is(r.code, 0, r.stderr)
  t.false(existsSync(calls), `the harness ran: ${existsSync(calls) ? readFileSync(calls, 'utf8') : ''}`)
  t.regex(r.stderr, /floor unavailable: the Rust floor binary is built from the repository's sources, which an npm install does not ship; rows against the floor are skipped; to include them, .*REFLINK_POOL_FLOOR/)
  t.regex(r.stdout, /floor binary unavailable/, 'the clone rows say why they were skipped')
  const report = JSON.parse(readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.json'))!), 'utf8')) as { notes: string[]; scenarios: { id: string; skipped?: string[] }[] }
  t.truthy(report.scenarios.find((s) => s.id === 'clone')?.skipped?.[0]?.includes('floor'))
  t.true(report.notes.some((n) => /measuring the installed native addon/.test(n)))
})

test.serial('a TypeScript consumer type-checks under strict, isolatedModules, verbatimModuleSyntax', async (t) => {
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc')
  // skipLibCheck off for the real check (our .d.ts files must be valid too); on for the control.
  const tsconfig = (files: string[], skipLibCheck = false) => JSON.stringify({
    compilerOptions: {
      strict: true, isolatedModules: true, verbatimModuleSyntax: true, noEmit: true, skipLibCheck,
      module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022',
      types: ['node'], typeRoots: [join(repoRoot, 'node_modules', '@types')],
    },
    files,
  })
  writeFileSync(join(full, 'esm.mts'), [
    "import { copyFile, isReflinkPoolError, ReflinkPool, type CopyResult, type CopyMethod, type ReflinkMode } from 'reflink-pool'",
    "const mode: ReflinkMode = 'auto'",
    "const res: CopyResult = await copyFile('a', 'b', { reflink: mode })",
    'const method: CopyMethod = res.method',
    'try { await copyFile(\'a\', \'b\') } catch (e) { if (isReflinkPoolError(e, \'ENOENT\')) console.log(e.code, e.path) }',
    'console.log(method)',
    "const pool: ReflinkPool = await ReflinkPool.open({ dirPath: '/var/lib/vms', revisionsToKeep: 2 })",
    "const vol = await pool.createVolume({ name: 'root', vm: { name: 'web', dirPathPrefix: 'appvms' }, size: 1 << 20, saveOnStop: true })",
    'const dirty: string = await vol.start()',
    'await vol.stop()',
    'const revs: Record<string, string> = await vol.revisions()',
    'console.log(dirty, revs, pool.config.driver)',
    '',
  ].join('\n'))
  writeFileSync(join(full, 'cjs.cts'), [
    "import rp = require('reflink-pool')",
    "void rp.copyFile('a', 'b', { reflink: 'never' }).then((r: rp.CopyResult) => r.bytes)",
    '',
  ].join('\n'))
  writeFileSync(join(full, 'tsconfig.json'), tsconfig(['esm.mts', 'cjs.cts']))
  const good = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: full, env })
  t.is(good.code, 0, good.stdout)
  // The control: a wrong option value must not type-check, so the types really resolved.
  writeFileSync(join(full, 'bad.mts'), "import { copyFile } from 'reflink-pool'\nawait copyFile('a', 'b', { reflink: 'sometimes' })\n")
  writeFileSync(join(full, 'tsconfig.bad.json'), tsconfig(['bad.mts'], true))
  const bad = await run(process.execPath, [tsc, '-p', 'tsconfig.bad.json'], { cwd: full, env })
  t.not(bad.code, 0)
  t.regex(bad.stdout, /bad\.mts.*'"sometimes"' is not assignable/s)
})

test.serial('publint reports no errors on the main tarball', async (t) => {
  const r = await run(process.execPath, [join(repoRoot, 'node_modules', 'publint', 'src', 'cli.js'), 'run', mainTgz], { cwd: work, env })
  t.log(`publint: ${(r.stdout + r.stderr).trim()}`)
  t.is(r.code, 0)
  t.notRegex(r.stdout + r.stderr, /Errors?:/)
})

test.serial('attw reports no problems on the main tarball', async (t) => {
  const r = await run(process.execPath, [join(repoRoot, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js'), mainTgz, '--format', 'ascii', '--no-color'], { cwd: work, env })
  t.log(`attw:\n${r.stdout.trim()}`)
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /No problems found/)
})

test.serial('the main tarball alone installs, then fails at load naming the platform package', async (t) => {
  t.is(mainOnlyInstall.code, 0, mainOnlyInstall.stderr)
  const r = await node(mainOnly, ['-e', "require('reflink-pool')"])
  t.not(r.code, 0)
  t.true(r.stderr.includes(`the platform package ${platformName} is missing`), r.stderr)
  t.true(r.stderr.includes(`npm install ${platformName}@${version}`), r.stderr)
  t.regex(r.stderr, /build it from source/)
  t.notRegex(r.stderr.split('\n').find((l) => l.startsWith('Error:')) ?? '', /Cannot find module/)
  const esm = await node(mainOnly, ['--input-type=module', '-e', "import 'reflink-pool'"])
  t.true(esm.stderr.includes(`the platform package ${platformName} is missing`), esm.stderr)
})
