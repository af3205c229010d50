// The `reflink-pool` CLI driven as a child process on XFS (reflink): every
// command's happy path, the --json shapes, error lines and exit statuses, and
// import/export through pipes. The filesystem matrix of the policy itself is
// covered by the pool suites; here one reflink filesystem is enough.
import anyTest, { type TestFn } from 'ava'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fsSuite } from './helpers/scratch-fs'
import { runCli, runJson, BIN, REPO, sampleImage } from './helpers/cli-run'

const MiB = 1024 * 1024
const { test, fs } = fsSuite(anyTest as TestFn, 'xfs')

/** A fresh pool directory on the XFS scratch filesystem, initialised through the CLI. */
async function freshPool(t: { fail(m: string): void }): Promise<{ dir: string; env: Record<string, string> }> {
  const dir = join(mkdtempSync(join(fs().dir, 'cli-')), 'pool')
  const r = await runCli(['--pool', dir, 'init'])
  if (r.status !== 0) t.fail(`init failed: ${r.stderr}`)
  return { dir, env: { REFLINK_POOL_DIR: dir } }
}


const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

function errorLineOf(stderr: string): RegExpMatchArray | null {
  return /^reflink-pool: (.+) \((\w+)\)$/m.exec(stderr.trim())
}

// --- The frame: version, help, usage errors (no pool needed) -------------------------------

anyTest('--version prints the package version; --help of every command has examples', async (t) => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'))
  const v = await runCli(['--version'])
  t.is(v.status, 0)
  t.is(v.stdout.trim(), pkg.version)
  const commands = [
    [], ['init'], ['info'], ['usage'], ['clone'], ['demo'], ['bench'], ['volume'],
    ...['create', 'list', 'info', 'start', 'stop', 'revert', 'revisions', 'resize', 'import', 'export', 'remove', 'verify'].map((c) => ['volume', c]),
  ]
  const results = await Promise.all(commands.map((c) => runCli([...c, '--help'])))
  results.forEach((r, i) => {
    t.is(r.status, 0, `${commands[i].join(' ')} --help`)
    t.regex(r.stdout, /Examples:\n {2}\$ reflink-pool /, `${commands[i].join(' ')} --help shows examples`)
    t.regex(r.stdout, /--json/, `${commands[i].join(' ')} --help lists --json`)
  })
})

anyTest('usage errors: one line with ERR_USAGE, exit status 2, no stack', async (t) => {
  const cases = [
    ['--bogus'],
    ['volume', 'frobnicate'],
    ['volume', 'create'],
    ['--pool', '/x', 'volume', 'resize', 'appvms/a/b', '12Q'],
    ['--pool', '/x', 'volume', 'create', 'appvms/a/b', '--kind', 'weird'],
    ['volume', 'list'], // no --pool and no REFLINK_POOL_DIR
  ]
  const bare = await runCli(['volume'])
  t.is(bare.status, 2, 'a group without a subcommand is a usage error')
  t.regex(bare.stderr, /^Usage: reflink-pool volume /, 'its help goes to stderr')
  t.regex(bare.stderr, /\nreflink-pool: missing command \(see the list above\) \(ERR_USAGE\)\n$/)
  for (const args of cases) {
    const r = await runCli(args)
    t.is(r.status, 2, args.join(' '))
    t.is(r.stdout, '', args.join(' '))
    const m = errorLineOf(r.stderr)
    t.truthy(m, `one error line for ${args.join(' ')}: ${r.stderr}`)
    t.is(m?.[2], 'ERR_USAGE')
    t.is(r.stderr.trim().split('\n').length, 1, 'exactly one line')
  }
})

anyTest('a missing pool is an operation failure (exit 1), and --json also puts the error on stdout', async (t) => {
  const r = await runCli(['--pool', '/nonexistent/reflink-pool-cli', 'volume', 'list', '--json'])
  t.is(r.status, 1)
  t.is(errorLineOf(r.stderr)?.[2], 'ERR_POOL_NOT_FOUND')
  t.is(JSON.parse(r.stdout).error.code, 'ERR_POOL_NOT_FOUND')
  t.false(existsSync('/nonexistent/reflink-pool-cli'), 'no pool was created by a read command')
})

