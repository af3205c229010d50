// The CLI as a user meets it, through the real binary: closed pipes, states and
// sizes of every kind, usage per file kind, CLI-worded messages and exit
// statuses, GNU size units, the guards on destructive commands, progress with
// rate and ETA on a terminal, colour rules and tables that fit the terminal.
// Pool-independent cases run anywhere; the rest on loop-mounted XFS (reflink)
// and ext4 (no reflink) as root.
import anyTest, { type TestFn } from 'ava'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ReflinkPool } from '../ts/index'
import { fsSuite } from './helpers/scratch-fs'
import { BIN, CLI_ENTRY, REPO, USE_COMPILED, runCli, runJson } from './helpers/cli-run'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const xfs = fsSuite(anyTest as TestFn, 'xfs')
const ext4 = fsSuite(anyTest as TestFn, 'ext4')

/** The shell words that run the CLI (compiled when fresh, else through tsx). */
const CLI = USE_COMPILED
  ? `${process.execPath} ${BIN}`
  : `${process.execPath} --import=${require.resolve('tsx')} ${CLI_ENTRY}`

/** Run a shell pipeline; returns the exit status of the CLI (first command) and stderr. */
function pipeline(cmd: string, env: Record<string, string> = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-c', `set -o pipefail; ${cmd}; echo "status=\${PIPESTATUS[0]}" >&3`], {
    cwd: REPO,
    env: { ...process.env, FORCE_COLOR: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    encoding: 'utf8',
  })
  const fd3 = (r.output[3] as unknown as string) ?? ''
  return { status: Number(/status=(\d+)/.exec(fd3)?.[1] ?? -1), stdout: r.stdout, stderr: r.stderr }
}

/** Run `cmd` on a pseudo-terminal of `cols` columns (util-linux `script`); returns what the terminal showed. */
function onTerminal(cmd: string, opts: { cols?: number; env?: Record<string, string> } = {}): string {
  const env: Record<string, string | undefined> = { ...process.env, TERM: 'xterm', ...opts.env }
  for (const k of ['FORCE_COLOR', 'NO_COLOR']) if (!opts.env?.[k]) delete env[k]
  const r = spawnSync('script', ['-qc', `stty cols ${opts.cols ?? 120}; ${cmd}`, '/dev/null'], {
    cwd: REPO,
    env: env as NodeJS.ProcessEnv,
    encoding: 'utf8',
    maxBuffer: 64 * MiB,
  })
  if (r.error) throw r.error
  return r.stdout
}

function errorLine(stderr: string): { message: string; code: string } | null {
  const m = /^reflink-pool: (.+) \((\w+)\)$/m.exec(stderr.trim())
  return m ? { message: m[1], code: m[2] } : null
}

async function pool(base: string, args: string[] = []): Promise<{ dir: string; env: Record<string, string> }> {
  const dir = join(mkdtempSync(join(base, 'cli-')), 'pool')
  const r = await runCli(['--pool', dir, 'init', ...args])
  if (r.status !== 0) throw new Error(`init failed: ${r.stderr}`)
  return { dir, env: { REFLINK_POOL_DIR: dir } }
}

// --- 1. closed pipes -------------------------------------------------------------------------

anyTest('a closed stdout pipe ends every command quietly (exit 0 or 141, no stack trace)', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'rp-pipe-')), 'pool')
  const lib = await ReflinkPool.open({ dirPath: dir, setupCheck: false })
  for (let i = 0; i < 330; i++) await lib.createVolume({ vid: `appvms/vm-${i}/volatile`, name: 'volatile', kind: 'volatile', size: GiB })
  await lib.close()
  const head = pipeline(`${CLI} --pool ${dir} volume list --json | head -3`)
  t.true([0, 141].includes(head.status), `volume list --json | head -3: status ${head.status}: ${head.stderr}`)
  t.is(head.stderr, '')
  t.is(head.stdout.split('\n').length, 4)
  for (const args of [['--help'], ['--version'], ['volume', 'list'], ['volume', 'list', '--json'], ['info'], ['usage'], ['usage', '--json'], ['volume', 'info', 'appvms/vm-1/volatile'], ['volume', '--help']]) {
    // `true` exits at once: the CLI writes into a pipe nobody reads.
    const r = pipeline(`${CLI} --pool ${dir} ${args.join(' ')} | true`)
    t.true([0, 141].includes(r.status), `${args.join(' ')} | true: status ${r.status}`)
    t.notRegex(r.stderr, /at |Error|EPIPE/, `${args.join(' ')}: quiet`)
  }
})

