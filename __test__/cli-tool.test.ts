// The CLI as a shell tool among its neighbours (zfs list, lvs, ls -v): volume
// list's natural order, filters and script mode; usage at 80 columns; what
// stop says it did; export and import refusing what would surprise; the same
// flag names everywhere; rounded JSON numbers; short util.inspect summaries.
// One reflink filesystem (XFS) is enough: the behaviour is the CLI's own.
import anyTest, { type TestFn } from 'ava'
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { fsSuite } from './helpers/scratch-fs'
import { runCli, runJson } from './helpers/cli-run'
import { ReflinkPool } from '../ts/index'

const MiB = 1024 * 1024
const { test, fs } = fsSuite(anyTest as TestFn, 'xfs')

async function freshPool(t: { fail(m: string): void }): Promise<{ dir: string; work: string; env: Record<string, string> }> {
  const work = mkdtempSync(join(fs().dir, 'tool-'))
  const dir = join(work, 'pool')
  const r = await runCli(['--pool', dir, 'init'])
  if (r.status !== 0) t.fail(`init failed: ${r.stderr}`)
  return { dir, work, env: { REFLINK_POOL_DIR: dir } }
}

const codeOf = (stderr: string) => /\((\w+)\)\s*$/.exec(stderr.trim())?.[1]

test('volume list: natural order, --match, --kind, --state, -H and -o', async (t) => {
  const { env } = await freshPool(t)
  const run = (args: string[]) => runCli(args, { env })
  t.is((await run(['volume', 'create', 'vm-templates/t/root', '--size', '1M'])).status, 0)
  // Named one by one: how `{n}` pads is the clone command's business.
  const made = await run(['clone', 'vm-templates/t/root', ...Array.from({ length: 11 }, (_, i) => `appvms/ci-${11 - i}/root`)])
  t.is(made.status, 0, made.stderr)
  t.is((await run(['volume', 'create', 'appvms/snap/root', '--kind', 'snapshot', '--source', 'vm-templates/t/root'])).status, 0)
  // JSON numbers are rounded in one place: ms to integers, per-item ms and seconds to 3 decimals.
  const timed = await runJson(['clone', 'vm-templates/t/root', 'appvms/timed/root'], { env })
  t.true(Number.isInteger(timed.json.totalMs), String(timed.json.totalMs))
  t.regex(timed.result.stdout, /"perCloneMs": \d+(\.\d{1,3})?,\n/)
  t.is((await run(['volume', 'start', 'appvms/ci-2/root'])).status, 0)

  const vids = (await runJson(['volume', 'list'], { env })).json.map((v: { vid: string }) => v.vid)
  t.deepEqual(vids.slice(0, 3), ['appvms/ci-1/root', 'appvms/ci-2/root', 'appvms/ci-3/root'], 'ci-2 before ci-10')
  t.true(vids.indexOf('appvms/ci-9/root') < vids.indexOf('appvms/ci-10/root'))

  const matched = await run(['volume', 'list', '--match', 'appvms/ci-1*/root', '-H', '-o', 'vid,state'])
  t.is(matched.status, 0, matched.stderr)
  t.is(matched.stdout, 'appvms/ci-1/root\tstopped\nappvms/ci-10/root\tstopped\nappvms/ci-11/root\tstopped\n', 'no header, tabs, natural order')

  const running = await run(['volume', 'list', '--state', 'running', '-H', '-o', 'VID'])
  t.is(running.stdout, 'appvms/ci-2/root\n')
  const snaps = await runJson(['volume', 'list', '--kind', 'snapshot'], { env })
  t.deepEqual(snaps.json.map((v: { vid: string }) => v.vid), ['appvms/snap/root'])
  const none = await run(['volume', 'list', '--match', 'nothing/*'])
  t.is(none.stdout.trim(), 'No volumes.')

  const header = (await run(['volume', 'list', '-o', 'size,vid'])).stdout.split('\n')[0]
  t.regex(header, /^ *SIZE {2}VID$/)
  for (const bad of [['-o', 'vid,colour'], ['--kind', 'weird'], ['--state', 'sleeping'], ['--match', '[z-a]']]) {
    const r = await run(['volume', 'list', ...bad])
    t.is(r.status, 2, `${bad.join(' ')}: ${r.stderr}`)
    t.is(codeOf(r.stderr), 'ERR_USAGE')
  }
  t.regex((await run(['volume', 'list', '-o', 'colour'])).stderr, /unknown column "colour" for -o: use vid,kind,rw,size,state,source/)
})

