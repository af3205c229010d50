// A receive and the other writers of a volume (docs/design.md §8.5). A receive never
// takes over an import in progress: with another process's importData open it is refused
// (ERR_VOLUME_BUSY) and that import still commits; a receive that runs while another
// process asks for an import and writes into every path it is handed commits exactly the
// sender's bytes. An abort or Ctrl-C interrupts a receive (and a stream import) that
// waits on a silent sender within 1 s, exit 130, nothing left, the stream not blamed.
import test from 'ava'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { ReflinkPool, type ReflinkVolume } from '../ts/index'
import { fsSuite } from './helpers/scratch-fs'
import { apply, chunks, collect, sha256 } from './helpers/send-suite'
import { MiB, snapshotState, snapshotTree } from './helpers/pool-fixture'
import { runCli, runJson, spawnCli } from './helpers/cli-run'
import { within } from './helpers/within'

const { test: fsTest, fs } = fsSuite(test, 'xfs')
const SIZE = 8 * MiB
const VID = 'vm-templates/v/root'
const CHILD = join(__dirname, 'helpers', 'send-child.ts')
const clean = (dir: string) => join(dir, `${VID}.img`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
let seq = 0

/** A sender volume with data, its full stream, and an empty receiver volume in another pool. */
async function pair(): Promise<{ a: ReflinkVolume; b: ReflinkVolume; full: Buffer }> {
  const n = seq++
  const a = await (await ReflinkPool.open({ dirPath: join(fs().dir, `a${n}`), revisionsToKeep: 3 })).createVolume({ vid: VID, size: SIZE, saveOnStop: true })
  const b = await (await ReflinkPool.open({ dirPath: join(fs().dir, `b${n}`), revisionsToKeep: 3 })).createVolume({ vid: VID, size: SIZE, saveOnStop: true })
  apply(await a.start(), [{ kind: 'write', offset: 0, length: 5 * MiB, seed: 1 }])
  await a.stop()
  return { a, b, full: await collect(a.send()) }
}

function child(...args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import=tsx', CHILD, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
}

/** The first line of `p`'s stdout matching `re` (its first group, else the line). */
function line(p: ChildProcessWithoutNullStreams, re: RegExp): Promise<string> {
  let out = ''
  let err = ''
  p.stderr.on('data', (d: Buffer) => (err += d))
  return within(
    new Promise((resolve, reject) => {
      p.stdout.on('data', (d: Buffer) => {
        out += d
        const m = out.split('\n').map((l) => re.exec(l)).find(Boolean)
        if (m) resolve(m[1] ?? m[0])
      })
      p.on('exit', (code) => reject(new Error(`child exited (${code}) before printing ${re}: ${err}`)))
    }),
    30_000,
    `child output ${re}`,
  )
}

/** The tree without the import file another process keeps writing into. */
function treeWithout(dir: string, rel: string) {
  const tree = snapshotTree(dir)
  delete tree[rel]
  return tree
}

fsTest.serial('xfs: a receive never takes over another process\'s import; one that runs while another process writes into every import path commits exactly the sender\'s bytes', async (t) => {
  const { a, b, full } = await pair()
  const bDir = b.pool.dirPath
  const want = sha256(clean(a.pool.dirPath))

  // Another process holds importData's path and writes into it: the receive is refused.
  const first = child('import-writer', bDir, VID, String(SIZE))
  const path = await line(first, /^path (.*)$/)
  t.is(path, join(bDir, 'vm-templates/v/root-import.img'))
  await sleep(20)
  const before = treeWithout(bDir, 'vm-templates/v/root-import.img')
  await t.throwsAsync(b.receive(Readable.from(chunks(full))), { code: 'ERR_VOLUME_BUSY', message: /import into it is in progress/ })
  t.deepEqual(treeWithout(bDir, 'vm-templates/v/root-import.img'), before, 'the refused receive changed nothing')
  // ... and that process's import is not lost.
  first.stdin.write('end\n')
  await line(first, /^committed$/)
  const imported = readFileSync(clean(bDir))
  t.true(imported.subarray(0, 4096).every((x) => x === 0x41) && imported.subarray(4096).every((x) => x === 0), 'the other process\'s import is committed as written')

  // A receive runs; meanwhile another process asks for an import (it waits for the lock)
  // and writes into every path it is handed.
  const second = child('import-writer', bDir, VID, String(SIZE))
  const ready = line(second, /^ready$/)
  let halfway: () => void = () => {}
  const atHalf = new Promise<void>((r) => (halfway = r))
  async function* slowly(): AsyncGenerator<Buffer> {
    const parts = chunks(full)
    for (let i = 0; i < parts.length; i++) {
      if (i === parts.length >> 1) {
        halfway()
        await ready
        await sleep(300) // the other process is now waiting for the volume's lock
      }
      yield parts[i]
    }
  }
  const receiving = b.receive(slowly())
  await atHalf
  const report = await receiving
  t.is(sha256(clean(bDir)), want, 'the received image is the sender\'s, byte for byte')
  const path2 = await line(second, /^path (.*)$/)
  t.is(path2, path)
  await sleep(50)
  t.is(sha256(clean(bDir)), want, 'writes into the import path never reach the committed state')
  second.stdin.write('end\n')
  await line(second, /^committed$/)
  // The other import commits on top; the received state stays whole as a revision, under its
  // identity: the sender's next incremental applies to it and gives the sender's image again.
  t.is(readFileSync(clean(bDir))[0], 0x41)
  apply(await a.start(), [{ kind: 'write', offset: 6 * MiB, length: MiB, seed: 2 }])
  await a.stop()
  const inc = await collect(a.send({ base: Object.keys(await a.revisions()).at(-1)! }))
  const next = await b.receive(Readable.from(chunks(inc)))
  t.is(next.baseId, report.id)
  t.is(sha256(clean(bDir)), sha256(clean(a.pool.dirPath)))
  t.deepEqual(readdirSync(join(bDir, 'vm-templates/v')).filter((n) => n.includes('~') || n.includes('-import')), [], 'nothing half-made')
  await a.pool.close()
  await b.pool.close()
})

fsTest.serial('xfs: an abort interrupts a receive that waits on a silent sender; nothing is left', async (t) => {
  const { a, b, full } = await pair()
  const before = snapshotTree(b.pool.dirPath)
  const ac = new AbortController()
  async function* stalls(): AsyncGenerator<Buffer> {
    yield full.subarray(0, MiB)
    await new Promise(() => {}) // a sender that keeps its pipe open and says nothing
  }
  const receiving = b.receive(stalls(), { signal: ac.signal })
  await sleep(300)
  const started = performance.now()
  ac.abort()
  await within(t.throwsAsync(receiving, { name: 'AbortError' }), 1000, 'the receive to end after the abort')
  t.log(`receive ended ${(performance.now() - started).toFixed(0)} ms after the abort`)
  t.deepEqual(snapshotTree(b.pool.dirPath), before, 'nothing left behind')
  await a.pool.close()
  await b.pool.close()
})

fsTest.serial('xfs: a key file others can read is refused before the receive waits for a silent sender', async (t) => {
  const { a, b } = await pair()
  const keyFile = join(fs().dir, `open-${seq}.key`)
  writeFileSync(keyFile, `${'5a'.repeat(32)}\n`, { mode: 0o644 })
  chmodSync(keyFile, 0o644)
  async function* silent(): AsyncGenerator<Buffer> {
    await new Promise(() => {}) // says nothing, ever
  }
  const before = snapshotTree(b.pool.dirPath)
  await within(t.throwsAsync(b.receive(silent(), { keyFile }), { code: 'ERR_KEY_FILE_UNSAFE' }), 1000, 'the refusal')
  t.deepEqual(snapshotTree(b.pool.dirPath), before, 'nothing changed')
  await a.pool.close()
  await b.pool.close()
})

for (const what of ['receive', 'receive (creating the volume)', 'import -'] as const) {
  fsTest.serial(`xfs: Ctrl-C interrupts CLI volume ${what} waiting on a silent sender: exit 130 within 1 s, nothing left, the stream not blamed`, async (t) => {
    const { a, b, full } = await pair()
    const bDir = b.pool.dirPath
    // A pool without the volume: the receive creates it, and the interrupted one removes it again.
    if (what === 'receive (creating the volume)') await b.remove()
    await a.pool.close()
    await b.pool.close()
    const before = snapshotState(bDir)
    const args = what === 'import -' ? ['volume', 'import', VID, '-'] : ['volume', 'receive', VID]
    const cli = spawnCli(['--pool', bDir, ...args])
    let stderr = ''
    cli.stderr.on('data', (d: Buffer) => (stderr += d))
    cli.stdin.on('error', () => {})
    const exited = new Promise<number | null>((r) => cli.on('exit', (code) => r(code)))
    cli.stdin.write(full.subarray(0, MiB))
    // Wait until it writes its file: it is past the header and waits for more.
    const vmDir = join(bDir, 'vm-templates/v')
    const writing = () => existsSync(vmDir) && readdirSync(vmDir).some((n) => n.startsWith('root-import.img'))
    for (let i = 0; i < 500 && !writing(); i++) await sleep(20)
    t.true(writing(), `the ${what} started writing`)
    await sleep(200)
    const started = performance.now()
    cli.kill('SIGINT')
    // The sender closes right after the Ctrl-C: the abort, not the short stream, is the cause.
    cli.stdin.end()
    const code = await within(exited, 5000, 'the CLI to exit')
    const ms = performance.now() - started
    t.log(`${what}: exit ${code} ${ms.toFixed(0)} ms after SIGINT; stderr: ${stderr.trim()}`)
    t.is(code, 130, stderr)
    t.true(ms < 1000, `exited ${ms.toFixed(0)} ms after SIGINT`)
    t.regex(stderr, /interrupted/)
    t.notRegex(stderr, /STREAM_CORRUPT|ended (after|before|inside)/)
    t.deepEqual(snapshotState(bDir), before, 'nothing left behind')
  })
}

fsTest.serial('xfs: Ctrl-C during a CLI receive that verified records keeps them and says how to resume; the resume completes it', async (t) => {
  const { a, b, full } = await pair()
  const bDir = b.pool.dirPath
  await b.pool.close()
  const cli = spawnCli(['--pool', bDir, 'volume', 'receive', VID])
  let stderr = ''
  cli.stderr.on('data', (d: Buffer) => (stderr += d))
  cli.stdin.on('error', () => {})
  const exited = new Promise<number | null>((r) => cli.on('exit', (code) => r(code)))
  // 3 of the 5 MiB of data: whole records verified, then a sender that says nothing more.
  cli.stdin.write(full.subarray(0, 3 * MiB + 4096))
  const vmDir = join(bDir, 'vm-templates/v')
  const writing = () => readdirSync(vmDir).some((n) => n.startsWith('root-import.img'))
  for (let i = 0; i < 500 && !writing(); i++) await sleep(20)
  await sleep(300)
  cli.kill('SIGINT')
  const code = await within(exited, 5000, 'the CLI to exit')
  t.is(code, 130, stderr)
  t.regex(stderr, /interrupted; the first \S+ \S+, verified, are kept: resume with reflink-pool volume send SOURCE --resume TOKEN/)
  const token = (await runCli(['--pool', bDir, 'volume', 'resume-token', VID])).stdout.trim()
  const rest = await collect(a.send({ resume: token }))
  t.true(rest.length < full.length - 2 * MiB, `the resumed stream (${rest.length} bytes) skips what was kept`)
  const pool = await ReflinkPool.open({ dirPath: bDir })
  await pool.getVolume(VID).receive(Readable.from([rest]))
  t.is(sha256(clean(bDir)), sha256(clean(a.pool.dirPath)))
  await pool.close()
  await a.pool.close()
})

fsTest.serial('xfs: recovery removes the temp file of a kept base that a crashed send was making, and keeps the bases', async (t) => {
  const { a, b, full } = await pair()
  await b.receive(Readable.from([full]))
  const vmDir = join(a.pool.dirPath, 'vm-templates/v')
  const [kept] = await a.bases()
  const temp = join(vmDir, `root.img.base@${'b'.repeat(32)}~0011223344556677`)
  const dir = a.pool.dirPath
  await a.pool.close()
  const died = child('die-keeping', dir, VID, temp)
  t.is(await new Promise<NodeJS.Signals | null>((r) => died.on('exit', (_c, sig) => r(sig))), 'SIGKILL')
  t.true(existsSync(temp))
  const pool = await ReflinkPool.open({ dirPath: dir })
  const v = pool.getVolume(VID)
  t.false(existsSync(temp), 'the half-made base is gone after open')
  t.deepEqual((await v.bases()).map((x) => x.id), [kept.id], 'the kept base stays')
  apply(await v.start(), [{ kind: 'write', offset: 0, length: 4096, seed: 3 }])
  await v.stop()
  const report = await b.receive(Readable.from([await collect(v.send({ since: (await b.state()).id }))]))
  t.is(report.baseId, kept.id)
  t.is(sha256(clean(b.pool.dirPath)), sha256(clean(dir)))
  await pool.close()
  await b.pool.close()
})

fsTest.serial('xfs: CLI volume state, bases and forget-base', async (t) => {
  const { a, b } = await pair()
  const dir = a.pool.dirPath
  await a.pool.close()
  await b.pool.close()
  const cli = (args: string[]) => runCli(['--pool', dir, ...args])
  const state = await runJson(['--pool', dir, 'volume', 'state', VID])
  t.regex(state.json.id, /^[0-9a-f]{32}$/)
  t.is(state.json.size, SIZE)
  t.false(Number.isNaN(Date.parse(state.json.time)))
  t.is((await cli(['volume', 'state', VID])).stdout, `${state.json.id}\n`, 'the plain form is the id alone')
  // pair() sent the state whole: it is kept. Forgotten, then kept again by the next send.
  t.regex((await cli(['volume', 'bases', VID])).stdout, new RegExp(`^STATE +SENT \\(UTC\\) +SIZE\\n${state.json.id} `))
  t.is((await cli(['volume', 'forget-base', VID, state.json.id])).status, 0)
  t.is((await cli(['volume', 'bases', VID])).stdout.trim(), `No kept bases of ${VID}.`)
  const sent = await runCli(['--pool', dir, 'volume', 'send', VID])
  t.is(sent.status, 0, sent.stderr)
  const bases = await runJson(['--pool', dir, 'volume', 'bases', VID])
  t.deepEqual(bases.json.bases.map((x: { id: string }) => x.id), [state.json.id])
  t.regex((await cli(['usage'])).stdout, /^VID +SIZE +CLEAN +PRECACHE +REVISIONS +BASES /m)
  const since = await runCli(['--pool', dir, 'volume', 'send', VID, '--since', state.json.id.toUpperCase()])
  t.is(since.status, 0, since.stderr)
  t.regex(since.stderr, /changes since state/)
  const bad = await cli(['volume', 'send', VID, '--since', 'nope'])
  t.is(bad.status, 1)
  t.regex(bad.stderr, /32 hex digits/)
  t.is((await cli(['volume', 'forget-base', VID, state.json.id])).status, 0)
  const again = await cli(['volume', 'forget-base', VID, state.json.id])
  t.is(again.status, 1)
  t.regex(again.stderr, /ERR_BASE_NOT_FOUND/)
  t.deepEqual((await runJson(['--pool', dir, 'volume', 'bases', VID])).json.bases, [])
})