// --- Pool commands -------------------------------------------------------------------------

test('init, info and usage: human output and --json shapes', async (t) => {
  const dir = join(mkdtempSync(join(fs().dir, 'cli-')), 'pool')
  const first = await runJson(['--pool', dir, 'init', '--revisions-to-keep', '2'])
  t.is(first.result.status, 0, first.result.stderr)
  t.true(first.json.created)
  t.like(first.json.config, { dirPath: dir, driver: 'file-reflink', revisionsToKeep: 2, ephemeralVolatile: false })
  t.true(statSync(join(dir, 'appvms')).isDirectory())
  t.true(statSync(join(dir, 'vm-templates')).isDirectory())

  const again = await runJson(['--pool', dir, 'init'])
  t.false(again.json.created, 'a second init reopens')
  t.is(again.json.config.revisionsToKeep, 2, 'the persisted configuration wins')

  const info = await runJson(['info'], { env: { REFLINK_POOL_DIR: dir } })
  t.is(info.result.status, 0, info.result.stderr)
  t.is(info.json.volumes, 0)
  t.true(info.json.dataSize > 0 && info.json.dataUsage > 0)
  const human = await runCli(['info'], { env: { REFLINK_POOL_DIR: dir } })
  t.regex(human.stdout, /^driver: +file-reflink$/m)
  t.regex(human.stdout, /filesystem: +[\d.]+ (KiB|MiB|GiB) used of [\d.]+ (MiB|GiB)/)

  const usage = await runJson(['usage'], { env: { REFLINK_POOL_DIR: dir } })
  t.deepEqual(usage.json.volumes, [])
  t.like(usage.json.total, { size: 0, total: { files: 0, allocated: 0, shared: 0, exclusive: 0 } })
})

// --- Volume lifecycle ----------------------------------------------------------------------

test('volume create/list/info/start/stop/revisions/revert/verify/remove', async (t) => {
  const { env } = await freshPool(t)
  const vid = 'appvms/work/private'
  const created = await runJson(['volume', 'create', vid, '--size', '16M'], { env })
  t.is(created.result.status, 0, created.result.stderr)
  t.like(created.json, { vid, name: 'private', kind: 'origin', rw: true, saveOnStop: true, snapOnStart: false, source: null, size: 16 * MiB, dirty: false })

  const list = await runJson(['volume', 'list'], { env })
  t.deepEqual(list.json.map((v: { vid: string }) => v.vid), [vid])
  const table = await runCli(['volume', 'ls'], { env })
  t.regex(table.stdout, /^VID +KIND +RW +SIZE +STATE +SOURCE$/m)
  t.regex(table.stdout, /^appvms\/work\/private +origin +rw +16\.0 MiB +stopped +-$/m)

  t.is((await runCli(['volume', 'verify', vid], { env })).status, 0)

  const started = await runJson(['volume', 'start', vid], { env })
  t.is(started.result.status, 0, started.result.stderr)
  t.is(started.json.path, join(env.REFLINK_POOL_DIR, `${vid}-dirty.img`))
  const plain = await runCli(['volume', 'start', vid], { env }) // idempotent: already dirty
  t.is(plain.stdout.trim(), started.json.path, 'human start prints just the path')
  writeFileSync(started.json.path, Buffer.alloc(4096, 0xab), { flag: 'r+' })

  const dirtyRevert = await runCli(['volume', 'revert', vid], { env })
  t.is(dirtyRevert.status, 1)
  t.is(errorLineOf(dirtyRevert.stderr)?.[2], 'ERR_VOLUME_DIRTY')

  const stopped = await runJson(['volume', 'stop', vid], { env })
  t.is(stopped.result.status, 0, stopped.result.stderr)
  t.false(stopped.json.dirty)
  const revs = await runJson(['volume', 'revisions', vid], { env })
  const revNames = Object.keys(revs.json.revisions)
  t.is(revNames.length, 1, 'stop committed one revision')
  t.regex(revs.json.revisions[revNames[0]], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/)

  const info = await runJson(['volume', 'info', vid], { env })
  t.deepEqual(Object.keys(info.json.usage).sort(), ['allocated', 'exclusive', 'extents', 'shared'])
  t.deepEqual(info.json.revisions, revs.json.revisions)

  const unknownRev = await runCli(['volume', 'revert', vid, '999'], { env })
  t.is(unknownRev.status, 1)
  t.is(errorLineOf(unknownRev.stderr)?.[2], 'ERR_REVISION_NOT_FOUND')
  const reverted = await runJson(['volume', 'revert', vid, revNames[0]], { env })
  t.is(reverted.result.status, 0, reverted.result.stderr)
  t.is(reverted.json.revertedTo, revNames[0])

  const removed = await runJson(['volume', 'remove', vid], { env })
  t.deepEqual(removed.json, { vid, removed: true })
  t.deepEqual((await runJson(['volume', 'list'], { env })).json, [])
  t.false(existsSync(join(env.REFLINK_POOL_DIR, `${vid}.img`)))
  const gone = await runCli(['volume', 'info', vid], { env })
  t.is(gone.status, 1)
  t.is(errorLineOf(gone.stderr)?.[2], 'ERR_UNKNOWN_VOLUME')
})

