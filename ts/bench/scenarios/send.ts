// Scenario: incremental send and receive (docs/design.md §8). A 4 GiB volume with
// 400 MiB of data (100 runs of 4 MiB), committed; then 1% of its data rewritten (64
// scattered 64 KiB blocks) and committed again. On XFS and btrfs: the bytes of the
// incremental stream against the bytes changed (≤ 1.05), and the time of the
// incremental send against a full send of the same state (≤ 0.1). On btrfs also the
// same data in a subvolume with read-only snapshots before and after the same rewrite:
// our incremental send against `btrfs send -p` (time and bytes, ≤ 1.2) and our receive
// of the incremental (into a pool holding the base) against `btrfs receive` of its
// stream followed by `btrfs filesystem sync` (our receive fsyncs its image), ≤ 1.2.
// Then kept bases (§8.6): with revisionsToKeep 1, three more commits of 1% each prune the
// state last sent as a revision; `send --since` that state (what the receiver holds) must
// still be an incremental: bytes on the wire / bytes changed ≤ 1.05, no full resend.
// Every stream goes to /dev/null (send) or is read from a file (receive). On XFS also the
// rows of send-stream.ts (compression, keys).
import { createReadStream, createWriteStream, mkdirSync, openSync, closeSync, writeSync, statSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fsName, reflinkScenario, type BenchContext, type BenchFs, type Scenario } from '../context'
import { timeInterleaved, type TimedPeer } from '../interleave'
import { need, Skip } from '../product'
import { prng } from '../random'
import { absoluteCheck, measurement, ratioCheck, type ScenarioResult } from '../results'
import { hasCommand, run, syncFs } from '../system'
import { streamRows } from './send-stream'

const MiB = 1024 * 1024
const SIZE = 4096 * MiB
const RUN = 4 * MiB
const RUNS = 100
const BLOCK = 64 * 1024
const REWRITES = (RUNS * RUN) / 100 / BLOCK
/** Distance between the starts of two data runs. */
const STRIDE = 40 * MiB

/** The part of a volume the scenario uses (the package's ReflinkVolume). */
interface SendVolume {
  vid: string
  start(): Promise<string>
  stop(): Promise<unknown>
  revisions(): Promise<Record<string, string>>
  send(opts?: { base?: string; since?: string }): Readable
  receive(stream: AsyncIterable<Uint8Array>): Promise<unknown>
  state?(): Promise<{ id: string }>
  setConfig(config: { revisionsToKeep: number }): Promise<unknown>
}

/** Deterministic, incompressible-enough bytes for run `i`. */
function fill(i: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length)
  const rand = prng(1000 + i)
  for (let at = 0; at < length; at += 4) b.writeUInt32LE((rand() * 2 ** 32) >>> 0, at)
  return b
}

/** The 400 MiB of data: run i at i × 40 MiB (whole blocks, so a rewrite covers whole blocks too). */
function writeData(path: string): void {
  const fd = openSync(path, 'r+')
  try {
    for (let i = 0; i < RUNS; i++) writeSync(fd, fill(i, RUN), 0, RUN, i * STRIDE)
  } finally {
    closeSync(fd)
  }
}

/** 1% of the data: 64 KiB blocks at distinct seeded positions inside the runs. */
function rewriteOffsets(): number[] {
  const rand = prng(77)
  const picked = new Set<number>()
  while (picked.size < REWRITES) {
    const run = Math.floor(rand() * RUNS)
    const block = Math.floor(rand() * (RUN / BLOCK))
    picked.add(run * STRIDE + block * BLOCK)
  }
  return [...picked].sort((a, b) => a - b)
}

function rewrite(path: string, offsets: number[], seed = 5000): void {
  const fd = openSync(path, 'r+')
  try {
    offsets.forEach((off, i) => writeSync(fd, fill(seed + i, BLOCK), 0, BLOCK, off))
  } finally {
    closeSync(fd)
  }
}

async function toNull(stream: Readable): Promise<number> {
  let bytes = 0
  stream.on('data', (c: Buffer) => (bytes += c.length))
  await pipeline(stream, createWriteStream('/dev/null'))
  return bytes
}

async function toFile(stream: Readable, file: string): Promise<number> {
  await pipeline(stream, createWriteStream(file))
  return statSync(file).size
}

/** Rounds of every timed row. */
const rounds = (ctx: BenchContext) => (ctx.quick ? 5 : 9)

/** Remove the scenario's directory, its btrfs subvolumes first (read-only ones refuse unlink). */
async function clear(dir: string): Promise<void> {
  for (const sub of ['brecv/s1', 'brecv/s2', 's1', 's2', 'sub']) {
    await run('btrfs', ['subvolume', 'delete', join(dir, sub)]).catch(() => {})
  }
  rmSync(dir, { recursive: true, force: true })
}

