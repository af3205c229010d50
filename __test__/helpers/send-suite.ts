// Send and receive on one filesystem of the matrix (docs/design.md §8): random write
// patterns (fast-check) through a chain of a full send and five incrementals, the
// receiver's image byte-identical to the sender's after each; tampered, truncated,
// reordered and wrong-base streams refused with nothing changed; a dirty receiver
// refused. On XFS and btrfs an incremental carries only the changed blocks; on ext4
// (no shared extents) it carries every data run of the target and never holes as bytes.
import type { ExecutionContext, TestFn } from 'ava'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync, readdirSync, appendFileSync, chmodSync, symlinkSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import fc from 'fast-check'
import { ReflinkPool, type ReflinkVolume } from '../../ts/index'
import { internal } from '../../ts/internal'
import { FS_MATRIX, fsSuite, type FsKind } from './scratch-fs'
import { MiB, snapshotTree, writeAt } from './pool-fixture'
import { runCli, spawnCli } from './cli-run'

const SIZE = 16 * MiB
const BLOCK = 4096
/** Format version 2, unkeyed (docs/design.md §8.3): header, record head, record checksum. */
const HEADER = 128
const HEAD = 32
const SUM = 16

export interface Op {
  kind: 'write' | 'zero' | 'punch'
  offset: number
  length: number
  seed: number
}

const opArb = fc.record({
  kind: fc.constantFrom<Op['kind']>('write', 'write', 'write', 'zero', 'punch'),
  offset: fc.nat(SIZE - 1),
  length: fc.integer({ min: 1, max: 300 * 1024 }),
  seed: fc.nat(255),
})
/** Six steps (the full send's and five incrementals'), each a few operations. */
export const chainArb = fc.array(fc.array(opArb, { minLength: 1, maxLength: 6 }), { minLength: 6, maxLength: 6 })

function pattern(seed: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) b[i] = (seed * 131 + i * 7 + (i >> 12)) & 255 || 1
  return b
}

/** What a VM would do to its disk: write bytes, write zeros, or discard (punch) a range. */
export function apply(path: string, ops: Op[]): void {
  for (const op of ops) {
    const length = Math.min(op.length, SIZE - op.offset)
    if (op.kind === 'punch') {
      execFileSync('fallocate', ['-p', '-o', String(op.offset), '-l', String(length), path])
    } else {
      writeAt(path, op.offset, op.kind === 'zero' ? Buffer.alloc(length) : pattern(op.seed, length))
    }
  }
}

export function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

export async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of r) parts.push(c as Buffer)
  return Buffer.concat(parts)
}

/** The records of a stream, read by the documented format (docs/design.md §8), not by our code. */
export function records(stream: Buffer): { kind: number; seq: number; offset: number; length: number; at: number; end: number }[] {
  const out = []
  for (let at = HEADER; at < stream.length; ) {
    const kind = stream[at]
    const length = Number(stream.readBigUInt64LE(at + 16))
    const payload = stream.readUInt32LE(at + 24)
    const end = at + HEAD + payload + SUM
    out.push({ kind, seq: stream.readUInt32LE(at + 4), offset: Number(stream.readBigUInt64LE(at + 8)), length, at, end })
    at = end
  }
  return out
}

/** Upper bound of the wire bytes of an incremental that rewrote `ops` (block-aligned, plus framing). */
function changedBound(ops: Op[]): number {
  let bytes = 0
  // A punch sends at most its two partial edge blocks (as zeros); a write its blocks.
  for (const op of ops) bytes += op.kind === 'punch' ? 2 * BLOCK : Math.ceil(Math.min(op.length, SIZE) / BLOCK + 2) * BLOCK
  return bytes + HEADER + (HEAD + SUM) * (ops.length * 3 + bytes / MiB + 2) + SUM
}

