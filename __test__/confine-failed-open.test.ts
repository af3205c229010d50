// A ReflinkPool.open that fails part-way closes the pool's directory handle
// before it rejects (docs/design.md §5): the filesystem holding the pool can
// be unmounted right away, with a plain umount (no -l, one try), without
// waiting for garbage collection. Each case builds its own loop-mounted
// filesystem, makes open fail after the handle was opened, and unmounts it
// with `unmount({ tries: 1, strict: true })`, which throws when the mount is busy.
import test from 'ava'
import { chmodSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { ReflinkPool } from '../ts/index'
import { freshFsTests, type ScratchFs } from './helpers/scratch-fs'

const onFresh = { xfs: freshFsTests(test, 'xfs', { sizeMiB: 320 }), ext4: freshFsTests(test, 'ext4', { sizeMiB: 128 }) }

/** A pool at `<mount>/pool` with one volume, closed. */
async function makePool(fs: ScratchFs, setupCheck = true): Promise<string> {
  const dir = join(fs.dir, 'pool')
  const pool = await ReflinkPool.open({ dirPath: dir, setupCheck })
  await pool.createVolume({ vid: 'appvms/vm/private', name: 'private', size: 1 << 20, saveOnStop: true, rw: true })
  await pool.close()
  return dir
}

onFresh.xfs('open refused with ERR_UNSAFE_PERMISSIONS (.reflink-pool writable by its group) leaves the mount unmountable at once', async (fs, t) => {
  const dir = await makePool(fs)
  chmodSync(join(dir, '.reflink-pool'), 0o770)
  await t.throwsAsync(ReflinkPool.open({ dirPath: dir }), { code: 'ERR_UNSAFE_PERMISSIONS' })
  t.notThrows(() => fs.unmount({ tries: 1, strict: true }), 'plain umount, first try')
})

onFresh.xfs('open refused with ERR_UNSAFE_PERMISSIONS (the pool directory itself writable by others) leaves the mount unmountable at once', async (fs, t) => {
  const dir = await makePool(fs)
  chmodSync(dir, 0o707)
  await t.throwsAsync(ReflinkPool.open({ dirPath: dir }), { code: 'ERR_UNSAFE_PERMISSIONS' })
  t.notThrows(() => fs.unmount({ tries: 1, strict: true }), 'plain umount, first try')
})

onFresh.xfs('open refused with ERR_POOL_BROKEN (the pool config replaced by a symlink) leaves the mount unmountable at once', async (fs, t) => {
  const dir = await makePool(fs)
  const config = join(dir, '.reflink-pool', 'pool.json')
  rmSync(config)
  symlinkSync('/etc/hostname', config)
  await t.throwsAsync(ReflinkPool.open({ dirPath: dir }), { code: 'ERR_POOL_BROKEN' })
  t.notThrows(() => fs.unmount({ tries: 1, strict: true }), 'plain umount, first try')
})

onFresh.xfs('open failing part-way (the record directory replaced by a symlink) leaves the mount unmountable at once', async (fs, t) => {
  const dir = await makePool(fs)
  const volumes = join(dir, '.reflink-pool', 'volumes')
  rmSync(volumes, { recursive: true })
  symlinkSync(join(dir, 'appvms'), volumes)
  await t.throwsAsync(ReflinkPool.open({ dirPath: dir }), { code: 'ERR_UNSAFE_PATH' })
  t.notThrows(() => fs.unmount({ tries: 1, strict: true }), 'plain umount, first try')
})

onFresh.ext4('open of a new pool refused by the setup check (ERR_REFLINK_UNSUPPORTED) leaves the mount unmountable at once', async (fs, t) => {
  await t.throwsAsync(ReflinkPool.open({ dirPath: join(fs.dir, 'pool') }), { code: 'ERR_REFLINK_UNSUPPORTED' })
  t.notThrows(() => fs.unmount({ tries: 1, strict: true }), 'plain umount, first try')
})

onFresh.xfs('a pool left open keeps the mount busy: unmount reports it (the check above can fail)', async (fs, t) => {
  const pool = await ReflinkPool.open({ dirPath: join(fs.dir, 'pool') })
  try {
    const err = t.throws(() => fs.unmount({ tries: 1, strict: true }))
    t.regex(err?.message ?? '', /busy.*a handle on it was left open.*this process holds fd \d+ -> .*\/pool/)
  } finally {
    await pool.close()
  }
})