test('usage fits 80 columns: the vids stay whole, other columns are left out and named', async (t) => {
  const { env } = await freshPool(t)
  const long = 'appvms/a-long-vm-name-of-30-characters/private'
  t.is((await runCli(['volume', 'create', long, '--size', '4M'], { env })).status, 0)
  t.is((await runCli(['volume', 'create', 'vm-templates/t/root', '--size', '4M'], { env })).status, 0)
  const wide = await runCli(['usage'], { env })
  t.true(wide.stdout.split('\n')[0].length > 80, 'without a width, lines stay whole (a pipe)')
  const r = await runCli(['usage'], { env: { ...env, COLUMNS: '80' } })
  t.is(r.status, 0, r.stderr)
  const lines = r.stdout.split('\n')
  for (const line of lines) t.true(line.length <= 80, `${line.length} > 80: ${line}`)
  t.true(lines.some((l) => l.startsWith(long + ' ')), 'the long vid is whole')
  t.regex(lines[0], /^VID +.*ALLOCATED +EXCLUSIVE$/)
  t.notRegex(lines[0], /IMPORT|PRECACHE/, 'the rare kinds go first')
  t.regex(r.stdout, /Left out to fit 80 columns: [A-Z,\s]*IMPORT/)
  t.regex(lines[0], /SIZE/, 'the volume size stays while the kinds can go')
})

test('volume stop says whether it committed; --json has committed; a discarded resize is named', async (t) => {
  const { env } = await freshPool(t)
  const vid = 'appvms/s/root'
  t.is((await runCli(['volume', 'create', vid, '--size', '1M'], { env })).status, 0)
  const idle = await runCli(['volume', 'stop', vid], { env })
  t.is(idle.stdout.trim(), `${vid}: nothing to commit (it was not running)`)
  t.is((await runJson(['volume', 'stop', vid], { env })).json.committed, false)

  t.is((await runCli(['volume', 'start', vid], { env })).status, 0)
  const first = await runCli(['volume', 'stop', vid], { env })
  t.regex(first.stdout, /^appvms\/s\/root: committed \(revision (\d+) holds the state before it\)$/m)
  const revision = Number(/revision (\d+)/.exec(first.stdout)![1])
  t.deepEqual(Object.keys((await runJson(['volume', 'revisions', vid], { env })).json.revisions), [String(revision)])

  t.is((await runCli(['volume', 'start', vid], { env })).status, 0)
  const json = await runJson(['volume', 'stop', vid], { env })
  t.like(json.json, { vid, committed: true, discarded: false, running: false })
  t.is(typeof json.json.revision, 'number')

  t.is((await runCli(['volume', 'start', vid], { env })).status, 0)
  t.is((await runCli(['volume', 'resize', vid, '2M'], { env })).status, 0)
  const dropped = await runCli(['volume', 'stop', vid, '--discard'], { env })
  t.is(dropped.status, 0, dropped.stderr)
  t.is(dropped.stdout.trim(), `${vid}: its changes were discarded; the resize to 2.00 MiB is dropped too (back to 1.00 MiB)`)
  t.is((await runJson(['volume', 'info', vid], { env })).json.size, MiB)

  const snap = 'appvms/v/volatile'
  t.is((await runCli(['volume', 'create', snap, '--kind', 'volatile', '--size', '1M'], { env })).status, 0)
  t.is((await runCli(['volume', 'start', snap], { env })).status, 0)
  t.regex((await runCli(['volume', 'stop', snap], { env })).stdout, /a volatile volume keeps nothing/)
})

test('export refuses an existing file without --force and never makes directories', async (t) => {
  const { env, work } = await freshPool(t)
  const vid = 'appvms/e/root'
  t.is((await runCli(['volume', 'create', vid, '--size', '1M'], { env })).status, 0)
  const target = join(work, 'out.raw')
  writeFileSync(target, 'precious')
  const refused = await runCli(['volume', 'export', vid, target], { env })
  t.is(refused.status, 1)
  t.is(codeOf(refused.stderr), 'EEXIST')
  t.regex(refused.stderr, /refusing to overwrite .*out\.raw: it exists .*add --force/)
  t.is(readFileSync(target, 'utf8'), 'precious', 'the file is untouched')
  const forced = await runCli(['volume', 'export', vid, target, '--force'], { env })
  t.is(forced.status, 0, forced.stderr)
  t.is(statSync(target).size, MiB)

  const nested = join(work, 'no', 'such', 'dir', 'out.raw')
  const missing = await runCli(['volume', 'export', vid, nested], { env })
  t.is(missing.status, 1)
  t.is(codeOf(missing.stderr), 'ENOENT')
  t.regex(missing.stderr, /the directory .*no\/such\/dir does not exist \(it is not created\)/)
  t.false(existsSync(join(work, 'no')), 'no directory was made')
})

