// Faults (docs/design.md §4): ENOSPC during a commit, an import and a
// fallback copy; EROFS; EXDEV between pools on two filesystems; the source
// template removed or replaced while snapshots start; EIO from the disk.
// Each case checks: a clear typed error, nothing committed lost or changed,
// no leftovers, and the pool works again once the fault is gone.
import test, { type ExecutionContext } from 'ava'
import { existsSync, readFileSync, statSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { mountScratch, unavailableReason, requireFs, type FsKind, type ScratchFs } from './helpers/scratch-fs'
import { Prng } from './helpers/reliability-prng'
import { diffManifest, hashBuffer, hashFile, manifest, poolImageFiles, tempFiles } from './helpers/reliability-files'
import { codeOf, loadApi, type Pool, type Volume } from './helpers/reliability-api'
import { chunkedStream, cleanPath, importPayload, scribble } from './helpers/reliability-workload'
import { breakFileData, fillUp, remountReadOnly, sh } from './helpers/reliability-faults'
import { logFigures } from './helpers/reliability-report'

const MiB = 1024 * 1024
const statfsFree = (dir: string) => { const s = statfsSync(dir); return s.bavail * s.bsize }
const api = () => loadApi()

/** A test that needs these filesystems, mounted for it alone; skipped loudly (failing under REFLINK_POOL_REQUIRE_FS=1) when unavailable. */
function withFs(title: string, kinds: Array<{ kind: FsKind; sizeMiB: number }>, fn: (t: ExecutionContext, fss: ScratchFs[]) => Promise<void>) {
  const reason = kinds.map((k) => unavailableReason(k.kind)).find((r) => r)
  if (reason) {
    if (requireFs) test(title, (t) => t.fail(reason))
    else test.skip(`${title} [skipped: ${reason}]`, () => {})
    return
  }
  test.serial(title, async (t) => {
    const fss: ScratchFs[] = []
    try {
      for (const k of kinds) fss.push(mountScratch(k.kind, { sizeMiB: k.sizeMiB }))
      await fn(t, fss)
    } finally {
      for (const fs of fss) fs.unmount()
    }
  })
}

async function rejectsWith(t: ExecutionContext, p: Promise<unknown>, codes: string[], what: string): Promise<string> {
  try {
    await p
  } catch (e) {
    const code = codeOf(e)
    t.true(codes.includes(code), `${what}: expected ${codes.join('|')}, got ${code}: ${(e as Error)?.message}`)
    t.truthy((e as Error).message, `${what}: the error has a message`)
    return code
  }
  t.fail(`${what}: resolved, expected ${codes.join('|')}`)
  return 'none'
}

function noLeftovers(t: ExecutionContext, poolDir: string, what: string) {
  const left = poolImageFiles(poolDir).filter((f) => f.kind === 'temp' || f.kind === 'import').map((f) => f.rel)
  t.deepEqual([...left, ...tempFiles(poolDir)], [], `${what}: no temp or import files left`)
}

/** A save-on-stop volume whose clean image holds `dataBlocks` random blocks. */
async function filledVolume(pool: Pool, vid: string, size: number, g: Prng, dataBlocks: number): Promise<Volume> {
  const vol = await pool.createVolume({ vid, name: vid.split('/').pop()!, size, saveOnStop: true, rw: true, revisionsToKeep: 1 })
  await vol.start()
  scribble(vol.path, g, dataBlocks, false)
  await vol.stop()
  return vol
}

withFs('ENOSPC during a commit and an import on a small filesystem: clear error, nothing lost, no leftovers, works after space is freed', [{ kind: 'ext4', sizeMiB: 96 }], async (t, [fs]) => {
  const g = new Prng(61)
  const dir = join(fs.dir, 'pool')
  const pool = await api().ReflinkPool.open({ dirPath: dir, setupCheck: false })
  const figures = { cases: 0, violations: 0 }
  try {
    const vol = await filledVolume(pool, 'appvms/a/private', 8 * MiB, g, 2048)
    const snap = await pool.createVolume({ vid: 'appvms/s/private', name: 'private', snapOnStart: true, source: vol.vid, rw: true })
    const other = await pool.createVolume({ vid: 'appvms/b/private', name: 'private', size: 1 * MiB, saveOnStop: true, rw: true })
    const clean0 = hashFile(cleanPath(dir, vol.vid))
    await vol.start()
    scribble(vol.path, g, 64, false)
    const dirty = hashFile(vol.path)
    // A running snapshot holds the clean image under a second name, so the
    // revision cannot be that inode (docs/design.md §3): it is a full copy.
    await snap.start()
    // Leave a little room: the locks and records fit, the data does not.
    let free = fillUp(fs, 2 * MiB)

    figures.cases++
    const code = await rejectsWith(t, vol.stop(), ['ENOSPC'], 'stop (commit) needing a copy on a full filesystem')
    t.is(hashFile(cleanPath(dir, vol.vid)), clean0, 'the clean image is unchanged')
    t.true(existsSync(vol.path), 'the uncommitted dirty image is kept')
    t.is(hashFile(vol.path), dirty, 'the dirty image is unchanged')
    noLeftovers(t, dir, 'failed commit')

    // With the snapshot stopped the commit moves no data: the revision is the
    // replaced image itself, so it goes through on a filesystem just as full.
    await snap.stop()
    free()
    free = fillUp(fs, 2 * MiB)
    figures.cases++
    const cleanIno = statSync(cleanPath(dir, vol.vid)).ino
    await vol.stop()
    t.is(hashFile(cleanPath(dir, vol.vid)), dirty, 'the commit holds the dirty content')
    const revs = poolImageFiles(dir).filter((f) => f.kind === 'revision' && f.volume === vol.vid)
    t.is(revs.length, 1, 'one revision kept')
    t.is(statSync(join(dir, revs[0].rel)).ino, cleanIno, 'the revision is the replaced clean image (a hard link, no copy)')
    t.is(hashFile(join(dir, revs[0].rel)), clean0)

    // Import: staging needs real blocks.
    figures.cases++
    const otherClean = hashFile(cleanPath(dir, other.vid))
    const data = importPayload(g, 16 * MiB)
    await rejectsWith(t, other.importStream(chunkedStream(data, g), data.length), ['ENOSPC'], 'importStream on a full filesystem')
    t.is(hashFile(cleanPath(dir, other.vid)), otherClean, 'import target unchanged')
    noLeftovers(t, dir, 'failed import')

    // ext4 hands freed blocks back to the allocator when the journal commits; sync so the space is really there.
    free()
    sh('sync', ['-f', fs.dir])
    t.log(`after freeing: ${statfsFree(fs.dir)} bytes free`)
    await other.importStream(chunkedStream(data, g), data.length)
    t.is(hashFile(cleanPath(dir, other.vid)), hashBuffer(data), 'after freeing space the import succeeds')
    await snap.start()
    await vol.start()
    await vol.stop()
    await snap.stop()
    t.is(hashFile(cleanPath(dir, vol.vid)), dirty, 'a commit that copies works again after freeing space')
    noLeftovers(t, dir, 'after recovery')
    t.log(`commit failed with ${code}`)
  } finally {
    await pool.close()
  }
  logFigures(t, 'faults/ENOSPC commit+import', figures)
})

withFs('a full filesystem (ENOSPC for the session file) still opens the pool for reading, with a warning; a change fails and changes nothing', [{ kind: 'xfs', sizeMiB: 320 }], async (t, [fs]) => {
  const g = new Prng(63)
  const dir = join(fs.dir, 'pool')
  const first = await api().ReflinkPool.open({ dirPath: dir, setupCheck: true })
  const vol = await filledVolume(first, 'appvms/a/private', 8 * MiB, g, 256)
  await vol.start()
  scribble(vol.path, g, 64, false)
  const dirty = hashFile(vol.path)
  const clean = hashFile(cleanPath(dir, vol.vid))
  await first.close()
  const free = fillUp(fs)
  try {
    const before = manifest(dir)
    const pool = await api().ReflinkPool.open({ dirPath: dir })
    try {
      t.regex(pool.warnings.join('\n'), /is full \(ENOSPC\): the pool opened for reading/)
      t.deepEqual((await pool.listVolumes()).map((v: Volume) => v.vid), [vol.vid], 'listVolumes works')
      const v = await pool.getVolume(vol.vid)
      t.true(await v.isDirty())
      t.truthy(await v.usage(), 'usage works')
      await rejectsWith(t, pool.createVolume({ vid: 'appvms/b/root', name: 'root', size: MiB, saveOnStop: true }), ['ENOSPC'], 'createVolume on a full filesystem')
      await rejectsWith(t, v.stop(), ['ENOSPC'], 'stop on a full filesystem')
    } finally {
      await pool.close()
    }
    t.deepEqual(diffManifest(before, manifest(dir)), [], 'the pool directory is as it was')
    t.is(hashFile(vol.path), dirty)
  } finally {
    free()
  }
  sh('sync', ['-f', fs.dir])
  const after = await api().ReflinkPool.open({ dirPath: dir })
  try {
    t.deepEqual(after.warnings, [], 'no warning once there is space')
    const v = await after.getVolume(vol.vid)
    t.is(hashFile(cleanPath(dir, vol.vid)), clean)
    await v.stop()
    t.is(hashFile(cleanPath(dir, vol.vid)), dirty, 'the stop commits the dirty image once space is freed')
  } finally {
    await after.close()
  }
})

withFs('ENOSPC in the fallback copy of importVolume across filesystems, then EXDEV import works once space is freed', [{ kind: 'xfs', sizeMiB: 320 }, { kind: 'ext4', sizeMiB: 32 }], async (t, [xfs, ext4]) => {
  const g = new Prng(62)
  const srcPool = await api().ReflinkPool.open({ dirPath: join(xfs.dir, 'src'), setupCheck: true })
  const dstDir = join(ext4.dir, 'dst')
  const dstPool = await api().ReflinkPool.open({ dirPath: dstDir, setupCheck: false })
  try {
    const src = await filledVolume(srcPool, 'vm-templates/big/root', 16 * MiB, g, 4096)
    const srcHash = hashFile(cleanPath(srcPool.dirPath, src.vid))
    const dst = await dstPool.createVolume({ vid: 'appvms/copy/root', name: 'root', size: 1 * MiB, saveOnStop: true, rw: true })
    const dst0 = hashFile(cleanPath(dstDir, dst.vid))
    const free = fillUp(ext4)
    await rejectsWith(t, dst.importVolume(src), ['ENOSPC'], 'importVolume into a full filesystem')
    t.is(hashFile(cleanPath(dstDir, dst.vid)), dst0, 'target unchanged')
    noLeftovers(t, dstDir, 'failed fallback copy')
    free()
    sh('sync', ['-f', ext4.dir])
    const res = (await dst.importVolume(src)) as { method?: string } | null
    t.is(hashFile(cleanPath(dstDir, dst.vid)), srcHash, 'the copy across filesystems holds the source data')
    t.true(['copy-range', 'read-write'].includes(String(res?.method)), `a copy strategy ran across filesystems, got ${res?.method}`)
    t.log(`importVolume across filesystems returned ${JSON.stringify(res)}`)
    noLeftovers(t, dstDir, 'after import')
  } finally {
    await srcPool.close()
    await dstPool.close()
  }
})

withFs('EXDEV: importVolume between two reflink pools on two XFS filesystems goes through the copy fallback', [{ kind: 'xfs', sizeMiB: 320 }, { kind: 'xfs', sizeMiB: 320 }], async (t, [a, b]) => {
  const g = new Prng(63)
  const pa = await api().ReflinkPool.open({ dirPath: join(a.dir, 'pa'), setupCheck: true })
  const pb = await api().ReflinkPool.open({ dirPath: join(b.dir, 'pb'), setupCheck: true })
  try {
    const src = await filledVolume(pa, 'vm-templates/t/root', 4 * MiB, g, 300)
    const dst = await pb.createVolume({ vid: 'appvms/x/root', name: 'root', size: 4096, saveOnStop: true, rw: true })
    const res = (await dst.importVolume(src)) as { method?: string } | null
    t.is(hashFile(cleanPath(pb.dirPath, dst.vid)), hashFile(cleanPath(pa.dirPath, src.vid)))
    // XFS has no cross-filesystem copy_file_range: FICLONE and copy_file_range both say EXDEV, pread/pwrite does it.
    t.true(['copy-range', 'read-write'].includes(String(res?.method)), `the copy fallback ran, got ${res?.method}`)
    t.log(`importVolume across XFS filesystems returned ${JSON.stringify(res)}`)
    const revs = Object.keys(await dst.revisions())
    t.true(revs.length <= 1, 'import commits like any commit (a revision at most)')
    noLeftovers(t, pb.dirPath, 'EXDEV import')
  } finally {
    await pa.close()
    await pb.close()
  }
})

withFs('EROFS after remount read-only: every mutating call fails with EROFS and changes nothing; all works after remount rw', [{ kind: 'xfs', sizeMiB: 320 }], async (t, [fs]) => {
  const g = new Prng(64)
  const dir = join(fs.dir, 'pool')
  const pool = await api().ReflinkPool.open({ dirPath: dir, setupCheck: true })
  let calls = 0
  try {
    const stopped = await filledVolume(pool, 'appvms/a/private', 1 * MiB, g, 64)
    const running = await filledVolume(pool, 'appvms/b/private', 1 * MiB, g, 64)
    await running.start()
    scribble(running.path, g, 16, true)
    const dirty = hashFile(running.path)
    const before = manifest(dir)
    remountReadOnly(fs, true)
    try {
      const data = importPayload(g, 64 * 1024)
      const attempts: Array<[string, () => Promise<unknown>]> = [
        ['stop (commit)', () => running.stop()],
        ['start', () => stopped.start()],
        ['resize', () => stopped.resize(2 * MiB)],
        ['importStream', () => stopped.importStream(chunkedStream(data, g), data.length)],
        ['importData', () => stopped.importData(data.length)],
        ['createVolume', () => pool.createVolume({ vid: 'appvms/c/private', name: 'private', size: MiB, saveOnStop: true })],
        ['remove', () => stopped.remove()],
      ]
      for (const [what, call] of attempts) {
        calls++
        await rejectsWith(t, call(), ['EROFS'], what)
      }
    } finally {
      remountReadOnly(fs, false)
    }
    t.deepEqual(diffManifest(before, manifest(dir)), [], 'nothing changed on disk')
    await running.stop()
    t.is(hashFile(cleanPath(dir, running.vid)), dirty, 'commit works after remount rw')
    await stopped.start()
    await stopped.stop()
    noLeftovers(t, dir, 'after EROFS')
  } finally {
    await pool.close()
  }
  logFigures(t, 'faults/EROFS', { calls })
})

withFs('source template replaced or removed while snapshots start: each snapshot gets the old or the new data, or a typed error', [{ kind: 'xfs', sizeMiB: 320 }], async (t, [fs]) => {
  const g = new Prng(65)
  const dir = join(fs.dir, 'pool')
  const pool = await api().ReflinkPool.open({ dirPath: dir, setupCheck: true })
  const counts = { started: 0, refused: 0, outdated: 0 }
  try {
    const tpl = await filledVolume(pool, 'vm-templates/t/root', 1 * MiB, g, 128)
    const oldHash = hashFile(cleanPath(dir, tpl.vid))
    const snaps: Volume[] = []
    for (let i = 0; i < 8; i++) snaps.push(await pool.createVolume({ vid: `appvms/s${i}/root`, name: 'root', snapOnStart: true, source: tpl.vid, rw: true }))

    // Replace: commit a new template content while half of the snapshots start.
    await tpl.start()
    scribble(tpl.path, g, 32, false)
    const newHash = hashFile(tpl.path)
    await Promise.all([...snaps.slice(0, 4).map((s) => s.start()), tpl.stop()])
    for (const s of snaps.slice(0, 4)) {
      const h = hashFile(s.path)
      t.true(h === oldHash || h === newHash, `${s.vid} started with the old or the new template`)
      t.is(await s.isOutdated(), h === oldHash, `${s.vid}: outdated exactly when it got the old data`)
      if (h === oldHash) counts.outdated++
      counts.started++
    }
    // The running snapshots are not affected by the template changing again.
    const running = snaps.slice(0, 4).map((s) => [s, hashFile(s.path)] as const)
    await tpl.start()
    scribble(tpl.path, g, 8, false)
    await tpl.stop()
    for (const [s, h] of running) t.is(hashFile(s.path), h, `${s.vid}: dirty image untouched by the template commit`)

    // Remove: the template's clean image disappears while the others start.
    const removal = (async () => {
      await new Promise((r) => setImmediate(r))
      await tpl.remove()
    })()
    const results = await Promise.allSettled([...snaps.slice(4).map((s) => s.start()), removal])
    for (const [i, r] of results.slice(0, 4).entries()) {
      const s = snaps[4 + i]
      if (r.status === 'fulfilled') {
        counts.started++
        t.true(existsSync(s.path), `${s.vid}: started, so its dirty image exists`)
      } else {
        counts.refused++
        // ENOENT (with the path) when the image vanished between the check and the hardlink.
        t.true(['ERR_MISSING_IMAGE', 'ERR_UNKNOWN_VOLUME', 'ENOENT'].includes(codeOf(r.reason)), `${s.vid}: start refused with a typed error, got ${codeOf(r.reason)}`)
        t.truthy((r.reason as { path?: string }).path ?? (r.reason as { vid?: string }).vid, `${s.vid}: the error names what is missing`)
        t.false(existsSync(s.path), `${s.vid}: a refused start leaves no dirty image`)
      }
    }
    if (results[4].status === 'rejected') t.log(`template remove refused: ${codeOf(results[4].reason)}`)
    else {
      await rejectsWith(t, snaps[7].stop().then(() => snaps[7].start()), ['ERR_MISSING_IMAGE', 'ERR_UNKNOWN_VOLUME'], 'start after the source is gone')
      await rejectsWith(t, snaps[6].verify(), ['ERR_MISSING_IMAGE', 'ERR_UNKNOWN_VOLUME'], 'verify after the source is gone')
    }
    for (const [s, h] of running) {
      t.is(hashFile(s.path), h, `${s.vid}: running snapshot keeps its data after the template is removed`)
      await s.stop()
    }
    noLeftovers(t, dir, 'template removed')
  } finally {
    await pool.close()
  }
  logFigures(t, 'faults/template replaced+removed', counts)
})

withFs('EIO from the disk while copying an image is reported, not swallowed, and leaves the target unchanged', [{ kind: 'ext4', sizeMiB: 64 }], async (t, [fs]) => {
  const g = new Prng(66)
  const dir = join(fs.dir, 'pool')
  const pool = await api().ReflinkPool.open({ dirPath: dir, setupCheck: false })
  try {
    const dst = await pool.createVolume({ vid: 'appvms/dst/private', name: 'private', size: 64 * 1024, saveOnStop: true, rw: true })
    const dst0 = hashFile(cleanPath(dir, dst.vid))
    const src = await filledVolume(pool, 'vm-templates/src/root', 8 * MiB, g, 2048)
    breakFileData(fs, cleanPath(dir, src.vid))
    t.throws(() => readFileSync(cleanPath(dir, src.vid)), { code: 'EIO' }, 'the fault is in place: reading the image fails with EIO')
    await rejectsWith(t, dst.importVolume(src), ['EIO'], 'importVolume reading a failing disk')
    t.is(hashFile(cleanPath(dir, dst.vid)), dst0, 'target unchanged')
    noLeftovers(t, dir, 'after EIO')
  } finally {
    await pool.close()
  }
})