async function sendOn(ctx: BenchContext, fs: BenchFs, result: ScenarioResult): Promise<void> {
  const Pool = need(ctx.product, 'ReflinkPool')
  const dir = join(fs.dir, 'bench-send')
  await clear(dir)
  mkdirSync(dir, { recursive: true })
  const setting = `${fsName(fs)}, 4 GiB volume, 400 MiB data, 1% rewritten`
  const pool = await Pool.open({ dirPath: join(dir, 'pool'), setupCheck: true })
  const v = (await pool.createVolume({ vid: 'vm-templates/bench/root', name: 'root', size: SIZE, saveOnStop: true, revisionsToKeep: 2 })) as unknown as SendVolume
  if (typeof v.send !== 'function') throw new Skip('volume.send is not available')
  ctx.log(`send: writing 400 MiB into a 4 GiB volume on ${fs.label}`)
  writeData(await v.start())
  await v.stop()
  // A first full send to a host (it records the state's image hash); on btrfs a receiving pool takes it.
  const withBtrfs = fs.kind === 'btrfs' && hasCommand('btrfs')
  if (fs.kind === 'btrfs' && !withBtrfs) result.skipped = [...(result.skipped ?? []), 'btrfs-progs missing: no btrfs send/receive rows']
  const receiver = withBtrfs ? await receivingVolume(ctx, dir, v) : (await toNull(v.send()), null)
  const offsets = rewriteOffsets()
  rewrite(await v.start(), offsets)
  await v.stop()
  const base = Object.keys(await v.revisions()).at(-1)!
  const changed = offsets.length * BLOCK
  const incFile = join(dir, 'inc.stream')
  const wire = await toFile(v.send({ base }), incFile)
  await ctx.settle()

  const peers: TimedPeer[] = [
    { id: 'full', run: async () => void (await toNull(v.send())) },
    { id: 'incremental', run: async () => void (await toNull(v.send({ base }))) },
  ]
  const btrfs = withBtrfs ? await btrfsPeers(dir, offsets) : null
  if (btrfs) peers.push(btrfs.send)
  const samples = await timeInterleaved(peers, { rounds: rounds(ctx), between: () => syncFs(dir), onSample: (id, r, ms) => ctx.log(`  send round ${r + 1}: ${id} ${ms.toFixed(0)} ms`) })
  for (const p of peers) result.measurements.push(measurement(`send/${fs.kind}/${p.id}`, p.id, 'ms', samples.get(p.id)!, p.id === 'incremental' ? { detail: { streamBytes: wire, changedBytes: changed } } : {}))
  result.checks.push(
    absoluteCheck({ id: `send/${fs.kind}/wire`, scenario: 'Send', setting, what: `incremental send: bytes on the wire / bytes changed (${wire} / ${changed})` }, [wire / changed], 'ratio', { comparison: '<=', limit: 1.05 }),
    ratioCheck({ id: `send/${fs.kind}/vs-full`, scenario: 'Send', setting, what: 'incremental send time / full send time' }, samples.get('incremental')!, samples.get('full')!, { comparison: '<=', limit: 0.1 }),
  )
  if (btrfs) {
    result.checks.push(
      ratioCheck({ id: 'send/btrfs/vs-btrfs-send', scenario: 'Send', setting, what: 'incremental send / `btrfs send -p` (time)' }, samples.get('incremental')!, samples.get('btrfs-send')!, { comparison: '<=', limit: 1.2 }),
      absoluteCheck({ id: 'send/btrfs/vs-btrfs-send-bytes', scenario: 'Send', setting, what: `incremental send / \`btrfs send -p\` (bytes: ${wire} / ${btrfs.bytes})` }, [wire / btrfs.bytes], 'ratio', { comparison: '<=', limit: 1.2 }),
    )
    await receiveRows(ctx, dir, receiver!.volume, incFile, btrfs, setting, result)
  }
  await keptBaseRow(v, offsets, fs, result)
  await receiver?.pool.close()
  await pool.close()
  if (fs.kind === 'xfs') {
    await streamRows(ctx, fs, dir, result).catch((e) => {
      if (!(e instanceof Skip)) throw e
      result.skipped = [...(result.skipped ?? []), e.message]
    })
  }
  await clear(dir)
}

/**
 * The state the rows above sent is what a receiver holds. With revisionsToKeep 1, three
 * commits (a third of the 1% each, new bytes) prune it as a revision; only its kept base
 * (docs/design.md §8.6) can still make `send --since` it an incremental.
 */
