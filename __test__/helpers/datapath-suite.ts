// Data in and out of volumes (docs/design.md §6) on one filesystem of the
// matrix, plus a second scratch filesystem of another kind for the
// across-filesystems cases. Each copy asserts the method that ran (reflink,
// copy-range, read-write), that holes stay holes (allocated bytes), and that an
// abort leaves nothing; stream exports are compared by sha256 with the image and
// shown not to read its holes (/proc/self/io rchar).
import type { TestFn } from 'ava'
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ReflinkPool, type ReflinkVolume } from '../../ts/index'
import { runCli, runJson } from './cli-run'
import { GiB, MiB, allocated, scatteredRuns, sha256File, tempFiles, writeSparse } from './native-files'
import { snapshotTree } from './pool-fixture'
import { FS_MATRIX, fsSuite, mountScratch, unavailableReason, type FsKind, type ScratchFs } from './scratch-fs'

/** Bytes read by this process so far (read/pread syscalls): holes read would show here. */
function rchar(): number {
  return Number(/^rchar:\s+(\d+)/m.exec(readFileSync('/proc/self/io', 'utf8'))![1])
}

/** Open descriptors of this process that name `path`. */
function fdsOn(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path
    } catch {
      return false
    }
  }).length
}

async function sha256Stream(stream: Readable): Promise<{ hash: string; bytes: number }> {
  const h = createHash('sha256')
  let bytes = 0
  for await (const c of stream) {
    h.update(c as Buffer)
    bytes += (c as Buffer).length
  }
  return { hash: h.digest('hex'), bytes }
}

