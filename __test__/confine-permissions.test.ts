// Modes and ownership of the pool (docs/design.md §5): whatever the umask, the
// pool's directories are 0700 and its files 0600; a pool directory (or one of
// its sub-directories) writable by group or others, or owned by another user,
// is refused with ERR_UNSAFE_PERMISSIONS (the message says how to fix it) and
// nothing changes on disk. Modes do not depend on the filesystem: a temp dir.
import test from 'ava'
import { chmodSync, chownSync, lstatSync, mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { manifest, diffManifest } from './helpers/reliability-files'
import { ReflinkPool } from '../ts/index'

const KiB = 1024
const scratch = () => mkdtempSync(join(tmpdir(), 'confine-perm-'))

/** [path, mode] of every entry under `root` (lstat, not followed). */
function modes(root: string): Array<[string, string, number]> {
  const out: Array<[string, string, number]> = []
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name)
      const st = lstatSync(p)
      out.push([p.slice(root.length), st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other', st.mode & 0o7777])
      if (st.isDirectory()) walk(p)
    }
  }
  walk(root)
  return out
}

test.serial('under umask 0 the pool root, appvms, VM folders and .reflink-pool dirs are 0700 and every file 0600', async (t) => {
  const old = process.umask(0)
  try {
    const dir = join(scratch(), 'new', 'pool')
    const pool = await ReflinkPool.open({ dirPath: dir, setupCheck: false, revisionsToKeep: 2 })
    const v = await pool.createVolume({ vid: 'appvms/vm/private', name: 'private', size: 64 * KiB, saveOnStop: true, rw: true })
    const snap = await pool.createVolume({ vid: 'appvms/vm/root', name: 'root', snapOnStart: true, source: v.vid, rw: true })
    const vol = await pool.createVolume({ vid: 'appvms/other/volatile', name: 'volatile', kind: 'volatile', size: 64 * KiB, rw: true })
    await v.start()
    await snap.start()
    await vol.start()
    await v.stop()
    await v.importStream(Readable.from([Buffer.alloc(64 * KiB, 1)]), 64 * KiB)
    await v.importData(64 * KiB) // leaves an import file and its marker
    t.is(lstatSync(dir).mode & 0o7777, 0o700, 'the pool root')
    const all = modes(dir)
    const wrong = all.filter(([, kind, mode]) => mode !== (kind === 'dir' ? 0o700 : 0o600))
    t.deepEqual(wrong, [], 'every directory 0700, every file 0600')
    for (const d of ['/appvms', '/appvms/vm', '/.reflink-pool', '/.reflink-pool/volumes', '/.reflink-pool/locks']) t.true(all.some(([p]) => p === d), d)
    t.true(all.filter(([, kind]) => kind === 'file').length >= 8, 'images, records, config, session and marker were checked')
    await pool.close()
  } finally {
    process.umask(old)
  }
})

for (const [what, spoil, fix] of [
  ['writable by its group', (d: string) => chmodSync(d, 0o770), 'chmod go-w'],
  ['writable by others', (d: string) => chmodSync(d, 0o707), 'chmod go-w'],
  ['owned by another user (uid 65534)', (d: string) => chownSync(d, 65534, 65534), 'chown'],
] as const) {
  test.serial(`a pool directory ${what} is refused with ERR_UNSAFE_PERMISSIONS and nothing changes`, async (t) => {
    const dir = join(scratch(), 'pool')
    const pool = await ReflinkPool.open({ dirPath: dir, setupCheck: false })
    const v = await pool.createVolume({ vid: 'appvms/vm/private', name: 'private', size: 64 * KiB, saveOnStop: true, rw: true })
    await pool.close()

    spoil(dir)
    let before = manifest(dir)
    const err = await t.throwsAsync(ReflinkPool.open({ dirPath: dir, setupCheck: false }), { code: 'ERR_UNSAFE_PERMISSIONS' })
    t.true(err?.message.includes(fix), err?.message)
    t.is((err as { path?: string })?.path, dir)
    t.deepEqual(diffManifest(before, manifest(dir)), [], 'open changed nothing')
    chmodSync(dir, 0o700)
    chownSync(dir, process.getuid!(), process.getgid!())

    // A sub-directory of the pool (the VM folder) spoiled the same way: that volume's calls are refused.
    const reopened = await ReflinkPool.open({ dirPath: dir, setupCheck: false })
    const vm = join(dir, 'appvms', 'vm')
    spoil(vm)
    before = manifest(dir)
    const vol = reopened.getVolume(v.vid)
    const e2 = await t.throwsAsync(vol.start(), { code: 'ERR_UNSAFE_PERMISSIONS' })
    t.true(e2?.message.includes(fix), e2?.message)
    await t.throwsAsync(vol.remove(), { code: 'ERR_UNSAFE_PERMISSIONS' })
    t.deepEqual(diffManifest(before, manifest(dir)), [], 'refused calls changed nothing')
    chmodSync(vm, 0o700)
    chownSync(vm, process.getuid!(), process.getgid!())
    await vol.start()
    await vol.stop()
    await reopened.close()
  })
}