export function sendSuite(avaTest: TestFn, kind: FsKind): void {
  const { test, fs } = fsSuite(avaTest, kind)
  const reflink = FS_MATRIX.find((m) => m.kind === kind)!.reflink
  let seq = 0
  const open = (revisionsToKeep = 2) => ReflinkPool.open({ dirPath: join(fs().dir, `pool-${seq++}`), setupCheck: reflink, revisionsToKeep })
  const volume = (pool: ReflinkPool, name = 'v') => pool.createVolume({ vid: `vm-templates/${name}/root`, size: SIZE, saveOnStop: true })
  const clean = (v: ReflinkVolume) => join(v.pool.dirPath, `${v.vid}.img`)
  const newest = async (v: ReflinkVolume) => Object.keys(await v.revisions()).at(-1)!

  async function step(v: ReflinkVolume, ops: Op[]): Promise<void> {
    apply(await v.start(), ops)
    await v.stop()
  }

  test(`${kind}: a full send and five incrementals of random writes: the receiver's image is the sender's each time`, async (t) => {
    const chainLog: string[] = []
    await fc.assert(
      fc.asyncProperty(chainArb, async (steps) => {
        try {
          await chain(steps)
        } catch (e) {
          // fast-check reports only the counterexample: keep the reason beside it.
          t.log(`failed: ${(e as Error).message}`)
          throw e
        }
      }),
      // SEND_SEED=<seed> replays a failing run.
      { numRuns: 3, ...(process.env.SEND_SEED ? { seed: Number(process.env.SEND_SEED) } : {}) },
    )
    async function chain(steps: Op[][]): Promise<void> {
        const a = await volume(await open())
        const b = await volume(await open(1))
        await step(a, steps[0])
        const full = await collect(a.send())
        const fullReport = await b.receive(Readable.from([full]))
        ensure(fullReport.baseId === null && fullReport.method === 'sparse', `full receive report ${JSON.stringify(fullReport)}`)
        ensure(sha256(clean(b)) === sha256(clean(a)), 'full: receiver image differs')
        // Without a base, every data run is sent and holes never are.
        const runs = await internal.dataRuns(clean(a))
        const dataBytes = runs.runs.reduce((n, r) => n + r.length, 0)
        ensure(!records(full).some((r) => r.kind === 2), 'a full stream has no HOLE records')
        ensure(full.length <= dataBytes + 2 * BLOCK * runs.runs.length + HEADER + 64 * (runs.runs.length + dataBytes / MiB + 2), `full stream ${full.length} bytes for ${dataBytes} bytes of data`)
        const lines = [`full ${full.length} bytes sha256 ${sha256(clean(b))}`]
        for (const ops of steps.slice(1)) {
          await step(a, ops)
          const inc = await collect(a.send({ base: await newest(a) }))
          const report = await b.receive(Readable.from(chunks(inc)))
          ensure(report.baseId !== null && report.method === (reflink ? 'reflink' : 'copy-range'), `incremental receive report ${JSON.stringify(report)}`)
          ensure(sha256(clean(b)) === sha256(clean(a)), `step ${lines.length}: receiver image differs`)
          ensure(!reflink || inc.length <= changedBound(ops), `step ${lines.length}: ${inc.length} bytes on the wire, bound ${changedBound(ops)}`)
          if (!reflink) {
            const runs = await internal.dataRuns(clean(a))
            const dataBytes = runs.runs.reduce((n, r) => n + r.length, 0)
            const sent = records(inc).filter((r) => r.kind === 1).reduce((n, r) => n + r.length, 0)
            ensure(sent <= dataBytes + 2 * BLOCK * runs.runs.length, `step ${lines.length}: ${sent} data bytes sent for ${dataBytes} bytes of data runs`)
          }
          lines.push(`incremental ${inc.length} bytes sha256 ${sha256(clean(b))}`)
        }
        chainLog.push(lines.join('\n'))
        await a.pool.close()
        await b.pool.close()
    }
    t.log(chainLog[0])
    if (process.env.SEND_CHAIN_LOG) appendFileSync(process.env.SEND_CHAIN_LOG, `${kind}\n${chainLog[0]}\n`)
    t.is(chainLog.length, 3)
  })

  test(`${kind}: corrupted, truncated, reordered and wrong-base streams are refused with nothing changed; the intact stream then applies`, async (t) => {
    const a = await volume(await open())
    const b = await volume(await open(1))
    await step(a, [{ kind: 'write', offset: 0, length: 3 * MiB, seed: 1 }])
    await b.receive(Readable.from([await collect(a.send())]))
    await step(a, [
      { kind: 'write', offset: 5000, length: 10, seed: 2 },
      { kind: 'write', offset: 9 * MiB, length: 2 * MiB + 3, seed: 3 },
      { kind: 'punch', offset: 2 * MiB, length: MiB, seed: 0 },
    ])
    const good = await collect(a.send({ base: await newest(a) }))
    const recs = records(good)
    t.true(recs.length >= 4, 'several records to reorder')
    if (reflink) t.deepEqual(recs.map((r) => r.kind), [1, 2, 1, 1, 1, 3], 'data, the hole, data cut at 1 MiB, the END')

    const flipped = Buffer.from(good)
    flipped[recs[0].at + HEAD + 3] ^= 1
    const reordered = Buffer.concat([good.subarray(0, HEADER), good.subarray(recs[1].at, recs[1].end), good.subarray(recs[0].at, recs[0].end), good.subarray(recs[1].end)])
    const wrongMagic = Buffer.from(good)
    wrongMagic[0] = 0x58
    const cases: [string, Buffer, string][] = [
      ['a flipped payload bit', flipped, 'ERR_STREAM_CORRUPT'],
      ['two records swapped', reordered, 'ERR_STREAM_CORRUPT'],
      ['cut inside the header', good.subarray(0, 50), 'ERR_STREAM_CORRUPT'],
      ['cut after the first record', good.subarray(0, recs[0].end), 'ERR_STREAM_CORRUPT'],
      ['cut before the last byte', good.subarray(0, good.length - 1), 'ERR_STREAM_CORRUPT'],
      ['bytes after the END record', Buffer.concat([good, Buffer.from('x')]), 'ERR_STREAM_CORRUPT'],
      ['not a stream', wrongMagic, 'ERR_STREAM_CORRUPT'],
    ]
    // A stream from another volume's states: the base is not held here.
    const other = await volume(a.pool, 'other')
    await step(other, [{ kind: 'write', offset: 0, length: 4096, seed: 4 }])
    await step(other, [{ kind: 'write', offset: 4096, length: 4096, seed: 5 }])
    cases.push(['a base this volume does not hold', await collect(other.send({ base: await newest(other) })), 'ERR_BASE_NOT_FOUND'])

    // A cut stream keeps its verified records for a resume (docs/design.md §8.9); --abort drops them.
    const withoutPartials = (tree: ReturnType<typeof snapshotTree>) => Object.fromEntries(Object.entries(tree).filter(([p]) => !p.includes('partial')))
    for (const [what, stream, code] of cases) {
      const before = withoutPartials(snapshotTree(b.pool.dirPath))
      const err = await t.throwsAsync(b.receive(Readable.from(chunks(stream))), { code }, what)
      t.regex(err?.message ?? '', /./)
      if (what === 'cut after the first record') t.regex(await b.resumeToken(), /^rfp-resume-1\./, 'the verified record is kept for a resume')
      await b.abortReceive()
      t.deepEqual(withoutPartials(snapshotTree(b.pool.dirPath)), before, `${what}: nothing on disk changed`)
    }

    // The receiver holds the base's identity but its recorded image checksum differs.
    const statesDir = join(b.pool.dirPath, '.reflink-pool', 'states')
    const book = join(statesDir, readdirSync(statesDir)[0])
    const saved = readFileSync(book, 'utf8')
    const doc = JSON.parse(saved)
    for (const e of doc.states) e.hash = '0'.repeat(32)
    writeFileSync(book, JSON.stringify(doc))
    const before = snapshotTree(b.pool.dirPath)
    await t.throwsAsync(b.receive(Readable.from([good])), { code: 'ERR_BASE_MISMATCH' })
    t.deepEqual(snapshotTree(b.pool.dirPath), before, 'base mismatch: nothing on disk changed')
    writeFileSync(book, saved)

    // Dirty receiver.
    await b.start()
    await t.throwsAsync(b.receive(Readable.from([good])), { code: 'ERR_VOLUME_DIRTY' })
    await b.stop({ discard: true })

    const report = await b.receive(Readable.from(chunks(good)))
    t.is(sha256(clean(b)), sha256(clean(a)), 'the intact stream applies after all the refusals')
    t.is(report.id, JSON.parse(readFileSync(book, 'utf8')).states.find((e: { id: string }) => e.id === report.id)?.id)
    t.deepEqual(Object.keys(await b.revisions()).length, 1, 'one new revision per receive')
  })

  test(`${kind}: identities follow the state: a revision keeps the clean image's, revert brings it back, resize makes a new one`, async (t) => {
    const a = await volume(await open(3))
    const b = await volume(await open(3))
    await step(a, [{ kind: 'write', offset: 0, length: 8192, seed: 7 }])
    const s1 = await b.receive(Readable.from([await collect(a.send())]))
    await step(a, [{ kind: 'write', offset: 8192, length: 8192, seed: 8 }])
    // Revision 2 of `a` is state s1 (cloned from the clean image at commit): an incremental from it applies on b.
    const s2 = await b.receive(Readable.from([await collect(a.send({ base: await newest(a) }))]))
    t.is(s2.baseId, s1.id)
    t.not(s2.id, s1.id)
    // Revert brings s1 back as the clean image (same inode, same identity): b gets it from its own revision.
    await a.revert(await newest(a))
    const back = await collect(a.send())
    const s1again = await b.receive(Readable.from([back]))
    t.is(s1again.id, s1.id)
    t.is(sha256(clean(b)), sha256(clean(a)))
    // Resize: a new clean inode, a new identity.
    await a.resize(SIZE + MiB)
    const resized = await b.receive(Readable.from([await collect(a.send({ base: await newest(a) }))]))
    t.not(resized.id, s1.id)
    t.is(resized.size, SIZE + MiB)
    t.is(sha256(clean(b)), sha256(clean(a)))
  })

  test(`${kind}: CLI: volume send [--base N] | volume receive, stdout carries only the stream`, async (t) => {
    const a = await volume(await open())
    const b = await volume(await open(1))
    await step(a, [{ kind: 'write', offset: MiB, length: MiB, seed: 9 }])
    await a.pool.close()
    await b.pool.close()
    /** `reflink-pool --pool A volume send VID [args] | reflink-pool --pool B volume receive VID --json`. */
    const pipe = async (args: string[]) => {
      const send = spawnCli(['--pool', a.pool.dirPath, 'volume', 'send', a.vid, ...args])
      const recv = spawnCli(['--pool', b.pool.dirPath, '--json', 'volume', 'receive', b.vid])
      send.stdout.pipe(recv.stdin)
      let sendErr = ''
      let out = ''
      send.stderr.on('data', (d) => (sendErr += d))
      recv.stdout.on('data', (d) => (out += d))
      recv.stderr.on('data', (d) => (out += d))
      const codes = await Promise.all([send, recv].map((p) => new Promise((r) => p.on('close', r))))
      t.deepEqual(codes, [0, 0], `${sendErr}\n${out}`)
      t.regex(sendErr, /Sent .* in /)
      return JSON.parse(out)
    }
    const full = await pipe([])
    t.is(full.baseId, null)
    t.is(sha256(clean(b)), sha256(clean(a)))
    const pa = await ReflinkPool.open({ dirPath: a.pool.dirPath })
    const va = pa.getVolume(a.vid)
    await step(va, [{ kind: 'write', offset: 3 * MiB, length: 4096, seed: 10 }])
    const base = await newest(va)
    await pa.close()
    const inc = await pipe(['--base', base])
    t.is(inc.baseId, full.id)
    t.is(sha256(clean(b)), sha256(clean(va)))
    t.false(inc.compressed)
    // A first transfer cut on the way: exit 1, and the line says how to resume it.
    const cutPool = join(fs().dir, `pool-${seq++}`)
    const sender = await ReflinkPool.open({ dirPath: a.pool.dirPath })
    const stream = await collect(sender.getVolume(a.vid).send())
    await sender.close()
    const cut = await runCli(['--pool', cutPool, 'init', ...(reflink ? [] : ['--no-setup-check'])])
    t.is(cut.status, 0, cut.stderr)
    const r = await runCli(['--pool', cutPool, 'volume', 'receive', a.vid], { input: stream.subarray(0, stream.length - 100) })
    t.is(r.status, 1, r.stderr)
    t.regex(r.stderr, new RegExp(`^reflink-pool: cannot receive ${a.vid}: the stream ended .*verified, are kept: resume with reflink-pool volume send SOURCE --resume TOKEN on the sending host .*volume resume-token ${a.vid}.*ERR_STREAM_CORRUPT`))
    // Bytes that are no stream: one line saying so and that nothing changed, no pool-internal path.
    const junk = await runCli(['--pool', cutPool, 'volume', 'receive', 'appvms/junk/root'], { input: Buffer.alloc(4096) })
    t.is(junk.status, 1, junk.stderr)
    t.is(junk.stderr, 'reflink-pool: cannot receive appvms/junk/root: not a reflink-pool send stream (bad magic); nothing was changed (ERR_STREAM_CORRUPT)\n')
    // A --base that is not a revision number is a usage mistake (exit 2), never "no such revision".
    for (const bad of ['abc', '0', '1.5']) {
      const r = await runCli(['--pool', a.pool.dirPath, 'volume', 'send', a.vid, '--base', bad])
      t.is(r.status, 2, `--base ${bad}: ${r.stderr}`)
      t.regex(r.stderr, /ERR_USAGE/)
      t.is(r.stdout.length, 0, 'no stream bytes')
    }
  })

  test(`${kind}: --compress and --key-file: compressed, keyed streams apply; another key, no key, a keyless stream and unsafe key files are refused with nothing changed`, async (t) => {
    const a = await volume(await open())
    const b = await volume(await open(1))
    // Text compresses; a pattern of one seed repeats every 4 KiB.
    await step(a, [{ kind: 'write', offset: 0, length: 4 * MiB, seed: 11 }])
    const keyFile = join(fs().dir, `key-${seq++}`)
    writeFileSync(keyFile, `${'3f'.repeat(32)}\n`, { mode: 0o600 })
    const otherKey = join(fs().dir, `key-${seq++}`)
    writeFileSync(otherKey, Buffer.alloc(32, 7), { mode: 0o600 })
    const plain = await collect(a.send())
    const packed = await collect(a.send({ compress: true, keyFile }))
    t.true(packed.length < plain.length / 4, `compressed ${packed.length} of ${plain.length} bytes`)
    t.true(records(plain).some((r) => r.kind === 1))

    const refusals: [string, Buffer, string | undefined, string][] = [
      ['another key', packed, otherKey, 'ERR_STREAM_AUTH'],
      ['no key for a keyed stream', packed, undefined, 'ERR_STREAM_AUTH'],
      ['a keyless stream where a key is required', plain, keyFile, 'ERR_STREAM_AUTH'],
    ]
    const loose = join(fs().dir, `key-${seq++}`)
    writeFileSync(loose, readFileSync(keyFile), { mode: 0o640 })
    const link = join(fs().dir, `key-${seq++}`)
    symlinkSync(keyFile, link)
    refusals.push(['a key file group can read', packed, loose, 'ERR_KEY_FILE_UNSAFE'], ['a symlinked key file', packed, link, 'ERR_KEY_FILE_UNSAFE'], ['a directory as key file', packed, fs().dir, 'ERR_KEY_FILE_UNSAFE'])
    for (const [what, stream, key, code] of refusals) {
      const before = snapshotTree(b.pool.dirPath)
      await t.throwsAsync(b.receive(Readable.from(chunks(stream)), key === undefined ? {} : { keyFile: key }), { code }, what)
      t.deepEqual(snapshotTree(b.pool.dirPath), before, `${what}: nothing on disk changed`)
    }
    chmodSync(loose, 0o604)
    await t.throwsAsync(collect(a.send({ keyFile: loose })), { code: 'ERR_KEY_FILE_UNSAFE' }, 'the sender checks its key file too')

    const full = await b.receive(Readable.from(chunks(packed)), { keyFile })
    t.like(full, { compressed: true, keyed: true, baseId: null })
    t.is(sha256(clean(b)), sha256(clean(a)))
    await step(a, [{ kind: 'write', offset: 6 * MiB, length: MiB, seed: 12 }, { kind: 'punch', offset: MiB, length: MiB, seed: 0 }])
    const inc = await b.receive(Readable.from(chunks(await collect(a.send({ base: await newest(a), compress: true, keyFile })))), { keyFile })
    t.is(inc.baseId, full.id)
    t.is(sha256(clean(b)), sha256(clean(a)), 'a compressed, keyed incremental applies byte for byte')
    await a.pool.close()
    await b.pool.close()
  })

  test(`${kind}: receive --like: a full stream applied over a clone of an older version writes only the blocks that differ`, async (t) => {
    const a = await volume(await open())
    const pb = await open(1)
    const old = await volume(pb, 'old')
    await step(a, [{ kind: 'write', offset: 0, length: 4 * MiB, seed: 13 }, { kind: 'write', offset: 8 * MiB, length: 2 * MiB, seed: 14 }])
    await old.receive(Readable.from([await collect(a.send())]))
    // 64 KiB rewritten, a block of zeros written over data, 1 MiB discarded.
    await step(a, [
      { kind: 'write', offset: MiB, length: 64 * 1024, seed: 15 },
      { kind: 'zero', offset: 9 * MiB, length: 4096, seed: 0 },
      { kind: 'punch', offset: 2 * MiB, length: MiB, seed: 0 },
    ])
    const fresh = await volume(pb, 'fresh')
    const report = await fresh.receive(Readable.from(chunks(await collect(a.send({ compress: true })))), { like: old.vid })
    t.is(sha256(clean(fresh)), sha256(clean(a)), 'byte for byte the sender\'s image')
    t.like(report, { like: old.vid, baseId: null, method: reflink ? 'reflink' : 'copy-range' })
    const usage = await fresh.usage()
    t.log(`${kind}: strategy ${report.method}; the received image: ${usage.shared} bytes shared, ${usage.exclusive} exclusive (5 MiB of data, 68 KiB changed)`)
    if (reflink) {
      t.true(usage.exclusive <= 128 * 1024, `only the changed blocks are new: ${usage.exclusive} exclusive bytes`)
      t.true(usage.shared >= 4 * MiB, `the rest is shared with ${old.vid}: ${usage.shared} bytes`)
    } else {
      t.is(usage.shared, 0, 'ext4 shares nothing: the clone is a sparse copy')
    }
    await t.throwsAsync(fresh.receive(Readable.from([await collect(a.send())]), { like: 'vm-templates/nope/root' }), { code: 'ERR_UNKNOWN_VOLUME' })
    await a.pool.close()
    await pb.close()
  })

  test(`${kind}: send --since the receiver's state after 3 commits with revisionsToKeep 1: the kept base makes it an incremental; bases are listed, counted, replaced, forgotten and removed with the volume`, async (t) => {
    const a = await volume(await open(1))
    const b = await volume(await open(1))
    await step(a, [{ kind: 'write', offset: 0, length: 4 * MiB, seed: 11 }])
    const full = await b.receive(Readable.from([await collect(a.send())]))
    const sent = await a.state()
    t.is((await b.state()).id, sent.id, 'both ends name the state alike')
    t.deepEqual((await a.bases()).map((x) => x.id), [sent.id], 'the state sent whole is kept')
    const writes: Op[][] = [
      [{ kind: 'write', offset: MiB, length: 64 * 1024, seed: 12 }],
      [{ kind: 'write', offset: 9 * MiB, length: 128 * 1024, seed: 13 }],
      [{ kind: 'write', offset: 13 * MiB, length: 4096, seed: 14 }],
    ]
    for (const ops of writes) await step(a, ops)
    t.is(Object.keys(await a.revisions()).length, 1, 'revisionsToKeep 1 pruned the sent state as a revision')
    t.is((await a.footprint()).byKind.bases.files, 1, 'the kept base is counted in the footprint')
    const since = (await b.state()).id
    const inc = await collect(a.send({ since }))
    const report = await b.receive(Readable.from(chunks(inc)))
    t.is(report.baseId, full.id, 'an incremental from the kept base, not a full resend')
    t.is(sha256(clean(b)), sha256(clean(a)))
    const changed = 64 * 1024 + 128 * 1024 + 4096
    const data = records(inc).filter((r) => r.kind === 1).reduce((n, r) => n + r.length, 0)
    t.log(`${kind}: send --since after 3 commits: ${inc.length} stream bytes, ${data} data bytes for ${changed} bytes changed`)
    if (reflink) t.true(inc.length <= 1.05 * changed, `${inc.length} bytes on the wire for ${changed} changed`)
    // The newer state was sent: it replaces the older base.
    const now = await a.state()
    t.deepEqual((await a.bases()).map((x) => x.id), [now.id])
    const baseFile = `${clean(a)}.base@${now.id}`
    t.is(readdirSync(join(a.pool.dirPath, 'vm-templates/v')).filter((n) => n.includes('.base@')).join(), `root.img.base@${now.id}`, `named ${baseFile}`)
    await t.throwsAsync(collect(a.send({ since: full.id })), { code: 'ERR_BASE_NOT_FOUND' }, 'an older state, pruned and no longer kept')
    await a.forgetBase(now.id)
    t.deepEqual(await a.bases(), [])
    await t.throwsAsync(a.forgetBase(now.id), { code: 'ERR_BASE_NOT_FOUND' })
    // Still the clean image: an (empty) incremental from it.
    t.is(records(await collect(a.send({ since: now.id }))).length, 1, 'only the END record')
    // A symlink planted under a kept base's name: the send and forgetBase refuse before anything, the link stays.
    const planted = join(a.pool.dirPath, 'vm-templates/v', `root.img.base@${'a'.repeat(32)}`)
    symlinkSync(join(a.pool.dirPath, '..'), planted)
    const before = snapshotTree(a.pool.dirPath)
    const got: Buffer[] = []
    await t.throwsAsync(async () => {
      for await (const c of a.send()) got.push(c as Buffer)
    }, { code: 'ERR_UNSAFE_PATH' })
    t.is(got.length, 0, 'refused before any byte')
    await t.throwsAsync(a.forgetBase('a'.repeat(32)), { code: 'ERR_UNSAFE_PATH' })
    t.deepEqual(snapshotTree(a.pool.dirPath), before)
    unlinkSync(planted)
    // Planted while a send runs: keeping the state fails, and the END record is withheld, so the receiver commits nothing.
    // (12 MiB of data: a stream of more than one 8 MiB batch, so a first one arrives before the end.)
    await step(a, [{ kind: 'write', offset: 0, length: 12 * MiB, seed: 17 }])
    const partial: Buffer[] = []
    await t.throwsAsync(async () => {
      for await (const c of a.send()) {
        if (!partial.length) symlinkSync(join(a.pool.dirPath, '..'), planted)
        partial.push(c as Buffer)
      }
    }, { code: 'ERR_UNSAFE_PATH' })
    t.false(records(Buffer.concat(partial)).some((r) => r.kind === 3), 'no END record left')
    const held = snapshotTree(b.pool.dirPath)
    await t.throwsAsync(b.receive(Readable.from(partial)), { code: 'ERR_STREAM_CORRUPT', message: /before its END/ })
    // What it verified is kept for a resume, never as the volume's data; --abort drops it.
    t.regex(await b.resumeToken(), /^rfp-resume-1\./)
    t.true(await b.abortReceive())
    t.deepEqual(snapshotTree(b.pool.dirPath), held)
    unlinkSync(planted)
    await a.remove()
    t.deepEqual(readdirSync(join(a.pool.dirPath, 'vm-templates')), [], 'remove takes the kept base too')
    await a.pool.close()
    await b.pool.close()
  })

  test(`${kind}: a receive into a pool that lacks the volume creates it from a full stream; an incremental or a refused stream creates nothing; a cut first transfer keeps the volume for its resume`, async (t) => {
    const a = await volume(await open())
    await step(a, [{ kind: 'write', offset: 2 * MiB, length: MiB, seed: 15 }])
    const full = await collect(a.send())
    const fullSha = sha256(clean(a))
    await step(a, [{ kind: 'write', offset: 0, length: 4096, seed: 16 }])
    const inc = await collect(a.send({ base: await newest(a) }))
    const pool = await open()
    const before = snapshotTree(pool.dirPath)
    await t.throwsAsync(pool.receiveVolume(a.vid, Readable.from([inc])), { code: 'ERR_UNKNOWN_VOLUME', message: /full stream creates/ })
    const corrupt = Buffer.from(full)
    corrupt[corrupt.length >> 1] ^= 1
    const refused = await t.throwsAsync(pool.receiveVolume(a.vid, Readable.from(chunks(corrupt))), { code: 'ERR_STREAM_CORRUPT' })
    t.is((refused as { path?: string }).path, undefined, 'a refused stream names no file of the pool (its staging file is gone)')
    t.notRegex(refused!.message, /import\.img/)
    const header = full.subarray(0, 200)
    await t.throwsAsync(pool.receiveVolume(a.vid, Readable.from([header])), { code: 'ERR_STREAM_CORRUPT' })
    t.deepEqual(snapshotTree(pool.dirPath), before, 'nothing made by the refused streams (nor by a cut with nothing verified)')
    t.deepEqual(await pool.listVolumes(), [])
    // A first transfer cut after verified records keeps the volume for its resume; the resumed stream creates nothing more.
    const cutErr = await t.throwsAsync(pool.receiveVolume(a.vid, Readable.from(chunks(full.subarray(0, full.length - 1)))), { code: 'ERR_STREAM_CORRUPT' })
    t.regex(cutErr!.message, /the first \d+ bytes, verified, are kept: resumeToken\(\) gives the sender where to resume/)
    const kept = pool.getVolume(a.vid)
    t.deepEqual(Object.keys(await kept.revisions()), [], 'no revision from the cut')
    const rest = await collect(a.send({ resume: await kept.resumeToken() }))
    const resumedReport = await pool.receiveVolume(a.vid, Readable.from(chunks(rest)))
    t.false(resumedReport.created)
    t.true((resumedReport.resumedFrom ?? 0) > 0)
    t.is(sha256(clean(kept)), fullSha, 'the resumed first transfer is the sender\'s state byte for byte')
    await kept.remove()
    const report = await pool.receiveVolume(a.vid, Readable.from(chunks(full)))
    t.true(report.created)
    const b = pool.getVolume(a.vid)
    t.true(b.saveOnStop && !b.snapOnStart && b.rw, 'an origin volume')
    t.is(await b.size(), SIZE)
    t.is((await b.state()).id, report.id)
    const again = await pool.receiveVolume(a.vid, Readable.from([inc]))
    t.false(again.created)
    t.is(sha256(clean(b)), sha256(clean(a)))
    // The kind travels in the (v2) header: a read-only volume is created read-only.
    await a.setConfig({ rw: false })
    const other = await open()
    t.true((await other.receiveVolume(a.vid, Readable.from([await collect(a.send())]))).created)
    t.false(other.getVolume(a.vid).rw)
    await a.pool.close()
    await pool.close()
    await other.close()
  })

  test(`${kind}: resume: a receive cut at 60 % keeps what it verified; send --resume sends only the rest; the image is byte-identical; --abort drops it`, async (t) => {
    const a = await volume(await open())
    const b = await volume(await open(1))
    await step(a, [{ kind: 'write', offset: 0, length: 6 * MiB, seed: 16 }, { kind: 'write', offset: 9 * MiB, length: 4 * MiB, seed: 17 }])
    const cleanBefore = sha256(clean(b))
    const full = await collect(a.send())
    const cut = full.subarray(0, Math.floor(full.length * 0.6))
    await t.throwsAsync(b.receive(Readable.from(chunks(cut))), { code: 'ERR_STREAM_CORRUPT' })
    t.is(sha256(clean(b)), cleanBefore, 'the partial is never the volume\'s data')
    t.deepEqual(Object.keys(await b.revisions()), [], 'no revision from a cut receive')
    const partials = () => readdirSync(join(b.pool.dirPath, 'vm-templates', 'v')).filter((n) => n.includes('.partial@'))
    t.is(partials().length, 1)
    // Recovery on reopen keeps a partial that its record names.
    await b.pool.close()
    const pb = await ReflinkPool.open({ dirPath: b.pool.dirPath })
    const vb = pb.getVolume(b.vid)
    const token = await vb.resumeToken()
    t.is(partials().length, 1, 'recovery kept the partial')
    const corrupted = token.slice(0, -1) + (token.endsWith('0') ? '1' : '0')
    const [prefix, payload, sum] = token.split('.')
    const fields = JSON.parse(Buffer.from(payload, 'base64url').toString())
    fields[3] += 4096
    const forged = [prefix, Buffer.from(JSON.stringify(fields)).toString('base64url'), sum].join('.')
    for (const bad of [corrupted, forged, 'hello']) t.throws(() => a.send({ resume: bad }), { code: 'ERR_INVALID_ARG_VALUE' })
    const rest = await collect(a.send({ resume: token, compress: true }))
    const restPlain = await collect(a.send({ resume: token }))
    t.log(`${kind}: full stream ${full.length} bytes, cut at ${cut.length}; resumed stream ${restPlain.length} bytes (${(restPlain.length / full.length).toFixed(3)}x), compressed ${rest.length}`)
    // Only whole records count as verified: at most one record (1 MiB) more than what the cut lost.
    t.true(restPlain.length <= full.length - cut.length + MiB + 4096, `resumed ${restPlain.length} of ${full.length} bytes`)
    const report = await vb.receive(Readable.from(chunks(rest)))
    t.true((report.resumedFrom ?? 0) > 0)
    t.is(sha256(clean(b)), sha256(clean(a)), 'byte for byte the sender\'s image')
    t.is(partials().length, 0, 'the commit dropped the partial')
    await t.throwsAsync(vb.resumeToken(), { code: 'ERR_RESUME_MISMATCH' })

    // Cut again, then --abort: the partial goes, and a stale resumed stream is refused with nothing changed.
    await step(a, [{ kind: 'write', offset: 0, length: 2 * MiB, seed: 18 }])
    const second = await collect(a.send())
    await t.throwsAsync(vb.receive(Readable.from([second.subarray(0, second.length >> 1)])), { code: 'ERR_STREAM_CORRUPT' })
    const t2 = await vb.resumeToken()
    t.true(await vb.abortReceive())
    t.is(partials().length, 0)
    const stale = await collect(a.send({ resume: t2 }))
    const before = snapshotTree(pb.dirPath)
    await t.throwsAsync(vb.receive(Readable.from([stale])), { code: 'ERR_RESUME_MISMATCH' })
    t.deepEqual(snapshotTree(pb.dirPath), before, 'a resumed stream without its partial changes nothing')
    await a.pool.close()
    await pb.close()
  })

  test(`${kind}: send and receive options are checked before anything runs`, async (t) => {
    const a = await volume(await open())
    t.throws(() => a.send({ bogus: 1 } as never), { code: 'ERR_INVALID_ARG_VALUE' })
    await t.throwsAsync(collect(a.send({ base: 99 })), { code: 'ERR_REVISION_NOT_FOUND' })
    await t.throwsAsync(a.receive(42 as never), { code: 'ERR_INVALID_ARG_TYPE' })
    t.throws(() => a.send({ since: 'nope' }), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => a.send({ since: 'f'.repeat(32), base: 1 }), { code: 'ERR_INVALID_ARG_VALUE' })
    await t.throwsAsync(collect(a.send({ since: 'f'.repeat(32) })), { code: 'ERR_BASE_NOT_FOUND' })
    await t.throwsAsync(a.forgetBase('x'), { code: 'ERR_INVALID_ARG_VALUE' })
    const ac = new AbortController()
    ac.abort()
    await t.throwsAsync(collect(a.send({ signal: ac.signal })), { name: 'AbortError' })
  })
}

function ensure(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(what)
}

/** Cut a stream into uneven pieces, as a pipe would deliver it. */
export function chunks(b: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let at = 0, n = 1; at < b.length; n = (n * 7 + 3) % 70000 + 1) {
    out.push(b.subarray(at, at + n))
    at += n
  }
  return out
}

export type Ctx = ExecutionContext<unknown>