// --- 5, 6. words, units, exit statuses (no pool needed) ----------------------------------------

anyTest('usage mistakes exit 2; commander\'s "Did you mean" hint is kept', async (t) => {
  const typo = await runCli(['volume', 'lsit'])
  t.is(typo.status, 2)
  t.deepEqual(errorLine(typo.stderr), { message: "unknown command 'lsit' (Did you mean list?)", code: 'ERR_USAGE' })
  const opt = await runCli(['volume', 'create', 'appvms/a/b', '--szie', '1G'])
  t.is(opt.status, 2)
  t.regex(opt.stderr, /Did you mean --size\?/)
  const noSource = await runCli(['--pool', '/nonexistent', 'volume', 'create', 'appvms/a/root', '--kind', 'snapshot'])
  t.is(noSource.status, 2)
  t.deepEqual(errorLine(noSource.stderr), { message: '--kind snapshot needs --source <vid>: the volume it starts from', code: 'ERR_USAGE' })
  const gb = await runCli(['--pool', '/nonexistent', 'volume', 'create', 'appvms/a/root', '--size', '10gb'])
  t.is(gb.status, 2, '10gb is not a GNU size')
  t.regex(gb.stderr, /not a size: "10gb"/)
})

anyTest('--help documents the GNU size units', async (t) => {
  for (const cmd of [['volume', 'create'], ['volume', 'resize'], ['volume', 'import']]) {
    const r = await runCli([...cmd, '--help'])
    t.regex(r.stdout.replace(/\s+/g, ' '), /K M G T \(or KiB MiB GiB TiB\) are powers of 1024, KB MB GB TB powers of 1000/, cmd.join(' '))
  }
})

anyTest('colour: the error line is red only when FORCE_COLOR says so or on a terminal; NO_COLOR and pipes stay plain', async (t) => {
  const RED = '\u001b[31m'
  const plain = await runCli(['volume', 'lsit'], { env: { FORCE_COLOR: undefined, NO_COLOR: undefined } })
  t.false(plain.stderr.includes('\u001b['), 'a pipe gets no colour')
  const forced = await runCli(['volume', 'lsit'], { env: { FORCE_COLOR: '1' } })
  t.true(forced.stderr.startsWith(`${RED}reflink-pool: unknown command`), forced.stderr)
  const tty = onTerminal(`${CLI} volume lsit`)
  t.true(tty.includes(`${RED}reflink-pool: unknown command`), `a terminal gets colour: ${JSON.stringify(tty)}`)
  const noColor = onTerminal(`${CLI} volume lsit`, { env: { NO_COLOR: '1' } })
  t.false(noColor.includes(RED), 'NO_COLOR turns it off on a terminal')
  t.regex(noColor, /reflink-pool: unknown command/)
})

// --- 3, 6, 7, 8 on XFS -------------------------------------------------------------------------