test('snapshot volume: create with --source, start reflinks the source, verify, outdated', async (t) => {
  const { env } = await freshPool(t)
  await runCli(['volume', 'create', 'vm-templates/base/root', '--size', '8M'], { env })
  await runCli(['volume', 'import', 'vm-templates/base/root', '-'], { env, input: sampleImage() })
  const snap = await runJson(['volume', 'create', 'appvms/a/root', '--kind', 'snapshot', '--source', 'vm-templates/base/root'], { env })
  t.is(snap.result.status, 0, snap.result.stderr)
  t.like(snap.json, { kind: 'snapshot', saveOnStop: false, snapOnStart: true, source: 'vm-templates/base/root' })
  const started = await runJson(['volume', 'start', 'appvms/a/root'], { env })
  t.is(sha(readFileSync(started.json.path)), sha(sampleImage()), 'the dirty image has the source data')
  const usage = await runJson(['usage'], { env })
  const row = usage.json.volumes.find((v: { vid: string }) => v.vid === 'appvms/a/root')
  t.true(row.files.dirty.shared > 0, `strategy reflink on XFS: the snapshot shares extents (shared=${row.files.dirty.shared})`)
  t.is((await runCli(['volume', 'stop', 'appvms/a/root'], { env })).status, 0)

  const badKind = await runCli(['volume', 'create', 'appvms/b/root', '--kind', 'snapshot'], { env })
  t.is(badKind.status, 2, 'snapshot without --source is a usage error')
  t.is(errorLineOf(badKind.stderr)?.[2], 'ERR_USAGE')
})

test('resize: grow, refuse shrink without --allow-shrink, shrink with it', async (t) => {
  const { env } = await freshPool(t)
  const vid = 'appvms/r/private'
  await runCli(['volume', 'create', vid, '--size', '4M'], { env })
  const grown = await runJson(['volume', 'resize', vid, '8MiB'], { env })
  t.is(grown.result.status, 0, grown.result.stderr)
  t.is(grown.json.size, 8 * MiB)
  const refused = await runCli(['volume', 'resize', vid, '2M'], { env })
  t.is(refused.status, 1)
  t.is(errorLineOf(refused.stderr)?.[2], 'ERR_SHRINK_REFUSED')
  t.is((await runJson(['volume', 'info', vid], { env })).json.size, 8 * MiB, 'a refused shrink changes nothing')
  const shrunk = await runJson(['volume', 'resize', vid, '2M', '--allow-shrink'], { env })
  t.is(shrunk.json.size, 2 * MiB)
})

// --- Import and export through pipes and files --------------------------------------------