test('import refuses qcow2, vmdk, vhdx and vdi headers unless --format raw, naming qemu-img convert', async (t) => {
  const { env, work } = await freshPool(t)
  const vid = 'vm-templates/i/root'
  t.is((await runCli(['volume', 'create', vid, '--size', '1M'], { env })).status, 0)
  const headers: Array<[string, Buffer, number]> = [
    ['qcow2', Buffer.from('QFI\xfb\0\0\0\x03', 'latin1'), 0],
    ['vmdk', Buffer.from('KDMV'), 0],
    ['vmdk', Buffer.from('# Disk DescriptorFile\nversion=1\n'), 0],
    ['vhdx', Buffer.from('vhdxfile'), 0],
    ['vdi', Buffer.from([0x7f, 0x10, 0xda, 0xbe]), 64],
  ]
  for (const [format, magic, offset] of headers) {
    const file = join(work, `disk.${format}`)
    const image = Buffer.alloc(MiB)
    magic.copy(image, offset)
    writeFileSync(file, image)
    const r = await runCli(['volume', 'import', vid, file], { env })
    t.is(r.status, 1, `${format}: ${r.stderr}`)
    t.is(codeOf(r.stderr), 'ERR_NOT_RAW_IMAGE')
    t.true(r.stderr.includes(`it is a ${format} image, not a raw one`), r.stderr)
    t.true(r.stderr.includes(`qemu-img convert -f ${format} -O raw ${file} ${join(work, 'disk.raw')}`), r.stderr)
  }
  t.is((await runJson(['volume', 'info', vid], { env })).json.usage.allocated, 0, 'nothing was imported')
  const forced = await runJson(['volume', 'import', vid, join(work, 'disk.qcow2'), '--format', 'raw'], { env })
  t.is(forced.result.status, 0, forced.result.stderr)
  // One place rounds JSON numbers: seconds to 3 decimals.
  t.regex(forced.result.stdout, /"seconds": \d+(\.\d{1,3})?,?\n/)
  const plain = join(work, 'plain.raw')
  writeFileSync(plain, Buffer.alloc(MiB, 1))
  t.is((await runCli(['volume', 'import', vid, plain], { env })).status, 0, 'a raw image imports as before')
})

test('--read-only everywhere, --ro as its alias', async (t) => {
  const { env } = await freshPool(t)
  t.false((await runJson(['volume', 'create', 'appvms/a/root', '--size', '1M', '--ro'], { env })).json.rw)
  t.false((await runJson(['volume', 'create', 'appvms/b/root', '--size', '1M', '--read-only'], { env })).json.rw)
  t.true((await runJson(['volume', 'config', 'appvms/a/root', '--read-write'], { env })).json.rw)
  t.false((await runJson(['volume', 'config', 'appvms/a/root', '--read-only'], { env })).json.rw)
  t.true((await runJson(['volume', 'config', 'appvms/a/root', '--rw'], { env })).json.rw)
  const both = await runCli(['volume', 'config', 'appvms/a/root', '--rw', '--ro'], { env })
  t.is(both.status, 2, both.stderr)
})

test('util.inspect of a volume and a pool is a short summary', async (t) => {
  const { dir, env } = await freshPool(t)
  t.is((await runCli(['volume', 'create', 'appvms/x/root', '--size', '1M'], { env })).status, 0)
  const pool = await ReflinkPool.open({ dirPath: dir })
  try {
    const v = await pool.loadVolume('appvms/x/root')
    const text = inspect(v)
    t.is(text, "ReflinkVolume { vid: 'appvms/x/root', rw: true, saveOnStop: true, snapOnStart: false, source: null, revisionsToKeep: 1 }")
    const nested = inspect({ v }, { depth: 5 })
    t.true(nested.length < 200 && nested.includes(text), `nested, it stays the summary: ${nested}`)
    t.regex(inspect(pool), /^ReflinkPool \{ name: '[^']+', dirPath: '[^']+', revisionsToKeep: 1, closed: false \}$/)
  } finally {
    await pool.close()
  }
  t.regex(inspect(pool), /closed: true/)
})