xfs.test('STATE is running for every kind; --json running/dirty; a stopped snapshot shows its source\'s size', async (t) => {
  const { env } = await pool(xfs.fs().dir)
  const run = (args: string[]) => runCli(args, { env })
  t.is((await run(['volume', 'create', 'vm-templates/t/root', '--size', '1G'])).status, 0)
  t.is((await run(['volume', 'create', 'appvms/s/root', '--kind', 'snapshot', '--source', 'vm-templates/t/root'])).status, 0)
  t.is((await run(['volume', 'create', 'appvms/s/volatile', '--kind', 'volatile', '--size', '64M'])).status, 0)
  const stopped = await runJson(['volume', 'info', 'appvms/s/root'], { env })
  t.like(stopped.json, { running: false, dirty: false, size: GiB }, 'the size a VM started now would see')
  for (const vid of ['vm-templates/t/root', 'appvms/s/root', 'appvms/s/volatile']) t.is((await run(['volume', 'start', vid])).status, 0)
  const list = await runJson(['volume', 'list'], { env })
  for (const v of list.json) t.like(v, { running: true, dirty: true }, v.vid)
  t.deepEqual(list.json.map((v: { vid: string; size: number }) => [v.vid, v.size]), [
    ['appvms/s/root', GiB], ['appvms/s/volatile', 64 * MiB], ['vm-templates/t/root', GiB],
  ])
  const table = await run(['volume', 'list'])
  t.regex(table.stdout, /^appvms\/s\/root +snapshot +rw +1\.00 GiB +running +vm-templates\/t\/root$/m)
  t.regex(table.stdout, /^appvms\/s\/volatile +volatile +rw +64\.0 MiB +running +-$/m)
  for (const vid of ['appvms/s/root', 'appvms/s/volatile', 'vm-templates/t/root']) t.is((await run(['volume', 'stop', vid])).status, 0)
  const after = await runJson(['volume', 'list'], { env })
  for (const v of after.json) t.like(v, { running: false, dirty: false }, v.vid)
})

xfs.test('sizes: 10G and 10GiB are 2^30-based, 10GB is 10^9; printed in binary units', async (t) => {
  const { env } = await pool(xfs.fs().dir)
  for (const [size, bytes] of [['10G', 10 * GiB], ['10GiB', 10 * GiB], ['10GB', 10e9], ['4k', 4096], ['4KB', 4000], ['1048576', MiB]] as const) {
    const vid = `appvms/size-${size.toLowerCase()}/volatile`
    const r = await runJson(['volume', 'create', vid, '--kind', 'volatile', '--size', size], { env })
    t.is(r.json.size, bytes, size)
  }
  const human = await runCli(['volume', 'list'], { env })
  t.regex(human.stdout, /^appvms\/size-10gb\/volatile +volatile +rw +9\.31 GiB/m)
  t.regex(human.stdout, /^appvms\/size-10g\/volatile +volatile +rw +10\.0 GiB/m)
})

