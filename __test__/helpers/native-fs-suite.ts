// The native primitives on one real filesystem of the matrix (XFS and btrfs
// clone, ext4 copies the data runs). Each test asserts the copy strategy that
// actually ran (`method`), not just the resulting bytes.
import anyTest, { type TestFn } from 'ava'
import { mkdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import {
  copyFile, createSparseFile, fileUsage, isReflinkSupported, resizeFile, updateLoopDevSizes, type CopyMethod,
} from '../../ts/index'
// Internals by path: the package root exports only the public API.
import { internal } from '../../ts/internal'
import { FS_MATRIX, fsSuite, type FsKind } from './scratch-fs'
import {
  GiB, MiB, allocated, attachLoop, blockDevSize, detachLoop, mtimeNs, scatteredRuns, sha256File, tempFiles, writeData,
  writeSparse,
} from './native-files'

export function nativeFsSuite(kind: FsKind): void {
  const test = anyTest as TestFn
  const expected = FS_MATRIX.find((m) => m.kind === kind)!
  const { test: fsTest, fs } = fsSuite(test, kind)
  let seq = 0
  /** A fresh directory per test on the scratch filesystem. */
  const dir = (label: string) => {
    const d = join(fs().dir, `${++seq}-${label}`)
    mkdirSync(d)
    return d
  }

  fsTest(`${kind}: copyFile uses ${expected.copyMethod} and the copy has the same content`, async (t) => {
    const d = dir('method')
    await writeData(join(d, 'src'), 3 * MiB + 5)
    const r = await copyFile(join(d, 'src'), join(d, 'dst'))
    t.log(`${kind}: method=${r.method} bytes=${r.bytes}`)
    t.is(r.method, expected.copyMethod)
    t.is(r.bytes, expected.copyMethod === 'reflink' ? 0 : 3 * MiB + 5)
    t.is(await sha256File(join(d, 'dst')), await sha256File(join(d, 'src')))
    t.is(statSync(join(d, 'dst')).mode & 0o777, 0o600)
    t.deepEqual(tempFiles(d), [])
  })

  fsTest(`${kind}: isReflinkSupported is ${expected.reflink}`, async (t) => {
    t.is(await isReflinkSupported(dir('probe')), expected.reflink)
  })

  if (expected.reflink) {
    fsTest(`${kind}: a reflink shares extents and stays independent after a write`, async (t) => {
      const d = dir('reflink')
      const src = join(d, 'src')
      const dst = join(d, 'dst')
      await writeData(src, 4 * MiB)
      const before = await sha256File(src)
      const r = await copyFile(src, dst, { reflink: 'always' })
      t.is(r.method, 'reflink')
      t.not(statSync(src).ino, statSync(dst).ino)
      const [us, ud] = [await fileUsage(src), await fileUsage(dst)]
      t.log(`${kind}: shared src=${us.shared} dst=${ud.shared} extents=${ud.extents}`)
      t.true(us.shared > 0, 'source extents are shared')
      t.true(ud.shared > 0, 'copy extents are shared')
      t.is(ud.size, 4 * MiB)
      // Overwrite the copy: the source keeps its bytes (copy on write).
      writeFileSync(dst, Buffer.alloc(MiB, 0x5a), { flag: 'r+' })
      t.is(await sha256File(src), before)
      t.not(await sha256File(dst), before)
      t.true((await fileUsage(dst)).exclusive > 0)
    })
  } else {
    fsTest(`${kind}: reflink 'always' rejects with ERR_REFLINK_UNSUPPORTED and leaves dst untouched`, async (t) => {
      const d = dir('always')
      await writeData(join(d, 'src'), MiB)
      writeFileSync(join(d, 'dst'), 'old')
      const err = await t.throwsAsync(copyFile(join(d, 'src'), join(d, 'dst'), { reflink: 'always' }))
      t.is((err as { code?: string }).code, 'ERR_REFLINK_UNSUPPORTED')
      t.regex(err!.message, /reflink/)
      t.is(readFileSync(join(d, 'dst'), 'utf8'), 'old')
      t.deepEqual(tempFiles(d), [])
    })
  }

  fsTest(`${kind}: reflink 'never' copies with read-write and shares nothing`, async (t) => {
    const d = dir('never')
    await writeData(join(d, 'src'), 2 * MiB)
    const r = await copyFile(join(d, 'src'), join(d, 'dst'), { reflink: 'never' })
    t.is(r.method, 'read-write')
    t.is(r.bytes, 2 * MiB)
    t.is((await fileUsage(join(d, 'dst'))).shared, 0)
    t.is(await sha256File(join(d, 'dst')), await sha256File(join(d, 'src')))
  })

  fsTest(`${kind}: a 1 GiB file with 16 MiB of scattered data keeps its holes`, async (t) => {
    const d = dir('holes')
    const src = join(d, 'src')
    const dst = join(d, 'dst')
    const data = await writeSparse(src, GiB, scatteredRuns(GiB, 16, MiB))
    t.is(data, 16 * MiB)
    const progress: Array<[number, number]> = []
    const r = await copyFile(src, dst, { onProgress: (done, total) => progress.push([done, total]) })
    const [srcAlloc, dstAlloc] = [allocated(src), allocated(dst)]
    t.log(`${kind}: 1 GiB sparse copy: method=${r.method} bytes=${r.bytes} allocated src=${srcAlloc} dst=${dstAlloc}`)
    t.is(r.method, expected.copyMethod)
    t.is(statSync(dst).size, GiB)
    t.true(dstAlloc <= srcAlloc * 1.05, `copy allocates ${dstAlloc} bytes, source ${srcAlloc}`)
    t.is(await sha256File(dst), await sha256File(src))
    t.true(progress.length > 0, 'progress was reported')
    const [lastDone, lastTotal] = progress[progress.length - 1]
    t.is(lastDone, lastTotal, 'the last report is the end')
    for (let i = 1; i < progress.length; i++) t.true(progress[i][0] >= progress[i - 1][0])
    if (r.method !== 'reflink') t.is(lastTotal, r.bytes)
    const reportsAtResolve = progress.length
    await delay(200)
    t.is(progress.length, reportsAtResolve, 'no progress call after the promise resolved')
  })

  // The Qubes file-reflink driver's copy option table: plain, extend, shrink,
  // shrink to 0, each with and without copyMtime; the source never changes.
  const SRC_SIZE = MiB + 4096 + 17
  const cases: Array<{ name: string; size?: number; method: CopyMethod | 'expected' }> = [
    { name: 'plain copy', method: 'expected' },
    { name: 'extend (zero tail)', size: 3 * MiB + 123, method: 'expected' },
    { name: 'shrink', size: 300 * 1024 + 7, method: 'expected' },
    { name: 'shrink to 0', size: 0, method: 'empty' },
  ]
  for (const c of cases) {
    for (const copyMtime of [false, true]) {
      fsTest(`${kind}: ${c.name}${copyMtime ? ' with copyMtime' : ''}`, async (t) => {
        const d = dir('table')
        const src = join(d, 'src')
        const dst = join(d, 'new-dir', 'dst') // the parent is created
        await writeData(src, SRC_SIZE)
        utimesSync(src, new Date('2001-02-03T04:05:06.789Z'), new Date('2001-02-03T04:05:06.789Z'))
        const srcBytes = readFileSync(src)
        const srcMtime = mtimeNs(src)
        const r = await copyFile(src, dst, { size: c.size, copyMtime })
        const method = c.method === 'expected' ? expected.copyMethod : c.method
        t.is(r.method, method)
        const size = c.size ?? SRC_SIZE
        const out = readFileSync(dst)
        t.is(out.length, size)
        const kept = Math.min(size, SRC_SIZE)
        t.true(out.subarray(0, kept).equals(srcBytes.subarray(0, kept)), 'prefix equals the source')
        t.true(out.subarray(kept).equals(Buffer.alloc(size - kept)), 'extension reads as zeros')
        if (method === 'reflink' || method === 'empty') t.is(r.bytes, 0)
        else t.is(r.bytes, kept)
        if (copyMtime) t.is(mtimeNs(dst), srcMtime)
        else t.not(mtimeNs(dst), srcMtime)
        // Source unchanged.
        t.true(readFileSync(src).equals(srcBytes))
        t.is(mtimeNs(src), srcMtime)
        t.deepEqual(tempFiles(join(d, 'new-dir')), [])
      })
    }
  }

  fsTest(`${kind}: createSparseFile and resizeFile allocate no data`, async (t) => {
    const d = dir('sparse')
    const p = join(d, 'img')
    await createSparseFile(p, 10 * GiB)
    t.is(statSync(p).size, 10 * GiB)
    t.is(statSync(p).mode & 0o777, 0o600)
    t.true(allocated(p) <= 64 * 1024, `allocated ${allocated(p)}`)
    await resizeFile(p, 20 * GiB + 512)
    t.is(statSync(p).size, 20 * GiB + 512)
    await resizeFile(p, 4096)
    t.is(statSync(p).size, 4096)
    t.is((await fileUsage(p)).size, 4096)
    t.deepEqual(tempFiles(d), [])
  })

  fsTest(`${kind}: the import writer leaves all-zero blocks as holes and dataRuns finds the data`, async (t) => {
    const d = dir('import')
    const img = join(d, 'import.img')
    await createSparseFile(img, 64 * MiB)
    const w = await internal.openImportWriter(img)
    const chunk = 4 * MiB
    const data = Buffer.alloc(chunk, 0x37)
    const zeros = Buffer.alloc(chunk)
    // Chunks 3 and 10 carry data, the rest are zeros, as a raw image stream would.
    for (let i = 0; i < 16; i++) await w.write(i === 3 || i === 10 ? data : zeros)
    const { written, position } = await w.finish()
    t.is(position, 64 * MiB)
    t.is(written, 2 * chunk)
    t.is(statSync(img).size, 64 * MiB)
    t.true(allocated(img) <= 2 * chunk + 256 * 1024, `allocated ${allocated(img)}`)
    const { runs } = await internal.dataRuns(img)
    const covered = (off: number) => runs.some((r) => r.offset <= off && off + chunk <= r.offset + r.length)
    t.true(covered(3 * chunk) && covered(10 * chunk), JSON.stringify(runs))
    t.is(runs.reduce((n, r) => n + r.length, 0), 2 * chunk)
    const content = readFileSync(img)
    t.true(content.subarray(3 * chunk, 4 * chunk).equals(data))
    t.is(content.subarray(0, 3 * chunk).indexOf(0x37), -1)
  })

  fsTest(`${kind}: updateLoopDevSizes finds devices by real path, also through a symlink`, async (t) => {
    const d = dir('loop')
    const image = join(d, 'disk.img')
    const link = join(d, 'link.img')
    const other = join(d, 'unrelated.img')
    await createSparseFile(image, 111 * MiB)
    await createSparseFile(other, MiB)
    symlinkSync(image, link)
    const devices: string[] = []
    t.teardown(() => {
      for (const dev of devices) detachLoop(dev)
    })
    devices.push(attachLoop(image), attachLoop(link))
    t.deepEqual(devices.map(blockDevSize), [111 * MiB, 111 * MiB])
    await resizeFile(image, 222 * MiB)
    t.deepEqual(await updateLoopDevSizes(other), [])
    // A path that does not exist is resolved leniently (as Qubes' os.path.realpath): no device, no error.
    t.deepEqual(await updateLoopDevSizes(join(d, 'missing', 'disk.img')), [])
    t.deepEqual(devices.map(blockDevSize), [111 * MiB, 111 * MiB], 'an unrelated file changes no device')
    const updated = await updateLoopDevSizes(link)
    t.deepEqual([...updated].sort(), [...devices].sort())
    t.deepEqual(devices.map(blockDevSize), [222 * MiB, 222 * MiB])
  })
}
