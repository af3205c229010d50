// Rows of the send scenario about the stream itself (docs/design.md §8.3, §8.8), on the
// first reflink filesystem only (they measure CPU work on the stream, not the
// filesystem): a 1 GiB volume holding a real ext4 filesystem filled from /usr/bin and
// /usr/include.
// - `send --compress` to /dev/null against `zstd -3 -T1` of the uncompressed stream
//   (the same data runs, plus 48 bytes of framing per MiB): stream bytes ≤ 1.1x,
//   time ≤ 1.2x.
// - `send --key-file` against an unkeyed send, and a receive of the keyed full stream
//   against a receive of the unkeyed one (both from a file, into a second pool): ≤ 1.15x.
// - Resume: a receive of the full stream cut at 60 %, then `send --resume`: the resumed
//   stream's bytes against the full stream's, ≤ 0.42x.
// - `receive --like`: 1 % of the data rewritten (64 KiB blocks), the new state's full
//   stream received into a new volume like the one holding the previous state: bytes
//   the new image does not share (FIEMAP, `usage().exclusive`) against the bytes
//   changed, ≤ 1.1x (a plain full receive shares nothing).
import { randomBytes } from 'node:crypto'
import { closeSync, createReadStream, createWriteStream, mkdirSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fsName, type BenchContext, type BenchFs } from '../context'
import { timeInterleaved, type TimedPeer } from '../interleave'
import { need, Skip } from '../product'
import { absoluteCheck, measurement, ratioCheck, type ScenarioResult } from '../results'
import { hasCommand, run, syncFs } from '../system'

const MiB = 1024 * 1024
const SIZE = 1024 * MiB
/** What the ext4 inside the volume is filled with. */
const SOURCES = ['/usr/bin', '/usr/include']

/** The part of a volume these rows use (the package's ReflinkVolume). */
interface StreamVolume {
  vid: string
  start(): Promise<string>
  stop(): Promise<unknown>
  send(opts?: { compress?: boolean; keyFile?: string; resume?: string }): Readable
  receive(stream: AsyncIterable<Uint8Array>, opts?: { keyFile?: string; like?: string }): Promise<unknown>
  resumeToken(): Promise<string>
  usage(): Promise<{ exclusive: number; shared: number }>
}

async function toFile(stream: Readable, file: string): Promise<number> {
  await pipeline(stream, createWriteStream(file))
  return statSync(file).size
}

/** Run `f` and push the process's CPU time (user + sys, ms) it took onto `into`. */
async function cpuOf(into: number[], f: () => Promise<void>): Promise<void> {
  const before = process.cpuUsage()
  await f()
  const used = process.cpuUsage(before)
  into.push((used.user + used.system) / 1000)
}

async function toNull(stream: Readable): Promise<void> {
  await pipeline(stream, createWriteStream('/dev/null'))
}

/** mkfs.ext4 on the image, mount it, copy SOURCES in, unmount. */
async function fillWithFilesystem(img: string, mnt: string): Promise<void> {
  await run('mkfs.ext4', ['-q', '-F', img])
  mkdirSync(mnt, { recursive: true })
  await run('mount', ['-o', 'loop', img, mnt])
  try {
    await run('cp', ['-a', ...SOURCES, mnt])
  } finally {
    await run('umount', [mnt])
  }
}