test('import from a pipe keeps holes; export to a pipe is byte-identical', async (t) => {
  const { env } = await freshPool(t)
  const vid = 'vm-templates/img/root'
  await runCli(['volume', 'create', vid, '--size', '8M'], { env })
  const image = sampleImage()
  const imported = await runJson(['volume', 'import', vid, '-'], { env, input: image })
  t.is(imported.result.status, 0, imported.result.stderr)
  t.is(imported.json.bytes, image.length)
  t.is(imported.result.stderr, '', 'no progress bar when stderr is not a terminal')

  const info = await runJson(['volume', 'info', vid], { env })
  t.is(info.json.size, image.length)
  t.true(info.json.usage.allocated < image.length / 2, `zero regions stayed holes: ${info.json.usage.allocated} bytes allocated of ${image.length}`)

  const exported = await runCli(['volume', 'export', vid, '-'], { env })
  t.is(exported.status, 0, exported.stderr)
  t.is(exported.stdoutBytes.length, image.length)
  t.is(sha(exported.stdoutBytes), sha(image), 'export to a pipe is byte-identical')
})

test('import from a file and export to a file: identical and sparse', async (t) => {
  const { env, dir } = await freshPool(t)
  const vid = 'appvms/f/private'
  await runCli(['volume', 'create', vid], { env })
  const src = join(dir, '..', 'in.raw')
  writeFileSync(src, sampleImage())
  // The raw file is fully allocated (zeros written): --sparse turns its zero blocks into holes.
  const imported = await runJson(['volume', 'import', vid, src, '--sparse'], { env })
  t.is(imported.result.status, 0, imported.result.stderr)
  t.is(imported.json.bytes, 8 * MiB, 'size follows the file')
  t.is(imported.json.method, 'read-write', 'zero detection reads the data')
  const dst = join(dir, '..', 'out.raw')
  const exported = await runJson(['volume', 'export', vid, dst], { env })
  t.is(exported.result.status, 0, exported.result.stderr)
  t.is(exported.json.bytes, 8 * MiB)
  t.is(sha(readFileSync(dst)), sha(sampleImage()))
  t.true(statSync(dst).blocks * 512 < 4 * MiB, 'the exported file is sparse too')

  const missing = await runCli(['volume', 'import', vid, join(dir, 'nope.raw')], { env })
  t.is(missing.status, 1)
  t.is(errorLineOf(missing.stderr)?.[2], 'ENOENT')
  const notSos = await runCli(['volume', 'create', 'appvms/f/volatile', '--kind', 'volatile', '--size', '1M'], { env })
  t.is(notSos.status, 0)
  const refused = await runCli(['volume', 'export', 'appvms/f/volatile', '-'], { env })
  t.is(refused.status, 1)
  t.is(errorLineOf(refused.stderr)?.[2], 'ERR_NOT_SAVE_ON_STOP')
  // A failed export into an existing file leaves it as it was, and no temp file behind.
  const keep = join(dir, '..', 'keep.raw')
  writeFileSync(keep, 'previous backup')
  const failed = await runCli(['volume', 'export', 'appvms/f/volatile', keep], { env })
  t.is(failed.status, 1)
  t.is(readFileSync(keep, 'utf8'), 'previous backup')
  t.deepEqual(readdirSync(join(dir, '..')).filter((n) => n.includes('~')), [])
})

// --- clone ---------------------------------------------------------------------------------

