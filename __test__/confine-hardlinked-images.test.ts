// A writable image (dirty, precache, import) hardlinked to a file outside the
// pool is refused or discarded, never written through (docs/design.md §5):
// the attack of a precache hardlinked to an outside file with the clean
// image's size and mtime, which start would otherwise rename into the dirty
// slot for the VM to write into. XFS, btrfs and ext4.
import test from 'ava'
import { linkSync, mkdirSync, rmSync, statSync, utimesSync, writeFileSync, truncateSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { fsSuite, type FsKind } from './helpers/scratch-fs'
import { hashFile } from './helpers/reliability-files'
import { ReflinkPool } from '../ts/index'
import { internal } from '../ts/internal'

const KiB = 1024
const SIZE = 64 * KiB

for (const kind of ['xfs', 'btrfs', 'ext4'] as FsKind[]) {
  const suite = fsSuite(test, kind, { sizeMiB: 320 })
  let seq = 0
  const setup = async () => {
    const root = join(suite.fs().dir, `case-${seq++}`)
    const outside = join(root, 'outside')
    mkdirSync(outside, { recursive: true })
    const secret = join(outside, 'secret.img')
    writeFileSync(secret, Buffer.alloc(SIZE, 0x5a), { mode: 0o600 })
    const pool = await ReflinkPool.open({ dirPath: join(root, 'pool'), setupCheck: kind !== 'ext4' })
    const vol = await pool.createVolume({ vid: 'appvms/vm/private', name: 'private', size: SIZE, saveOnStop: true, rw: true })
    return { root, secret, pool, vol, img: (suffix: string) => join(root, 'pool', `appvms/vm/private${suffix}.img`) }
  }

  suite.test.serial(`${kind}: a precache hardlinked to an outside file (size and mtime matched) is discarded, never started`, async (t) => {
    const { secret, pool, vol, img } = await setup()
    const before = hashFile(secret)
    const clean = statSync(img(''))
    rmSync(img('-precache'), { force: true })
    truncateSync(secret, clean.size)
    utimesSync(secret, clean.atime, clean.mtime)
    linkSync(secret, img('-precache'))
    const secretBefore = hashFile(secret)
    t.not(before, '')
    const dirty = await vol.start()
    t.not(statSync(dirty).ino, statSync(secret).ino, 'the dirty image is not the outside inode')
    t.is(statSync(dirty).nlink, 1)
    writeFileSync(dirty, 'the VM writes here')
    await vol.resize(2 * SIZE)
    t.is(hashFile(secret), secretBefore, 'the outside file is unchanged')
    await vol.stop()
    t.is(hashFile(secret), secretBefore)
    t.is(statSync(secret).nlink, 1, 'the pool holds no name of the outside file any more')
    await pool.close()
  })

  suite.test.serial(`${kind}: a dirty image hardlinked to an outside file is refused by start, resize and stop`, async (t) => {
    const { secret, pool, vol, img } = await setup()
    const secretBefore = hashFile(secret)
    linkSync(secret, img('-dirty'))
    await t.throwsAsync(vol.start(), { code: 'ERR_UNSAFE_PATH' })
    await t.throwsAsync(vol.resize(4 * SIZE), { code: 'ERR_UNSAFE_PATH' })
    await t.throwsAsync(vol.stop(), { code: 'ERR_UNSAFE_PATH' })
    t.is(hashFile(secret), secretBefore, 'the outside file is unchanged')
    t.is(statSync(secret).size, SIZE)
    t.not(statSync(img('')).ino, statSync(secret).ino, 'the outside file did not become the clean image')
    await pool.close()
  })

  suite.test.serial(`${kind}: an import file hardlinked to an outside file is never written or committed`, async (t) => {
    const { secret, pool, vol, img } = await setup()
    const secretBefore = hashFile(secret)
    await vol.importData(SIZE)
    rmSync(img('-import'))
    linkSync(secret, img('-import'))
    await t.throwsAsync(vol.importDataEnd(true), { code: 'ERR_UNSAFE_PATH' })
    t.not(statSync(img('')).ino, statSync(secret).ino, 'not committed')
    await t.throwsAsync(internal.openImportWriter(img('-import')), { code: 'ERR_UNSAFE_PATH' }, 'the native writer refuses it too')
    await vol.importDataEnd(false)
    // importStream creates its own import file: it commits, and the outside file stays as it was.
    await vol.importStream(Readable.from([Buffer.alloc(SIZE, 1)]), SIZE)
    t.is(hashFile(secret), secretBefore, 'the outside file is unchanged')
    await pool.close()
  })
}