export async function streamRows(ctx: BenchContext, fs: BenchFs, dir: string, result: ScenarioResult): Promise<void> {
  if (!hasCommand('zstd')) throw new Skip('zstd missing: no stream rows (scripts/setup.sh installs it)')
  const Pool = need(ctx.product, 'ReflinkPool')
  const root = join(dir, 'stream')
  rmSync(root, { recursive: true, force: true })
  mkdirSync(root, { recursive: true })
  const setting = `${fsName(fs)}, 1 GiB volume holding ext4 with ${SOURCES.join(' and ')}`
  const pool = await Pool.open({ dirPath: join(root, 'pool'), setupCheck: true })
  const rpool = await Pool.open({ dirPath: join(root, 'recv'), setupCheck: true })
  try {
    const vid = 'vm-templates/fsimg/root'
    const v = (await pool.createVolume({ vid, name: 'root', size: SIZE, saveOnStop: true })) as unknown as StreamVolume
    const r = (await rpool.createVolume({ vid, name: 'root', size: SIZE, saveOnStop: true, revisionsToKeep: 1 })) as unknown as StreamVolume
    ctx.log(`send: an ext4 filesystem with ${SOURCES.join(', ')} in a 1 GiB volume on ${fs.label}`)
    await fillWithFilesystem(await v.start(), join(root, 'mnt'))
    await v.stop()

    const keyFile = join(root, 'stream.key')
    writeFileSync(keyFile, `${'5a'.repeat(32)}\n`, { mode: 0o600 })
    const plain = join(root, 'plain.stream')
    const keyed = join(root, 'keyed.stream')
    const packed = join(root, 'packed.stream')
    const zst = join(root, 'plain.zst')
    const plainBytes = await toFile(v.send(), plain)
    await toFile(v.send({ keyFile }), keyed)
    const packedBytes = await toFile(v.send({ compress: true }), packed)
    await run('zstd', ['-q', '-f', '-3', '-T1', plain, '-o', zst])
    const zstdBytes = statSync(zst).size
    await ctx.settle()

    // CPU time (user + sys, every thread of this process) of each send: a key adds its MAC's
    // work, which the time rows show only where a core was idle.
    const cpu = { plain: [] as number[], keyed: [] as number[] }
    const sendPeers: TimedPeer[] = [
      { id: 'send-compress', run: () => toNull(v.send({ compress: true })) },
      { id: 'zstd-3-T1', run: async () => void (await run('zstd', ['-q', '-f', '-3', '-T1', plain, '-o', '/dev/null'])) },
      { id: 'send-plain', run: () => cpuOf(cpu.plain, () => toNull(v.send())) },
      { id: 'send-keyed', run: () => cpuOf(cpu.keyed, () => toNull(v.send({ keyFile }))) },
    ]
    const rounds = ctx.quick ? 5 : 9
    const s = await timeInterleaved(sendPeers, { rounds, between: () => syncFs(root), onSample: (id, i, ms) => ctx.log(`  stream round ${i + 1}: ${id} ${ms.toFixed(0)} ms`) })
    const recvPeers: TimedPeer[] = [
      { id: 'receive-plain', run: async () => void (await r.receive(createReadStream(plain, { highWaterMark: MiB }))) },
      { id: 'receive-keyed', run: async () => void (await r.receive(createReadStream(keyed, { highWaterMark: MiB }), { keyFile })) },
    ]
    // Each receive commits 405 MB (fsync) and prunes the one before: one untimed receive of
    // each first (the first commits into fresh space), and the writeback of each waited for
    // before the next, or it lands in that one's time.
    for (const p of recvPeers) await p.run(-1)
    const rs = await timeInterleaved(recvPeers, { rounds, between: () => ctx.settle(), onSample: (id, i, ms) => ctx.log(`  stream round ${i + 1}: ${id} ${ms.toFixed(0)} ms`) })
    for (const [id, samples] of [...s, ...rs]) result.measurements.push(measurement(`send/stream/${id}`, id, 'ms', samples))
    result.checks.push(await resumeRow(v, r, plain, plainBytes, setting))
    result.checks.push(await likeRow(v, rpool, r, setting))
    result.checks.push(
      absoluteCheck({ id: 'send/compress-bytes', scenario: 'Send', setting, what: `send --compress bytes / zstd -3 -T1 bytes (${packedBytes} / ${zstdBytes}; uncompressed ${plainBytes})` }, [packedBytes / zstdBytes], 'ratio', { comparison: '<=', limit: 1.1 }),
      ratioCheck({ id: 'send/compress-time', scenario: 'Send', setting, what: 'send --compress time / zstd -3 -T1 time' }, s.get('send-compress')!, s.get('zstd-3-T1')!, { comparison: '<=', limit: 1.2 }),
      ratioCheck({ id: 'send/keyed-send', scenario: 'Send', setting, what: 'send --key-file time / unkeyed send time' }, s.get('send-keyed')!, s.get('send-plain')!, { comparison: '<=', limit: 1.15 }),
      ratioCheck({ id: 'send/keyed-send-cpu', scenario: 'Send', setting, what: 'send --key-file CPU time / unkeyed send CPU time (user + sys, all threads)' }, cpu.keyed, cpu.plain, null),
      ratioCheck({ id: 'send/keyed-receive', scenario: 'Send', setting, what: 'receive --key-file time / unkeyed receive time (full stream)' }, rs.get('receive-keyed')!, rs.get('receive-plain')!, { comparison: '<=', limit: 1.15 }),
    )
  } finally {
    await rpool.close()
    await pool.close()
    rmSync(root, { recursive: true, force: true })
  }
}

/** A receive of `plain` cut at 60 %, then the resumed stream: its bytes against the full stream's. */
async function resumeRow(v: StreamVolume, r: StreamVolume, plain: string, plainBytes: number, setting: string) {
  const cutAt = Math.floor(plainBytes * 0.6)
  await r.receive(createReadStream(plain, { end: cutAt - 1, highWaterMark: MiB })).then(
    () => { throw new Error('a stream cut at 60 % was committed') },
    (e: { code?: string }) => { if (e.code !== 'ERR_STREAM_CORRUPT') throw e },
  )
  const rest = join(dirname(plain), 'resumed.stream')
  const restBytes = await toFile(v.send({ resume: await r.resumeToken() }), rest)
  await r.receive(createReadStream(rest, { highWaterMark: MiB }))
  return absoluteCheck({ id: 'send/resume-bytes', scenario: 'Send', setting, what: `resumed stream bytes / full stream bytes after a cut at 60 % (${restBytes} / ${plainBytes})` }, [restBytes / plainBytes], 'ratio', { comparison: '<=', limit: 0.42 })
}

/** 1 % of the data rewritten; the full stream of the new state received --like the volume holding the old one. */
async function likeRow(v: StreamVolume, rpool: { createVolume(o: object): Promise<unknown> }, old: StreamVolume, setting: string) {
  const img = await v.start()
  const fd = openSync(img, 'r+')
  const blocks = 64
  try {
    for (let i = 0; i < blocks; i++) writeSync(fd, randomBytes(64 * 1024), 0, 64 * 1024, (i * 97 + 13) * 6 * MiB % (400 * MiB))
  } finally {
    closeSync(fd)
  }
  await v.stop()
  const changed = blocks * 64 * 1024
  const fresh = (await rpool.createVolume({ vid: 'vm-templates/fsimg2/root', name: 'root', size: SIZE, saveOnStop: true, revisionsToKeep: 1 })) as StreamVolume
  await fresh.receive(v.send(), { like: old.vid })
  const { exclusive, shared } = await fresh.usage()
  return absoluteCheck({ id: 'send/like-allocated', scenario: 'Send', setting, what: `receive --like: bytes not shared with the old version / bytes changed (${exclusive} / ${changed}; shared ${shared})` }, [exclusive / changed], 'ratio', { comparison: '<=', limit: 1.1 })
}