async function keptBaseRow(v: SendVolume, offsets: number[], fs: BenchFs, result: ScenarioResult): Promise<void> {
  if (typeof v.state !== 'function') {
    result.skipped = [...(result.skipped ?? []), 'volume.state is not available: no send --since row']
    return
  }
  const since = (await v.state()).id
  await v.setConfig({ revisionsToKeep: 1 })
  for (let c = 0; c < 3; c++) {
    rewrite(await v.start(), offsets.filter((_, i) => i % 3 === c), 9000 + 100 * c)
    await v.stop()
  }
  const changed = offsets.length * BLOCK
  const wire = await toNull(v.send({ since }))
  result.checks.push(
    absoluteCheck(
      { id: `send/${fs.kind}/since-kept-base`, scenario: 'Send', setting: `${fsName(fs)}, 4 GiB volume, revisionsToKeep 1, 3 commits of 1/3 % each`, what: `send --since the receiver's state after 3 commits: bytes on the wire / bytes changed (${wire} / ${changed})` },
      [wire / changed],
      'ratio',
      { comparison: '<=', limit: 1.05 },
    ),
  )
}

/** The same data in a btrfs subvolume, read-only snapshots before and after the same rewrite, and the peers. */
async function btrfsPeers(dir: string, offsets: number[]) {
  const sub = join(dir, 'sub')
  await run('btrfs', ['subvolume', 'create', sub])
  const img = join(sub, 'root.img')
  closeSync(openSync(img, 'w'))
  await run('truncate', ['-s', String(SIZE), img])
  writeData(img)
  const s1 = join(dir, 's1')
  const s2 = join(dir, 's2')
  await run('btrfs', ['subvolume', 'snapshot', '-r', sub, s1])
  rewrite(img, offsets)
  await run('btrfs', ['subvolume', 'snapshot', '-r', sub, s2])
  const full = join(dir, 'btrfs-full.stream')
  const inc = join(dir, 'btrfs-inc.stream')
  await run('btrfs', ['send', '-q', '-f', full, s1])
  await run('btrfs', ['send', '-q', '-p', s1, '-f', inc, s2])
  const send: TimedPeer = { id: 'btrfs-send', run: async () => void (await run('btrfs', ['send', '-q', '-p', s1, '-f', '/dev/null', s2])) }
  return { send, full, inc, bytes: statSync(inc).size }
}

/** A second pool on the same filesystem that receives the first state in full. */
async function receivingVolume(ctx: BenchContext, dir: string, v: SendVolume) {
  const rpool = await need(ctx.product, 'ReflinkPool').open({ dirPath: join(dir, 'recv'), setupCheck: true })
  // Every timed receive adds a revision; the base must stay among them.
  const volume = (await rpool.createVolume({ vid: 'vm-templates/bench/root', name: 'root', size: SIZE, saveOnStop: true, revisionsToKeep: 100 })) as unknown as SendVolume
  await volume.receive(v.send())
  return { pool: rpool, volume }
}

/** Our receive of the incremental into the pool holding the base, against btrfs receive of its own stream. */
async function receiveRows(ctx: BenchContext, dir: string, r: SendVolume, incFile: string, btrfs: { full: string; inc: string }, setting: string, result: ScenarioResult): Promise<void> {
  const bdest = join(dir, 'brecv')
  mkdirSync(bdest)
  await run('btrfs', ['receive', '-q', '-f', btrfs.full, bdest])
  const peers: TimedPeer[] = [
    { id: 'receive', run: async () => void (await r.receive(createReadStream(incFile, { highWaterMark: MiB }))) },
    {
      id: 'btrfs-receive',
      run: async () => {
        await run('btrfs', ['receive', '-q', '-f', btrfs.inc, bdest])
        await run('btrfs', ['filesystem', 'sync', bdest])
      },
      cleanup: async () => void (await run('btrfs', ['subvolume', 'delete', join(bdest, 's2')])),
    },
  ]
  const samples = await timeInterleaved(peers, { rounds: rounds(ctx), between: () => syncFs(dir), onSample: (id, round, ms) => ctx.log(`  receive round ${round + 1}: ${id} ${ms.toFixed(0)} ms`) })
  for (const p of peers) result.measurements.push(measurement(`send/btrfs/${p.id}`, p.id, 'ms', samples.get(p.id)!))
  result.checks.push(
    ratioCheck({ id: 'send/btrfs/vs-btrfs-receive', scenario: 'Send', setting, what: 'receive of the incremental / `btrfs receive` + sync' }, samples.get('receive')!, samples.get('btrfs-receive')!, { comparison: '<=', limit: 1.2 }),
  )
}

export const sendScenario: Scenario = reflinkScenario({
  id: 'send',
  title: 'Incremental send and receive',
  description:
    'A 4 GiB volume with 400 MiB of data, then 1% of the data rewritten (64 KiB blocks) and committed: the incremental send stream ' +
    '(only the changed blocks, found from the extent maps) against the bytes changed and against a full send; on btrfs against ' +
    '`btrfs send -p` of the same change between read-only snapshots, and our receive against `btrfs receive` + `btrfs filesystem sync`.',
  runOn: sendOn,
})