export function datapathSuite(avaTest: TestFn, kind: FsKind): void {
  const { test, fs } = fsSuite(avaTest, kind)
  const expected = FS_MATRIX.find((m) => m.kind === kind)!
  // The other filesystem: ext4 beside XFS and btrfs, XFS beside ext4.
  const otherKind: FsKind = kind === 'ext4' ? 'xfs' : 'ext4'
  let other: ScratchFs | undefined
  if (!unavailableReason(otherKind)) {
    avaTest.before(() => {
      other = mountScratch(otherKind)
    })
    avaTest.after.always(() => other?.unmount())
  }
  const otherDir = () => {
    if (!other) throw new Error(`${otherKind} unavailable: ${unavailableReason(otherKind)}`)
    return other.dir
  }
  let seq = 0
  /** A fresh pool, closed when the test ends (an open pool holds a handle on the filesystem). */
  const open = async (t: { teardown(fn: () => Promise<void> | void): void }) => {
    const pool = await ReflinkPool.open({ dirPath: join(fs().dir, `pool-${++seq}`), setupCheck: expected.reflink })
    t.teardown(() => pool.close())
    return pool
  }
  const scratch = (base: string, label: string) => {
    const d = join(base, `files-${++seq}-${label}`)
    mkdirSync(d, { recursive: true })
    return d
  }
  const origin = (pool: ReflinkPool, name = 'root') =>
    pool.createVolume({ vid: `vm-templates/t-${name}/${name}`, name, size: 4 * MiB, saveOnStop: true })
  const clean = (pool: ReflinkPool, v: ReflinkVolume) => join(pool.dirPath, `${v.vid}.img`)
  /** A 64 MiB image with 8 runs of 256 KiB of random data. */
  const image = async (dir: string) => {
    const path = join(dir, 'disk.raw')
    const data = await writeSparse(path, 64 * MiB, scatteredRuns(64 * MiB, 8, 256 * 1024))
    return { path, data }
  }
  const sameFsMethod = expected.copyMethod

  // ---- file import ------------------------------------------------------------

  test(`${kind}: importFile from the pool's filesystem uses ${sameFsMethod}, commits a revision, keeps holes`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    const src = await image(scratch(fs().dir, 'import'))
    const r = await v.importFile(src.path)
    t.log(`${kind}: importFile same filesystem: ${JSON.stringify(r)}`)
    t.is(r.method, sameFsMethod)
    t.is(await sha256File(clean(pool, v)), await sha256File(src.path))
    t.is(await v.size(), 64 * MiB)
    t.deepEqual(Object.keys(await v.revisions()), ['1'])
    const alloc = allocated(clean(pool, v))
    t.true(alloc <= src.data * 1.02 + 64 * 1024, `allocated ${alloc} for ${src.data} bytes of data`)
  })

  test(`${kind}: importFile from another filesystem (${otherKind}) uses read-write and keeps holes`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    const src = await image(scratch(otherDir(), 'import'))
    const r = await v.importFile(src.path)
    t.log(`${kind}: importFile from ${otherKind}: ${JSON.stringify(r)}`)
    t.is(r.method, 'read-write')
    t.is(r.bytes, src.data)
    t.is(await sha256File(clean(pool, v)), await sha256File(src.path))
    t.true(allocated(clean(pool, v)) <= src.data * 1.02 + 64 * 1024)
  })

  test(`${kind}: importFile turns zero blocks into holes unless it clones; { sparse: 'always' } also instead of a clone`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    const path = join(scratch(fs().dir, 'raw'), 'full.raw')
    const content = Buffer.alloc(16 * MiB)
    content.fill(0x5a, 5 * MiB, 5 * MiB + 128 * 1024)
    writeFileSync(path, content)
    t.true(allocated(path) >= 16 * MiB, 'the source is fully allocated')
    const plain = await v.importFile(path)
    t.is(plain.method, sameFsMethod)
    t.true(readFileSync(clean(pool, v)).equals(content))
    if (expected.reflink) t.true(allocated(clean(pool, v)) >= 16 * MiB, `${sameFsMethod}: a clone shares the zero blocks as they are`)
    // Every copy that is not a clone leaves zero blocks as holes, as Qubes' cp --sparse=always.
    else t.true(allocated(clean(pool, v)) <= 128 * 1024 + 64 * 1024, `${sameFsMethod} (default): zero blocks became holes, allocated ${allocated(clean(pool, v))}`)
    const across = join(scratch(otherDir(), 'raw'), 'full.raw')
    writeFileSync(across, content)
    const fromOther = await v.importFile(across)
    t.is(fromOther.method, 'read-write')
    t.true(readFileSync(clean(pool, v)).equals(content))
    t.true(allocated(clean(pool, v)) <= 128 * 1024 + 64 * 1024, `read-write from ${otherKind} (default): zero blocks became holes, allocated ${allocated(clean(pool, v))}`)
    const r = await v.importFile(path, { sparse: 'always' })
    t.is(r.method, 'read-write')
    t.true(readFileSync(clean(pool, v)).equals(content))
    const alloc = allocated(clean(pool, v))
    t.true(alloc <= 128 * 1024 + 64 * 1024, `allocated ${alloc}`)
    await t.throwsAsync(v.importFile(path, { sparse: 'sometimes' as 'always' }), { code: 'ERR_INVALID_ARG_VALUE' })
    await t.throwsAsync(v.importFile(path, { sparce: 'always' } as object), { code: 'ERR_INVALID_ARG_VALUE' })
  })

  test(`${kind}: importFile aborted mid-copy commits nothing and leaves no file`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    const dirty = await v.start()
    writeFileSync(dirty, 'committed before')
    await v.stop()
    const path = join(scratch(fs().dir, 'abort'), 'big.raw')
    writeFileSync(path, Buffer.alloc(128 * MiB, 1))
    // sparse: 'always' reads in 1 MiB pieces on every filesystem; the abort is sent from the
    // first progress report. A copy that finished before the abort reached it stands (it
    // commits): then try again with the page cache dropped, so the reads are slower.
    let aborted = 0
    for (let attempt = 0; attempt < 4 && aborted === 0; attempt++) {
      const before = snapshotTree(pool.dirPath)
      writeFileSync('/proc/sys/vm/drop_caches', '1')
      const ac = new AbortController()
      try {
        await v.importFile(path, { sparse: 'always', signal: ac.signal, onProgress: () => ac.abort() })
        t.log(`${kind}: attempt ${attempt}: the copy finished before the abort reached it`)
        t.is(readFileSync(clean(pool, v))[0], 1, 'a completed import is committed')
      } catch (e) {
        t.is((e as Error).name, 'AbortError')
        t.deepEqual(snapshotTree(pool.dirPath), before, 'nothing in the pool changed')
        aborted++
      }
    }
    t.is(aborted, 1, 'an abort landed mid-copy')
    const before = snapshotTree(pool.dirPath)
    await t.throwsAsync(v.importFile(path, { signal: AbortSignal.abort() }), { name: 'AbortError' })
    t.deepEqual(snapshotTree(pool.dirPath), before)
    rmSync(path)
  })

  test(`${kind}: importFile refuses a FIFO and a directory without blocking or changing anything`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    const d = scratch(fs().dir, 'fifo')
    const fifo = join(d, 'pipe')
    execFileSync('mkfifo', [fifo])
    const before = snapshotTree(pool.dirPath)
    await t.throwsAsync(v.importFile(fifo), { code: 'ERR_INVALID_ARG_VALUE', message: /FIFO.*importStream/ })
    await t.throwsAsync(v.importFile(d), { code: 'ERR_INVALID_ARG_VALUE', message: /directory/ })
    await t.throwsAsync(v.importFile(join(d, 'missing')), { code: 'ENOENT' })
    t.deepEqual(snapshotTree(pool.dirPath), before)
  })

  // ---- file export ------------------------------------------------------------

  test(`${kind}: exportToFile on the pool's filesystem uses ${sameFsMethod}; on ${otherKind} read-write; holes kept, durable, no temp`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    const src = await image(scratch(fs().dir, 'exp-src'))
    await v.importFile(src.path)
    const want = await sha256File(src.path)
    for (const [dir, method] of [
      [scratch(fs().dir, 'exp'), sameFsMethod],
      [scratch(otherDir(), 'exp'), 'read-write'],
    ] as const) {
      const dest = join(dir, 'out.raw')
      writeFileSync(dest, 'an older file')
      const progress: number[] = []
      const r = await v.exportToFile(dest, { onProgress: (done) => progress.push(done) })
      t.log(`${kind}: exportToFile -> ${dir}: ${JSON.stringify(r)}`)
      t.is(r.method, method)
      t.is(await sha256File(dest), want)
      t.true(allocated(dest) <= src.data * 1.02 + 64 * 1024, `allocated ${allocated(dest)}`)
      t.is(statSync(dest).mode & 0o777, 0o600)
      t.deepEqual(tempFiles(dir), [])
      t.is(progress.at(-1), r.method === 'reflink' ? 64 * MiB : src.data)
    }
  })

  test(`${kind}: exportToFile aborted leaves the existing file untouched; refuses a FIFO destination`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    const d = scratch(fs().dir, 'exp-abort')
    const raw = join(d, 'full.raw')
    writeFileSync(raw, Buffer.alloc(32 * MiB, 3))
    await v.importFile(raw)
    const dest = join(d, 'dest.raw')
    writeFileSync(dest, 'keep me')
    const ac = new AbortController()
    ac.abort()
    await t.throwsAsync(v.exportToFile(dest, { signal: ac.signal }), { name: 'AbortError' })
    t.is(readFileSync(dest, 'utf8'), 'keep me')
    t.deepEqual(tempFiles(d), [])
    const fifo = join(d, 'pipe')
    execFileSync('mkfifo', [fifo])
    await t.throwsAsync(v.exportToFile(fifo), { code: 'ERR_INVALID_ARG_VALUE', message: /FIFO/ })
    t.true(statSync(fifo).isFIFO())
  })

  test(`${kind}: exportToFile refuses a destination inside the pool (direct, through .., through a symlink): no committed image is replaced`, async (t) => {
    const pool = await open(t)
    const a = await origin(pool, 'a')
    const b = await origin(pool, 'b')
    const d = scratch(fs().dir, 'exp-inside')
    const src = await image(d)
    await a.importFile(src.path)
    const before = snapshotTree(pool.dirPath)
    const link = join(d, 'into-pool')
    symlinkSync(pool.dirPath, link)
    for (const dest of [clean(pool, b), join(pool.dirPath, 'vm-templates', '..', b.vid + '.img'), join(link, 'vm-templates', 'new.img'), join(pool.dirPath, 'stray.img')]) {
      await t.throwsAsync(a.exportToFile(dest), { code: 'ERR_INVALID_ARG_VALUE', message: /inside the pool/ }, dest)
    }
    t.deepEqual(snapshotTree(pool.dirPath), before, 'the pool is as it was: same files, same inodes, same content')
    // Beside the pool (a sibling whose name starts the same) is outside.
    const sibling = `${pool.dirPath}-export.raw`
    await a.exportToFile(sibling)
    t.is(await sha256File(sibling), await sha256File(src.path))
  })

  test(`${kind}: CLI volume import refuses a directory or character device before the size check; reads a block device like a pipe`, async (t) => {
    const pool = await open(t)
    const v = await pool.createVolume({ vid: 'appvms/blk/root', name: 'root', size: 16 * MiB, saveOnStop: true })
    await pool.close()
    const env = { REFLINK_POOL_DIR: pool.dirPath }
    for (const [src, what] of [[fs().dir, 'a directory'], ['/dev/null', 'a character device']]) {
      const r = await runJson(['volume', 'import', v.vid, src], { env })
      t.is(r.result.status, 1, r.result.stderr)
      t.is(r.json.error.code, 'ERR_INVALID_ARG_VALUE')
      t.regex(r.json.error.message, new RegExp(`it is ${what}`))
    }
    const d = scratch(fs().dir, 'blk')
    const backing = join(d, 'disk.raw')
    const data = Buffer.alloc(16 * MiB)
    data.fill(7, 3 * MiB, 5 * MiB)
    writeFileSync(backing, data)
    const dev = execFileSync('losetup', ['--find', '--show', '--read-only', backing], { encoding: 'utf8' }).trim()
    t.teardown(() => execFileSync('losetup', ['-d', dev]))
    const r = await runJson(['volume', 'import', v.vid, dev], { env })
    t.is(r.result.status, 0, r.result.stderr)
    t.is(r.json.method, 'stream')
    t.is(r.json.bytes, 16 * MiB, 'the size came from the device')
    const again = await ReflinkPool.open({ dirPath: pool.dirPath })
    const img = clean(again, await again.getVolume(v.vid))
    t.is(await sha256File(img), await sha256File(backing))
    t.true(allocated(img) <= 2 * MiB * 1.02, 'the zero blocks of the device became holes')
    await again.close()
  })

  // ---- stream export ----------------------------------------------------------

  test.serial(`${kind}: exportStream of a 1 GiB image with 1 MiB of data is byte-identical and never reads the holes`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    const d = scratch(fs().dir, 'stream')
    const path = join(d, 'big.raw')
    await writeSparse(path, GiB, [[300 * MiB, 768 * 1024], [GiB - 256 * 1024, 256 * 1024]])
    await v.importFile(path)
    const want = await sha256File(path)
    const read0 = rchar()
    const t0 = performance.now()
    const got = await sha256Stream(v.exportStream())
    const ms = performance.now() - t0
    const read = rchar() - read0
    t.log(`${kind}: exportStream 1 GiB (1 MiB data): ${ms.toFixed(0)} ms, ${read} bytes read by the process`)
    t.is(got.bytes, GiB)
    t.is(got.hash, want)
    t.true(read < 16 * MiB, `read ${read} bytes for 1 MiB of data`)
    t.is(fdsOn(clean(pool, v)), 0, 'the image is closed at the end')
  })

  test(`${kind}: exportPipe writes the image into a descriptor natively; a reader that leaves is EPIPE, an abort ends a stalled one`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    const d = scratch(fs().dir, 'pipe-out')
    const src = await image(d)
    await v.importFile(src.path)
    const fifo = join(d, 'fifo')
    execFileSync('mkfifo', [fifo])
    /** Start `script` reading the FIFO, then open its write end (which waits for that reader). */
    const withReader = (script: string) => {
      const child = spawn('sh', ['-c', script])
      const closed = once(child, 'close')
      return { fd: openSync(fifo, 'w'), closed, child }
    }
    const out = join(d, 'out.raw')
    const whole = withReader(`cat "${fifo}" > "${out}"`)
    const progress: number[] = []
    t.is(await v.exportPipe(whole.fd, { onProgress: (done) => progress.push(done) }), 64 * MiB)
    closeSync(whole.fd)
    await whole.closed
    t.is(await sha256File(out), await sha256File(src.path))
    t.is(progress.at(-1), 64 * MiB)
    // A reader that stops after 1000 bytes: EPIPE (Node ignores SIGPIPE), the image released.
    const early = withReader(`head -c 1000 "${fifo}" > /dev/null`)
    await t.throwsAsync(v.exportPipe(early.fd), { code: 'EPIPE' })
    closeSync(early.fd)
    await early.closed
    // A reader that never reads: the pipe fills, and the abort still ends the export.
    const stalled = withReader(`exec tail -f /dev/null < "${fifo}"`)
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 300)
    const started = Date.now()
    await t.throwsAsync(v.exportPipe(stalled.fd, { signal: ac.signal }), { name: 'AbortError' })
    t.true(Date.now() - started < 5000, 'the abort is seen while the reader stalls')
    closeSync(stalled.fd)
    stalled.child.kill()
    await stalled.closed
    await t.throwsAsync(v.exportPipe(-1), { code: 'ERR_INVALID_ARG_VALUE' })
    t.is(fdsOn(clean(pool, v)), 0, 'no descriptor left on the image')
  })

  test(`${kind}: exportStream start/end are inclusive like fs.createReadStream; bad ranges are typed errors`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    const src = await image(scratch(fs().dir, 'range'))
    await v.importFile(src.path)
    const all = readFileSync(src.path)
    const [, run] = scatteredRuns(64 * MiB, 8, 256 * 1024)
    for (const [start, end] of [[0, 0], [run[0] - 5, run[0] + 5], [run[0] + 100, 64 * MiB - 1], [64 * MiB - 3, 100 * MiB]]) {
      const got = Buffer.concat(await v.exportStream({ start, end }).toArray())
      t.true(got.equals(all.subarray(start, end + 1)), `[${start}, ${end}]`)
    }
    t.is(Buffer.concat(await v.exportStream({ start: 70 * MiB }).toArray()).length, 0)
    t.throws(() => v.exportStream({ start: 10, end: 5 }), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => v.exportStream({ start: -1 }), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => v.exportStream({ strat: 1 } as object), { code: 'ERR_INVALID_ARG_VALUE' })
  })

  test(`${kind}: exportStream into a closed destination fails the pipeline and releases the image; abort stops it`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    const path = join(scratch(fs().dir, 'closed'), 'full.raw')
    writeFileSync(path, Buffer.alloc(32 * MiB, 7))
    await v.importFile(path)
    let got = 0
    const closing = new Writable({
      write(chunk: Buffer, _e, cb) {
        got += chunk.length
        cb(new Error('reader went away'))
      },
    })
    const failing = v.exportStream()
    const closed = new Promise((r) => failing.once('close', r))
    await t.throwsAsync(pipeline(failing, closing), { message: 'reader went away' })
    t.true(got > 0)
    await closed
    t.is(fdsOn(clean(pool, v)), 0, 'the image is closed once the stream closed')
    const ac = new AbortController()
    const s = v.exportStream({ signal: ac.signal })
    const aborted = new Promise((r) => s.once('close', r))
    let chunks = 0
    const err = await t.throwsAsync(async () => {
      for await (const _ of s) if (++chunks === 2) ac.abort()
    })
    t.is(err!.name, 'AbortError')
    await aborted
    t.is(fdsOn(clean(pool, v)), 0, 'the image is closed after an abort')
  })

  // ---- stream import ----------------------------------------------------------

  test(`${kind}: importStream in odd-sized chunks leaves zero blocks as holes (allocated <= 1.02 x data) and equals the source`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    const src = await image(scratch(fs().dir, 'simport'))
    const content = readFileSync(src.path)
    const chunks: Buffer[] = []
    for (let off = 0; off < content.length; off += 65_537) chunks.push(content.subarray(off, off + 65_537))
    await v.importStream(Readable.from(chunks), content.length)
    t.is(await sha256File(clean(pool, v)), await sha256File(src.path))
    const alloc = allocated(clean(pool, v))
    t.log(`${kind}: importStream allocated ${alloc} for ${src.data} bytes of data`)
    t.true(alloc <= src.data * 1.02, `allocated ${alloc} for ${src.data}`)
    // Typed-array chunks count by their bytes (an async generator: copied before batching).
    const words = new Uint16Array(content.buffer, content.byteOffset, content.length / 2)
    async function* typed() {
      for (let i = 0; i < words.length; i += 1 << 19) yield words.subarray(i, i + (1 << 19))
    }
    await v.importStream(typed() as AsyncIterable<ArrayBufferView> as AsyncIterable<Uint8Array>, content.length)
    t.is(await sha256File(clean(pool, v)), await sha256File(src.path))
    const before = snapshotTree(pool.dirPath)
    await t.throwsAsync(v.importStream(Readable.from(['text']), 4), { code: 'ERR_INVALID_ARG_TYPE' })
    t.deepEqual(snapshotTree(pool.dirPath), before)
  })

  test(`${kind}: importPipe reads a FIFO natively (holes kept); an abort while it waits for a writer, or a short or long stream, commits nothing`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    const d = scratch(fs().dir, 'pipe')
    const src = await image(d)
    const fifo = join(d, 'pipe')
    execFileSync('mkfifo', [fifo])
    const feed = (file: string, bytes?: number) => {
      const writer = spawn('sh', ['-c', bytes === undefined ? `cat "${file}" > "${fifo}"` : `head -c ${bytes} "${file}" > "${fifo}"`])
      return once(writer, 'close')
    }
    let fed = feed(src.path)
    const progress: number[] = []
    await v.importPipe(fifo, 64 * MiB, { onProgress: (done) => progress.push(done) })
    await fed
    t.is(await sha256File(clean(pool, v)), await sha256File(src.path))
    t.true(allocated(clean(pool, v)) <= src.data * 1.02, `allocated ${allocated(clean(pool, v))}`)
    t.is(progress.at(-1), 64 * MiB)
    const before = snapshotTree(pool.dirPath)
    // No writer ever comes: the abort is seen while the pump polls.
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 300)
    const t0 = performance.now()
    await t.throwsAsync(v.importPipe(fifo, 64 * MiB, { signal: ac.signal }), { name: 'AbortError' })
    const ms = performance.now() - t0
    t.log(`${kind}: importPipe with no writer aborted after ${ms.toFixed(0)} ms (abort at 300 ms)`)
    // Without the abort it would wait for a writer forever; the bound only allows for slow fsyncs.
    t.true(ms < 30_000)
    t.deepEqual(snapshotTree(pool.dirPath), before)
    fed = feed(src.path, 1000)
    await t.throwsAsync(v.importPipe(fifo, 64 * MiB), { code: 'ERR_INVALID_ARG_VALUE', message: /ended after 1000 of/ })
    await fed
    fed = feed(src.path)
    await t.throwsAsync(v.importPipe(fifo, MiB), { code: 'ERR_INVALID_ARG_VALUE', message: /longer than the announced size/ })
    await fed.catch(() => {})
    t.deepEqual(snapshotTree(pool.dirPath), before, 'nothing committed by the failed imports')
  })

  // ---- CLI ----------------------------------------------------------------------

  test(`${kind}: CLI volume import/export of a file print the method; FIFOs and - stream; a closed pipe is not an error`, async (t) => {
    const pool = await open(t)
    const v = await origin(pool)
    await pool.close()
    const env = { REFLINK_POOL_DIR: pool.dirPath }
    const d = scratch(fs().dir, 'cli')
    const src = await image(d)
    const want = await sha256File(src.path)
    const imp = await runJson(['volume', 'import', v.vid, src.path], { env })
    t.is(imp.result.status, 0, imp.result.stderr)
    t.is(imp.json.method, sameFsMethod)
    const out = join(d, 'out.raw')
    const exp = await runJson(['volume', 'export', v.vid, out], { env })
    t.is(exp.result.status, 0, exp.result.stderr)
    t.is(exp.json.method, sameFsMethod)
    t.is(await sha256File(out), want)
    const human = await runCli(['volume', 'export', v.vid, join(otherDir(), `cli-${seq}.raw`)], { env })
    t.regex(human.stdout, /\(read-write\)/)
    // Export to a FIFO: streamed to its reader.
    const fifo = join(d, 'pipe')
    execFileSync('mkfifo', [fifo])
    const sink = join(d, 'from-fifo.raw')
    const reader = spawn('sh', ['-c', `cat "${fifo}" > "${sink}"`])
    const readerDone = once(reader, 'close')
    const toFifo = await runJson(['volume', 'export', v.vid, fifo], { env })
    await readerDone
    t.is(toFifo.json.method, 'stream')
    t.is(await sha256File(sink), want)
    // Export to stdout read by a reader that stops early: exit 0.
    const head = execFileSync('sh', ['-c', `"${process.execPath}" "${join(__dirname, '..', '..', 'bin', 'reflink-pool.js')}" volume export ${v.vid} - | head -c 1000 | wc -c`], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    })
    t.is(head.trim(), '1000')
    // Import from stdin: streamed (a socket from this Node parent: read through process.stdin).
    const fromStdin = await runJson(['volume', 'import', v.vid, '-', '--size', String(64 * MiB)], { env, input: readFileSync(src.path) })
    t.is(fromStdin.result.status, 0, fromStdin.result.stderr)
    t.is(fromStdin.json.method, 'stream')
    // From a shell pipe: read natively as /dev/stdin.
    const piped = execFileSync('sh', ['-c', `cat "${src.path}" | "${process.execPath}" "${join(__dirname, '..', '..', 'bin', 'reflink-pool.js')}" volume import ${v.vid} - --size ${64 * MiB} --json`], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    })
    t.is(JSON.parse(piped).method, 'stream')
    const midway = await ReflinkPool.open({ dirPath: pool.dirPath })
    t.is(await sha256File(clean(midway, await midway.getVolume(v.vid))), want)
    t.true(allocated(clean(midway, await midway.getVolume(v.vid))) <= src.data * 1.02)
    await midway.close()
    const again = await ReflinkPool.open({ dirPath: pool.dirPath })
    t.is(await sha256File(clean(again, await again.getVolume(v.vid))), want)
    await again.close()
    t.false(existsSync(join(pool.dirPath, `${v.vid}-import.img`)))
  })
}