test('clone: N volumes in batches, --json summary with time and shared/exclusive space', async (t) => {
  const { env } = await freshPool(t)
  const tpl = 'vm-templates/base/root'
  await runCli(['volume', 'create', tpl, '--size', '8M'], { env })
  await runCli(['volume', 'import', tpl, '-'], { env, input: sampleImage() })
  const r = await runJson(['clone', tpl, 'appvms/c-{n}/root', '--count', '12', '--batch', '5'], { env })
  t.is(r.result.status, 0, r.result.stderr)
  t.like(r.json, { template: tpl, mode: 'copy', count: 12, batches: 3 })
  t.deepEqual(r.json.methods, { reflink: 12 }, 'the library reports reflink for every clone on XFS')
  t.is(r.json.vids[0], 'appvms/c-1/root', '{n} is not padded')
  t.is(r.json.vids[11], 'appvms/c-12/root')
  t.true(r.json.totalMs > 0 && r.json.perCloneMs > 0)
  t.deepEqual(r.json.made, r.json.vids)
  // Strategy reflink on XFS: the clones' data is shared, nothing exclusive.
  t.true(r.json.space.shared > 0, `shared ${r.json.space.shared}`)
  t.is(r.json.space.exclusive, 0, 'reflinked clones own no exclusive bytes')
  const exported = await runCli(['volume', 'export', 'appvms/c-7/root', '-'], { env })
  t.is(sha(exported.stdoutBytes), sha(sampleImage()), 'a clone holds the template data')

  const human = await runCli(['clone', tpl, 'appvms/d/root', 'appvms/e/root', '--snapshot'], { env })
  t.is(human.status, 0, human.stderr)
  t.regex(human.stdout, /^cloned: +2 × vm-templates\/base\/root \(snapshot, 1 batch\)$/m)
  t.regex(human.stdout, /^time: +[\d.]+ (µs|ms|s) total/m)
  t.regex(human.stdout, /^copy method: +none yet \(snapshots are cloned at start\)$/m)

  const exists = await runCli(['clone', tpl, 'appvms/c-{n}/root', '-n', '12'], { env })
  t.is(exists.status, 1)
  t.is(errorLineOf(exists.stderr)?.[2], 'ERR_VOLUME_EXISTS')
  const noPattern = await runCli(['clone', tpl, 'appvms/x/root', '-n', '2'], { env })
  t.is(noPattern.status, 2, '--count without {n} is a usage error')
})

// --- error details -------------------------------------------------------------------------

test('library errors: code in the line, exit 1 (2 for a malformed vid), stack only with --debug', async (t) => {
  const { env } = await freshPool(t)
  const bad = await runCli(['volume', 'create', 'appvms/../etc/x'], { env })
  t.is(bad.status, 2, 'a malformed vid is a usage error')
  t.is(errorLineOf(bad.stderr)?.[2], 'ERR_INVALID_VID')
  t.is(bad.stderr.trim().split('\n').length, 1)
  const unknown = await runCli(['volume', 'info', 'appvms/nope/root'], { env })
  t.is(unknown.status, 1, 'an unknown volume is a failure of the operation')
  t.is(errorLineOf(unknown.stderr)?.[2], 'ERR_UNKNOWN_VOLUME')
  const debug = await runCli(['volume', 'create', 'appvms/../etc/x', '--debug'], { env })
  t.is(debug.status, 2)
  t.regex(debug.stderr, /^reflink-pool: .+ \(ERR_INVALID_VID\)\n/)
  t.regex(debug.stderr, /\n\s+at /, 'a stack trace follows with --debug')
})

test('bench delegates to the harness or says clearly that it is missing', async (t) => {
  const hasBench = existsSync(join(REPO, 'ts', 'bench', 'main.ts'))
  if (hasBench) {
    // Arguments reach the harness: its own parser names the unknown scenario (and nothing is measured).
    const r = await runCli(['bench', '--only', 'no-such-scenario'])
    t.is(r.status, 2, r.stderr)
    t.regex(r.stderr, /unknown scenario no-such-scenario/)
  } else {
    const r = await runCli(['bench'])
    t.is(r.status, 1)
    t.is(errorLineOf(r.stderr)?.[2], 'ERR_BENCH_UNAVAILABLE')
  }
})

// --- the installed binary ------------------------------------------------------------------

test('bin/reflink-pool.js (compiled dist) runs the same CLI', async (t) => {
  t.true(existsSync(join(REPO, 'dist', 'cli', 'main.js')), 'dist/cli/main.js missing: run `npm run build:ts` first')
  t.true((statSync(BIN).mode & 0o111) !== 0, 'the bin is executable')
  t.regex(readFileSync(BIN, 'utf8'), /^#!\/usr\/bin\/env node\n/)
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'))
  t.is(pkg.bin?.['reflink-pool'], 'bin/reflink-pool.js')
  const { env } = await freshPool(t)
  const r = await runCli(['volume', 'list', '--json'], { env, compiled: true })
  t.is(r.status, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), [])
})
