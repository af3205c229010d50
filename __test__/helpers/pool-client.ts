// A real client, run on each filesystem of the matrix: volumes used as a VM host
// uses them. The template holds a real ext4 filesystem (mkfs.ext4 in its image,
// files written through a loop mount); clones are attached to loop devices and
// mounted. A file written in one clone is committed by stop, seen after the next
// start, and gone after revert; the other clone and the template never see it.
// Everything attached is detached again, also when an assertion fails.
import type { TestFn } from 'ava'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ReflinkPool, type ReflinkVolume } from '../../ts/index'
import { attachImage, detachAttached, mkfsImage, withAttachedImage } from '../../ts/util/loopfs'
import { FS_MATRIX, fsSuite, type FsKind } from './scratch-fs'
import { MiB } from './pool-fixture'

export function poolClient(avaTest: TestFn, kind: FsKind): void {
  const { test, fs } = fsSuite(avaTest, kind)
  const expected = FS_MATRIX.find((m) => m.kind === kind)!

  test(`${kind}: a clone's file, written through its mounted ext4, survives stop/start, vanishes at revert, and no other volume sees it`, async (t) => {
    t.teardown(detachAttached) // a failed assertion must not leave a loop device attached
    const pool = await ReflinkPool.open({ dirPath: join(fs().dir, 'client'), setupCheck: expected.reflink })
    try {
      const tpl = await pool.createVolume({ vid: 'vm-templates/deb/root', size: 64 * MiB, saveOnStop: true, name: 'root' })
      // The template: a filesystem made in its running image, files written through the mount, committed by stop.
      const tplImage = await tpl.start()
      mkfsImage('ext4', tplImage)
      await withAttachedImage(tplImage, (dir) => writeFileSync(join(dir, 'os-release'), 'NAME=demo\n'))
      await tpl.stop()
      const made = await pool.cloneVolumes(tpl, ['appvms/a/root', 'appvms/b/root'])
      t.deepEqual(made.methods, { [expected.copyMethod]: 2 }, `clones by ${expected.copyMethod}`)
      const [a, b] = made.volumes as ReflinkVolume[]

      // Both VMs run at once; A writes a file, B must not see it.
      const va = attachImage(await a.start())
      const vb = attachImage(await b.start())
      t.is(readFileSync(join(va.dir, 'os-release'), 'utf8'), 'NAME=demo\n', 'the clone has the template\'s files')
      writeFileSync(join(va.dir, 'secret'), 'only in A\n')
      t.false(existsSync(join(vb.dir, 'secret')), 'the other running clone does not see it')
      va.detach()
      vb.detach()
      await a.stop()
      await b.stop()

      // Committed: seen after the next start.
      t.is(await withAttachedImage(await a.start(), (dir) => readFileSync(join(dir, 'secret'), 'utf8')), 'only in A\n', 'committed by stop, seen after the next start')
      await a.stop({ discard: true })
      t.false(await withAttachedImage(await b.start(), (dir) => existsSync(join(dir, 'secret'))), 'the other clone never sees it')
      await b.stop()
      const tplCommitted = await tpl.export()
      try {
        t.false(await withAttachedImage(tplCommitted, (dir) => existsSync(join(dir, 'secret')), { readOnly: true }), 'the template never sees it')
      } finally {
        await tpl.exportEnd(tplCommitted)
      }

      // Revert: the commit that wrote the file is undone.
      await a.revert()
      const after = await withAttachedImage(await a.start(), (dir) => ({ secret: existsSync(join(dir, 'secret')), os: readFileSync(join(dir, 'os-release'), 'utf8') }))
      await a.stop({ discard: true })
      t.deepEqual(after, { secret: false, os: 'NAME=demo\n' }, 'gone after revert; the template\'s files stay')
    } finally {
      detachAttached()
      await pool.close()
    }
  })
}
