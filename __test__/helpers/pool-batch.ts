// The batch calls of the pool (docs/design.md §7) on one filesystem of the
// matrix: clone, create, start and stop many volumes in one batch, with the
// copy strategy asserted (reflink on XFS/btrfs, copy-range on ext4), all or
// nothing on abort and on refusal, option checks, and the recovery of a batch
// whose process died between its image renames and its records.
import type { TestFn } from 'ava'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ReflinkPool, type ReflinkVolume } from '../../ts/index'
import { FS_MATRIX, fsSuite, type FsKind } from './scratch-fs'
import { hashFile, MiB, snapshotTree, writeAt } from './pool-fixture'

const SIZE = 4 * MiB

export function poolBatch(avaTest: TestFn, kind: FsKind): void {
  const { test, fs } = fsSuite(avaTest, kind)
  const expected = FS_MATRIX.find((m) => m.kind === kind)!
  let seq = 0
  const open = () => ReflinkPool.open({ dirPath: join(fs().dir, `batch-${seq++}`), setupCheck: expected.reflink })

  /** A template with data at 0 and 2 MiB, committed. */
  async function template(pool: ReflinkPool): Promise<ReflinkVolume> {
    const tpl = await pool.createVolume({ vid: 'vm-templates/t/root', name: 'root', size: SIZE, saveOnStop: true })
    const dirty = await tpl.start()
    writeAt(dirty, 0, 'template data')
    writeAt(dirty, 2 * MiB, 'more data')
    await tpl.stop()
    return tpl
  }
  const vids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `appvms/${prefix}-${i}/root`)

  test(`${kind}: cloneVolumes makes every volume with the template's data (${expected.copyMethod})`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const want = hashFile(join(pool.dirPath, 'vm-templates/t/root.img'))
    const seen: number[] = []
    const r = await pool.cloneVolumes(tpl, vids('c', 50), { onProgress: (done, total) => seen.push(done / total) })
    t.deepEqual(r.methods, { [expected.copyMethod]: 50 }, 'the strategy of this filesystem ran')
    t.is(seen.at(-1), 1, 'the last progress report is the whole batch')
    t.is(r.volumes.length, 50)
    for (const v of r.volumes) {
      t.true(v.saveOnStop && !v.snapOnStart)
      t.is(hashFile(join(pool.dirPath, `${v.vid}.img`)), want)
      t.false(existsSync(join(pool.dirPath, `${v.vid}-precache.img`)), 'no precache unless asked for')
    }
    t.is((await pool.listVolumes()).length, 51)
    t.deepEqual(readdirSync(join(pool.dirPath, '.reflink-pool/sessions')).filter((n) => !n.endsWith('.session')), [], 'no intent left')
    // A clone starts (clean -> dirty) and commits like any volume.
    const v = r.volumes[7]
    writeAt(await v.start(), 0, 'changed')
    await v.stop()
    t.not(hashFile(join(pool.dirPath, `${v.vid}.img`)), want)
    t.is(hashFile(join(pool.dirPath, 'vm-templates/t/root.img')), want, 'the template is untouched')
    await pool.close()
  })

  test(`${kind}: cloneVolumes { start: true } returns running volumes; { precache: true } makes a usable precache`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const want = hashFile(join(pool.dirPath, 'vm-templates/t/root.img'))
    const started = await pool.cloneVolumes(tpl, vids('s', 5), { start: true })
    t.deepEqual(started.methods, { [expected.copyMethod]: 10 }, 'clean and dirty images')
    for (const v of started.volumes) {
      t.true(await v.isDirty(), 'the clone is its first start')
      t.is(hashFile(v.path), want)
    }
    await pool.stopVolumes(started.volumes)
    for (const v of started.volumes) t.false(await v.isDirty())
    const pre = await pool.cloneVolumes(tpl, vids('p', 3), { precache: true })
    const v = pre.volumes[0]
    const precache = join(pool.dirPath, `${v.vid}-precache.img`)
    t.true(existsSync(precache))
    const ino = statSync(precache).ino
    t.is(statSync(await v.start()).ino, ino, 'start renamed the precache into the dirty image')
    await pool.close()
  })

  test(`${kind}: a refused or aborted batch changes nothing on disk`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    await pool.cloneVolumes(tpl, ['appvms/x-1/root'])
    const before = snapshotTree(pool.dirPath)
    await t.throwsAsync(pool.cloneVolumes(tpl, ['appvms/y/root', 'appvms/x-1/root']), { code: 'ERR_VOLUME_EXISTS' })
    await t.throwsAsync(pool.cloneVolumes(tpl, ['appvms/y/root', 'appvms/y/root']), { code: 'ERR_INVALID_ARG_VALUE' })
    await t.throwsAsync(pool.cloneVolumes(tpl, ['appvms/y/root'], { bogus: true } as never), { code: 'ERR_INVALID_ARG_VALUE', message: /unknown option key.*bogus/ })
    await t.throwsAsync(pool.createVolumes([{ vid: 'appvms/y/root', name: 'root' }], { start: true } as never), { code: 'ERR_INVALID_ARG_VALUE' })
    await t.throwsAsync(pool.cloneVolumes(tpl, ['appvms/../y/root']), { code: 'ERR_INVALID_VID' })
    // An image planted where a clone would go: refused (EEXIST), nothing made.
    mkdirSync(join(pool.dirPath, 'appvms/z'), { recursive: true })
    writeFileSync(join(pool.dirPath, 'appvms/z/root.img'), 'not ours')
    const planted = snapshotTree(pool.dirPath)
    await t.throwsAsync(pool.cloneVolumes(tpl, ['appvms/w/root', 'appvms/z/root']), { code: 'ERR_VOLUME_EXISTS' })
    t.deepEqual(snapshotTree(pool.dirPath), planted, 'nothing changed, the planted file kept')
    t.deepEqual((await pool.listVolumes()).map((v) => v.vid).sort(), ['appvms/x-1/root', 'vm-templates/t/root'])
    t.notDeepEqual(before, planted)
    await pool.close()
  })

  // Serial: the abort comes from the progress callback, which needs the JS
  // thread free while the batch runs (concurrent tests hash files synchronously).
  test.serial(`${kind}: a batch aborted from its progress callback, mid-batch, leaves nothing listed or on disk`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const before = snapshotTree(pool.dirPath)
    const ac = new AbortController()
    let reports = 0
    await t.throwsAsync(
      pool.cloneVolumes(tpl, vids('a', 2000), { signal: ac.signal, onProgress: (done, total) => { reports++; if (done < total) ac.abort() } }),
      { name: 'AbortError', code: 'ABORT_ERR' },
    )
    t.is(reports, 1, 'the abort landed at the first report, before the batch ended')
    t.deepEqual(snapshotTree(pool.dirPath), before, 'nothing of the batch is left')
    t.deepEqual((await pool.listVolumes()).map((v) => v.vid), ['vm-templates/t/root'])
    await pool.close()
  })

  test(`${kind}: createVolumes, then startVolumes/stopVolumes of snapshot and other kinds`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const want = hashFile(join(pool.dirPath, 'vm-templates/t/root.img'))
    const made = await pool.createVolumes([
      { vid: 'appvms/o/private', name: 'private', size: SIZE, saveOnStop: true },
      { vid: 'appvms/o/volatile', name: 'volatile', kind: 'volatile', size: SIZE },
      ...vids('sn', 20).map((vid) => ({ vid, name: 'root', snapOnStart: true, source: tpl.vid })),
    ])
    t.is(made.volumes.length, 22)
    t.is(statSync(join(pool.dirPath, 'appvms/o/private.img')).size, SIZE, 'a sparse clean image of the size')
    const paths = await pool.startVolumes(made.volumes)
    t.is(paths.length, 22)
    for (const v of made.volumes.slice(2)) t.is(hashFile(v.path), want, `${v.vid} started with the source's data`)
    t.is(statSync(paths[1]).size, SIZE, 'the volatile volume started too')
    await pool.stopVolumes(made.volumes)
    for (const v of made.volumes) t.false(existsSync(v.path), `${v.vid} stopped`)
    for (const v of made.volumes.slice(2)) t.false(existsSync(join(pool.dirPath, `${v.vid}.img`)), 'a stopped snapshot keeps no image')
    await pool.close()
  })

  test(`${kind}: startVolumes of save-on-stop clones: one batch, data of the clean image, a crash leftover dirty image kept`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const want = hashFile(join(pool.dirPath, 'vm-templates/t/root.img'))
    const { volumes } = await pool.cloneVolumes(tpl, vids('o', 6))
    // Volume 0 crashed while running: its dirty image holds the VM's writes and is reused as it is.
    writeAt(await volumes[0].start(), 0, 'running state')
    const leftover = hashFile(volumes[0].path)
    const paths = await pool.startVolumes(volumes)
    t.is(hashFile(paths[0]), leftover, 'the dirty image of a running volume is kept')
    for (const p of paths.slice(1)) t.is(hashFile(p), want)
    for (const v of volumes) t.true(await v.isDirty())
    writeAt(paths[3], 2 * MiB, 'vm write')
    await pool.stopVolumes(volumes)
    t.not(hashFile(join(pool.dirPath, `${volumes[3].vid}.img`)), want, 'stop committed the write')
    t.is(Object.keys(await volumes[3].revisions()).length, 1, 'the commit kept the old image as a revision')
    // A missing clean image is ERR_MISSING_IMAGE naming the volume, and nothing starts.
    const gone = volumes[5]
    rmSync(join(pool.dirPath, `${gone.vid}.img`))
    await t.throwsAsync(pool.startVolumes([volumes[4], gone]), { code: 'ERR_MISSING_IMAGE', message: new RegExp(gone.vid) })
    t.false(await volumes[4].isDirty(), 'the batch made nothing')
    await pool.close()
  })

  test(`${kind}: a dead batch's vids without a record lose their images at open; recorded ones stay`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    await pool.cloneVolumes(tpl, ['appvms/kept/root'])
    const dir = pool.dirPath
    await pool.close()
    // As a batch killed between its image renames and its records leaves it.
    mkdirSync(join(dir, 'appvms/lost'), { recursive: true })
    writeFileSync(join(dir, 'appvms/lost/root.img'), 'orphan')
    writeFileSync(join(dir, 'appvms/lost/root-dirty.img'), 'orphan')
    writeFileSync(join(dir, '.reflink-pool/sessions/1-dead.batch'), 'boot 999999 1\nappvms/kept/root\nappvms/lost/root\n')
    const again = await ReflinkPool.open({ dirPath: dir, setupCheck: expected.reflink })
    t.false(existsSync(join(dir, 'appvms/lost')), 'the unrecorded vid lost its images and its empty directory')
    t.true(existsSync(join(dir, 'appvms/kept/root.img')), 'a recorded vid keeps its image')
    t.false(existsSync(join(dir, '.reflink-pool/sessions/1-dead.batch')))
    t.true(again.recovery.removed.some((p) => p.endsWith('appvms/lost/root.img')))
    await again.close()
  })

  test(`${kind}: a dead batch's unrecorded vid keeps what no batch makes: its revisions and files of other names`, async (t) => {
    const pool = await open()
    const dir = pool.dirPath
    await pool.close()
    // A revision (and an unrelated file) that were there before the batch: a batch makes neither.
    mkdirSync(join(dir, 'appvms/old'), { recursive: true })
    const revision = join(dir, 'appvms/old/root.img.3@2024-01-02T03:04:05Z')
    writeFileSync(revision, 'an older revision, not made by the batch')
    writeFileSync(join(dir, 'appvms/old/notes.txt'), 'the admin\'s')
    writeFileSync(join(dir, 'appvms/old/root.img'), 'made by the batch')
    writeFileSync(join(dir, 'appvms/old/root-precache.img'), 'made by the batch')
    writeFileSync(join(dir, '.reflink-pool/sessions/2-dead.batch'), 'boot 999999 1\nappvms/old/root\n')
    const again = await ReflinkPool.open({ dirPath: dir, setupCheck: expected.reflink })
    t.deepEqual(readdirSync(join(dir, 'appvms/old')).sort(), ['notes.txt', 'root.img.3@2024-01-02T03:04:05Z'])
    t.is(readFileSync(revision, 'utf8'), 'an older revision, not made by the batch')
    t.true(again.recovery.removed.some((p) => p.endsWith('appvms/old/root.img')))
    t.false(again.recovery.removed.some((p) => p.includes('root.img.3@')))
    await again.close()
  })
}