xfs.test('guards: remove of a running volume, a shrinking import and a stop under a loop device need a flag', async (t) => {
  const { env, dir } = await pool(xfs.fs().dir)
  const run = (args: string[]) => runCli(args, { env })
  const vid = 'appvms/g/private'
  t.is((await run(['volume', 'create', vid, '--size', '1G'])).status, 0)

  // import smaller than the volume
  const small = join(dir, '..', 'small.raw')
  writeFileSync(small, Buffer.alloc(10 * MiB, 1))
  const shrink = await run(['volume', 'import', vid, small])
  t.is(shrink.status, 1)
  t.deepEqual(errorLine(shrink.stderr), {
    message: `refusing to shrink ${vid} from 1.00 GiB to 10.0 MiB: the data past 10.0 MiB would be lost; add --allow-shrink to do it anyway`,
    code: 'ERR_SHRINK_REFUSED',
  })
  t.is((await runJson(['volume', 'info', vid], { env })).json.size, GiB, 'the refused import changed nothing')
  const allowed = await runJson(['volume', 'import', vid, small, '--allow-shrink'], { env })
  t.is(allowed.result.status, 0, allowed.result.stderr)
  t.is((await runJson(['volume', 'info', vid], { env })).json.size, 10 * MiB)

  // remove while running
  const started = await runJson(['volume', 'start', vid], { env })
  const removeRunning = await run(['volume', 'remove', vid])
  t.is(removeRunning.status, 1)
  t.is(errorLine(removeRunning.stderr)?.code, 'ERR_VOLUME_DIRTY')
  t.regex(removeRunning.stderr, /while it is running: stop it first \(reflink-pool volume stop appvms\/g\/private\) or add --force/)

  // stop while a loop device uses the dirty image
  const device = execFileSync('losetup', ['--find', '--show', started.json.path], { encoding: 'utf8' }).trim()
  try {
    const stop = await run(['volume', 'stop', vid])
    t.is(stop.status, 1)
    t.is(errorLine(stop.stderr)?.code, 'ERR_VOLUME_IN_USE')
    t.true(stop.stderr.includes(`still backs ${device}`), stop.stderr)
    t.regex(stop.stderr, /losetup -d .* or add --force/)
    t.true((await runJson(['volume', 'info', vid], { env })).json.running, 'the refused stop changed nothing')
  } finally {
    execFileSync('losetup', ['-d', device])
  }
  t.is((await run(['volume', 'stop', vid])).status, 0, 'after detaching, stop works')
  t.is((await run(['volume', 'start', vid])).status, 0)
  t.is((await run(['volume', 'remove', vid, '--force'])).status, 0, '--force removes a running volume')
  t.is((await run(['volume', 'info', vid])).status, 1)
})

xfs.test('a user who may not enter the pool (0700, another owner) is told whose it is, not offered an init', async (t) => {
  const { env, dir } = await pool(xfs.fs().dir)
  // The pool belongs to another user; this root runs without the capabilities
  // that bypass permissions, so it is refused as that other user would be
  // (and can still read this checkout, whatever its path).
  execFileSync('chown', ['-R', '65534:65534', dir])
  const asOther = `setpriv --bounding-set=-dac_override,-dac_read_search ${CLI}`
  for (const args of ['volume list', 'info', 'init']) {
    const r = pipeline(`${asOther} ${args}`, env)
    t.is(r.status, 1, args)
    t.deepEqual(errorLine(r.stderr), { message: `permission denied: cannot enter the pool ${dir} (owner uid 65534, mode 0700); run as its owner or root`, code: 'EACCES' }, args)
  }
})

xfs.test('a directory on stdin is named as one for import - and receive (Node would read it as an empty stream)', async (t) => {
  const { env } = await pool(xfs.fs().dir)
  const vid = 'vm-templates/s/root'
  t.is((await runCli(['volume', 'create', vid, '--size', '1M'], { env })).status, 0)
  for (const args of [`volume import ${vid} -`, `volume receive ${vid}`]) {
    const r = pipeline(`${CLI} ${args} < /tmp`, env)
    t.is(r.status, 2, args)
    t.deepEqual(errorLine(r.stderr)?.code, 'ERR_USAGE', args)
    t.regex(r.stderr, /stdin is a directory/, args)
  }
})

xfs.test('messages speak CLI: flags, human sizes, the kind; never the library\'s option names', async (t) => {
  const { env, dir } = await pool(xfs.fs().dir)
  const run = (args: string[]) => runCli(args, { env })
  await run(['volume', 'create', 'vm-templates/m/root', '--size', '1G'])
  await run(['volume', 'create', 'appvms/m/root', '--kind', 'snapshot', '--source', 'vm-templates/m/root'])
  const shrink = await run(['volume', 'resize', 'vm-templates/m/root', '10M'])
  t.is(errorLine(shrink.stderr)?.message, 'refusing to shrink vm-templates/m/root from 1.00 GiB to 10.0 MiB: the data past 10.0 MiB would be lost; add --allow-shrink to do it anyway')
  const img = join(dir, '..', 'img.raw')
  writeFileSync(img, Buffer.alloc(MiB, 2))
  const snapImport = await run(['volume', 'import', 'appvms/m/root', img])
  t.is(snapImport.status, 1)
  t.is(errorLine(snapImport.stderr)?.code, 'ERR_NOT_SAVE_ON_STOP')
  t.regex(snapImport.stderr, /cannot import appvms\/m\/root: it is a snapshot volume, which keeps no committed data/)
  const unknown = await run(['volume', 'start', 'appvms/none/root'])
  t.is(errorLine(unknown.stderr)?.message, 'no volume appvms/none/root in this pool (see: reflink-pool volume list)')
  for (const r of [shrink, snapImport, unknown]) {
    t.notRegex(r.stderr, /allowShrink|setupCheck|importStream|\{ |\d{6,} bytes/, r.stderr)
    t.notRegex(r.stderr, /\(ERR_\w+\).*\(ERR_\w+\)|: ERR_/, 'the code is said once')
  }
})

xfs.test('progress on a terminal: bar, rate and ETA; tables fit the terminal width', async (t) => {
  const { env, dir } = await pool(xfs.fs().dir)
  await runCli(['volume', 'create', 'vm-templates/p/root', '--size', '48M'], { env })
  // A producer that takes ~2.4 s: the bar is drawn many times with a measured rate.
  const feed = `for i in $(seq 12); do head -c 4194304 /dev/urandom; sleep 0.2; done`
  const screen = onTerminal(`${feed} | ${CLI} --pool ${dir} volume import vm-templates/p/root - --size 48M`)
  const frames = screen.split('\r').filter((f) => f.includes('import vm-templates/p/root ['))
  t.true(frames.length >= 5, `${frames.length} frames drawn`)
  const mid = frames.find((f) => /ETA \d+s/.test(f))
  t.truthy(mid, `a frame with an ETA: ${frames.slice(0, 6).join(' | ')}`)
  t.regex(mid ?? '', /\[#*\.+\] +\d+% {2}[\d.]+ MiB\/48\.0 MiB {2}[\d.]+ (KiB|MiB)\/s {2}ETA \d+s/)
  t.regex(screen, /Imported 48\.0 MiB into vm-templates\/p\/root/)

  for (let i = 0; i < 3; i++) {
    await runCli(['volume', 'create', `appvms/a-long-vm-name-narrow-${i}/private`, '--size', '1M'], { env })
  }
  const narrow = onTerminal(`${CLI} --pool ${dir} volume list`, { cols: 60 })
  const lines = narrow.split(/\r?\n/).filter((l) => l.trim())
  t.true(lines.length >= 5)
  for (const line of lines) t.true(line.length <= 60, `fits 60 columns: ${JSON.stringify(line)}`)
  // The vid is never cut (it is what the next command needs); other columns are left out first.
  t.regex(narrow, /^appvms\/a-long-vm-name-narrow-0\/private +1\.00 MiB +stopped/m)
  t.notRegex(narrow, /SOURCE|KIND/)
  const piped = await runCli(['volume', 'list'], { env })
  t.regex(piped.stdout, /^VID +KIND +RW +SIZE +STATE +SOURCE$/m, 'a pipe gets every column')
})

// --- 4. usage per kind of file, and what reflink means ----------------------------------------

async function originWithData(env: Record<string, string>, dir: string, vid: string): Promise<void> {
  await runCli(['volume', 'create', vid, '--size', '16M'], { env })
  const img = join(dir, '..', 'data.raw')
  writeFileSync(img, Buffer.alloc(16 * MiB, 7))
  const r = await runCli(['volume', 'import', vid, img], { env })
  if (r.status !== 0) throw new Error(r.stderr)
}

ext4.test('usage without reflink counts clean, precache, revisions and dirty; info says copies cost space and time', async (t) => {
  const { env, dir } = await pool(ext4.fs().dir, ['--no-setup-check'])
  const vid = 'vm-templates/u/root'
  await originWithData(env, dir, vid)
  t.is((await runCli(['volume', 'start', vid], { env })).status, 0)
  const usage = await runJson(['usage'], { env })
  const row = usage.json.volumes.find((v: { vid: string }) => v.vid === vid)
  t.is(row.files.clean.allocated, 16 * MiB)
  t.is(row.files.precache.files, 0, 'no precache without reflink')
  t.is(row.files.dirty.allocated, 16 * MiB)
  t.is(row.files.revisions.files, 1, 'the import committed over the empty image: one revision')
  t.true(row.total.allocated >= 32 * MiB, `every copy is counted (${row.total.allocated})`)
  t.is(row.total.shared, 0, 'nothing shared without reflink')
  t.is((await runCli(['volume', 'stop', vid], { env })).status, 0)
  const stopped = (await runJson(['usage'], { env })).json.volumes.find((v: { vid: string }) => v.vid === vid)
  t.is(stopped.files.precache.files, 0, 'a stopped origin keeps no precache without reflink')
  t.is(stopped.files.clean.allocated, 16 * MiB)
  t.is(stopped.files.revisions.allocated, 16 * MiB, 'the revision is the replaced image itself (a hard link, no copy)')
  const info1 = await runCli(['volume', 'info', vid], { env })
  t.regex(info1.stdout, /^all its files: +clean 16\.0 MiB, 1 revision 16\.0 MiB: 32\.0 MiB allocated \(0 B shared, 32\.0 MiB exclusive\)$/m)
  const human = await runCli(['usage'], { env })
  t.regex(human.stdout, /^VID +SIZE +CLEAN +PRECACHE +REVISIONS +BASES +DIRTY +IMPORT +ALLOCATED +SHARED +EXCLUSIVE$/m)
  t.regex(human.stdout, /^vm-templates\/u\/root +16\.0 MiB +16\.0 MiB +- +[\d.]+ \w+ +- +- +- +[\d.]+ MiB +0 B +[\d.]+ MiB$/m)
  const info = await runJson(['info'], { env })
  t.false(info.json.reflink)
  t.regex((await runCli(['info'], { env })).stdout, /^reflink: +no: every clone and start is a full sparse copy .*revisions are hard links .*twice \(clean \+ dirty\)/m)
})

xfs.test('usage with reflink: the same files, shared; info says clones are metadata-only', async (t) => {
  const { env, dir } = await pool(xfs.fs().dir)
  const vid = 'vm-templates/u/root'
  await originWithData(env, dir, vid)
  const imported = (await runJson(['usage'], { env })).json.volumes.find((v: { vid: string }) => v.vid === vid)
  t.is(imported.files.precache.files, 0, 'an import makes no precache')
  t.is(imported.files.revisions.allocated, 0, 'the revision of the empty image before the import holds no data')
  for (const cmd of ['start', 'stop']) t.is((await runCli(['volume', cmd, vid], { env })).status, 0)
  const row = (await runJson(['usage'], { env })).json.volumes.find((v: { vid: string }) => v.vid === vid)
  t.is(row.files.clean.allocated, 16 * MiB)
  t.is(row.files.precache.allocated, 16 * MiB, 'a stop makes a fresh precache')
  t.is(row.files.clean.shared, 16 * MiB, 'clean and precache share their extents')
  const info = await runJson(['info'], { env })
  t.true(info.json.reflink)
  t.regex((await runCli(['info'], { env })).stdout, /^reflink: +yes: clones, starts and revisions share blocks/m)
})

ext4.test('init on a filesystem without reflink names --no-setup-check', async (t) => {
  const dir = join(mkdtempSync(join(ext4.fs().dir, 'cli-')), 'pool')
  const r = await runCli(['--pool', dir, 'init'])
  t.is(r.status, 1)
  t.is(errorLine(r.stderr)?.code, 'ERR_REFLINK_UNSUPPORTED')
  t.regex(r.stderr, /cannot reflink: .* add --no-setup-check to accept full copies/)
  t.notRegex(r.stderr, /setupCheck/)
})
