// The pool conformance suite: every lifecycle operation of every volume kind
// (docs/design.md §3) plus setup, errors and the planted-symlink cases, run on
// one filesystem of the matrix.
// XFS and btrfs run with the reflink setup check; ext4 with setupCheck: false
// (the copy fallback). Each case asserts the copy strategy it expects where a
// copy happens (importVolume reports it; dirty/clean extent sharing shows it).
import type { ExecutionContext, TestFn } from 'ava'
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync, openSync, readSync, closeSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { ReflinkPool, type ReflinkVolume } from '../../ts/index'
import { FS_MATRIX, fsSuite, type FsKind } from './scratch-fs'
import { hashFile, ino, ls, MiB, readAt, snapshotTree, writeAt } from './pool-fixture'

const SIZE = 4 * MiB
type Ctx = ExecutionContext<unknown>

export function poolConformance(avaTest: TestFn, kind: FsKind): void {
  const { test, fs } = fsSuite(avaTest, kind)
  const expected = FS_MATRIX.find((m) => m.kind === kind)!
  let seq = 0
  const poolDir = () => join(fs().dir, `pool-${seq++}`)
  const open = (opts: { revisionsToKeep?: number; dirPath?: string } = {}) =>
    ReflinkPool.open({ dirPath: opts.dirPath ?? poolDir(), setupCheck: expected.reflink, ...opts })
  const origin = (pool: ReflinkPool, name = 'root', extra: object = {}) =>
    pool.createVolume({ vid: `vm-templates/t-${name}/${name}`, name, size: SIZE, saveOnStop: true, ...extra })
  const img = (pool: ReflinkPool, rel: string) => join(pool.dirPath, rel)
  /** The precache is made only as a clone: present where the filesystem reflinks, never a full copy on ext4. */
  const withPrecache = (precache: string, ...rest: string[]) => (expected.reflink ? [precache, ...rest] : rest)
  /** The precache of `clean` is fresh (its size, mtime and bytes) where the filesystem reflinks, absent elsewhere. */
  function precacheOf(t: Ctx, clean: string, what: string): void {
    const pre = clean.replace(/\.img$/, '-precache.img')
    if (!expected.reflink) return void t.false(existsSync(pre), `${what}: no precache without reflink`)
    t.is(statSync(pre).size, statSync(clean).size, `${what}: precache size`)
    t.is(statSync(pre).mtimeMs, statSync(clean).mtimeMs, `${what}: precache mtime`)
    t.is(hashFile(pre), hashFile(clean), `${what}: precache bytes`)
  }

  /** Start, write `text` at offset 0 (and a marker at 1 MiB), stop: one commit. */
  async function commit(v: ReflinkVolume, text: string): Promise<void> {
    const dirty = await v.start()
    writeAt(dirty, 0, text)
    writeAt(dirty, MiB, text)
    await v.stop()
  }
  /** Assert the call rejects with `code` and the pool directory is untouched. */
  async function refusedUnchanged(t: Ctx, pool: ReflinkPool, code: string, call: () => Promise<unknown>) {
    const before = snapshotTree(pool.dirPath)
    await t.throwsAsync(call, { code })
    t.deepEqual(snapshotTree(pool.dirPath), before, `${code}: nothing on disk changed`)
  }

  // ---- 3.1 pool ----------------------------------------------------------------

  test(`${kind}: setup creates the pool directories and persists the config`, async (t) => {
    const dir = join(poolDir(), 'nested')
    const pool = await ReflinkPool.open({ dirPath: dir, name: 'p1', revisionsToKeep: 3, setupCheck: expected.reflink, ephemeralVolatile: true })
    t.deepEqual(ls(dir), ['.reflink-pool', 'appvms', 'vm-templates'])
    t.deepEqual(pool.config, { name: 'p1', dirPath: dir, driver: 'file-reflink', revisionsToKeep: 3, ephemeralVolatile: true, minFree: 0 })
    await pool.close()
    await t.throwsAsync(pool.createVolume({ vid: 'appvms/x/y', name: 'y' }), { code: 'ERR_POOL_CLOSED' })
    const again = await ReflinkPool.open({ dirPath: dir })
    t.deepEqual(again.config, pool.config)
    t.is((await again.createVolume({ vid: 'appvms/x/y', name: 'y' })).vid, 'appvms/x/y')
  })

  test(`${kind}: setupCheck ${expected.reflink ? 'accepts this reflink filesystem' : 'refuses this filesystem and removes the directory it created'}`, async (t) => {
    const dir = join(poolDir(), 'a', 'b')
    if (expected.reflink) {
      const pool = await ReflinkPool.open({ dirPath: dir })
      t.true(existsSync(join(dir, 'appvms')))
      t.is(pool.revisionsToKeep, 1)
    } else {
      const err = await t.throwsAsync(ReflinkPool.open({ dirPath: dir }), { code: 'ERR_REFLINK_UNSUPPORTED' })
      t.regex(err!.message, /setupCheck: false/)
      t.false(existsSync(join(dir, '..', '..')), 'every directory setup created is removed again')
    }
  })

  test(`${kind}: usageDetails, size/usage, and null when the directory is missing; includedIn`, async (t) => {
    const pool = await open()
    const u = await pool.usageDetails()
    t.true(u.dataSize! > 0 && u.dataUsage! > 0 && u.dataUsage! <= u.dataSize!)
    t.is(await pool.size(), u.dataSize!)
    const inner = await open({ dirPath: join(pool.dirPath, 'appvms', 'inner') })
    const other = await open()
    t.is(inner.includedIn([pool, other, inner]), pool)
    t.is(pool.includedIn([pool, other, inner]), null)
    const gone = await open()
    const { rmSync } = await import('node:fs')
    rmSync(gone.dirPath, { recursive: true })
    t.deepEqual(await gone.usageDetails(), {})
    t.is(await gone.size(), null)
    t.is(await gone.usage(), null)
  })

  // ---- create / verify / registry ----------------------------------------------

  test(`${kind}: create of S & !SoS makes a sparse clean image of size (mode 0600) and ${expected.reflink ? 'a precache with its size and mtime' : 'no precache (no reflink)'}`, async (t) => {
    const pool = await open()
    const v = await pool.createVolume({ vm: { name: 'web', dirPathPrefix: 'appvms' }, name: 'private', size: SIZE, saveOnStop: true })
    t.is(v.vid, 'appvms/web/private')
    t.deepEqual(ls(img(pool, 'appvms/web')), withPrecache('private-precache.img', 'private.img'))
    const clean = statSync(img(pool, 'appvms/web/private.img'))
    t.is(clean.size, SIZE)
    t.is(clean.blocks, 0, 'sparse')
    t.is(clean.mode & 0o777, 0o600)
    t.is(await v.size(), SIZE)
    t.true(await v.verify())
    precacheOf(t, img(pool, 'appvms/web/private.img'), 'create')
    if (!expected.reflink) return
    const pre = statSync(img(pool, 'appvms/web/private-precache.img'))
    t.is(pre.mode & 0o777, 0o600)
    t.not(pre.ino, clean.ino)
  })

  test(`${kind}: create of the other kinds makes no files; create removes every leftover image of the vid only`, async (t) => {
    const pool = await open()
    const tpl = await origin(pool)
    const snap = await pool.createVolume({ vid: 'appvms/a/root', name: 'root', snapOnStart: true, source: tpl.vid, size: SIZE })
    await pool.createVolume({ vid: 'appvms/a/volatile', name: 'volatile', kind: 'volatile', size: SIZE })
    await pool.createVolume({ vid: 'appvms/a/os', name: 'os', snapOnStart: true, saveOnStop: true, source: tpl, size: SIZE })
    t.deepEqual(ls(img(pool, 'appvms/a')), [])
    // Leftovers of appvms/a/root, and a neighbour (root2) that must survive.
    mkdirSync(img(pool, 'appvms/a'), { recursive: true })
    const left = ['root.img', 'root-dirty.img', 'root-precache.img', 'root-import.img', 'root.img.3@2020-01-01T00:00:00Z', 'root.img~x1', 'root-dirty.img~x2']
    for (const f of [...left, 'root2.img']) writeFileSync(img(pool, `appvms/a/${f}`), 'x')
    await snap.create()
    t.deepEqual(ls(img(pool, 'appvms/a')), ['root2.img'])
  })

  test(`${kind}: createVolume errors change nothing (exists, snapOnStart/source mismatch, unknown source, bad size, bad vid)`, async (t) => {
    const pool = await open()
    const tpl = await origin(pool)
    await refusedUnchanged(t, pool, 'ERR_VOLUME_EXISTS', () => origin(pool))
    await refusedUnchanged(t, pool, 'ERR_INVALID_ARG_VALUE', () => pool.createVolume({ vid: 'appvms/b/root', name: 'root', snapOnStart: true }))
    const e = await t.throwsAsync(pool.createVolume({ vid: 'appvms/b/root', name: 'root', source: tpl.vid }), { code: 'ERR_INVALID_ARG_VALUE' })
    t.regex(e!.message, /appvms\/b\/root/, 'names the volume')
    await refusedUnchanged(t, pool, 'ERR_UNKNOWN_VOLUME', () =>
      pool.createVolume({ vid: 'appvms/b/root', name: 'root', snapOnStart: true, source: 'vm-templates/none/root' }),
    )
    for (const size of [-1, 1.5, 2 ** 53, NaN]) {
      await refusedUnchanged(t, pool, 'ERR_INVALID_ARG_VALUE', () => pool.createVolume({ vid: 'appvms/b/root', name: 'root', size, saveOnStop: true }))
    }
    await refusedUnchanged(t, pool, 'ERR_INVALID_VID', () => pool.createVolume({ vid: 'appvms/../../etc', name: 'etc', saveOnStop: true, size: SIZE }))
    await refusedUnchanged(t, pool, 'ERR_INVALID_VID', () =>
      pool.createVolume({ vm: { name: 'x', dirPathPrefix: 'elsewhere' }, name: 'root', saveOnStop: true, size: SIZE }),
    )
  })

  test(`${kind}: getVolume, listVolumes, ERR_UNKNOWN_VOLUME and ERR_INVALID_VID`, async (t) => {
    const pool = await open()
    const a = await origin(pool, 'a')
    await origin(pool, 'b')
    t.is(pool.getVolume('vm-templates/t-a/a'), a)
    t.deepEqual((await pool.listVolumes()).map((v) => v.vid), ['vm-templates/t-a/a', 'vm-templates/t-b/b'])
    t.throws(() => pool.getVolume('appvms/no/such'), { code: 'ERR_UNKNOWN_VOLUME' })
    t.throws(() => pool.getVolume('appvms/../x'), { code: 'ERR_INVALID_VID' })
    // A record planted with a vid that leaves the pool is never loaded.
    const rec = JSON.stringify({ vid: 'appvms/../x', name: 'x', saveOnStop: true, size: 1 })
    writeFileSync(join(pool.dirPath, '.reflink-pool/volumes/appvms%2F..%2Fx.json'), rec)
    writeFileSync(join(pool.dirPath, '.reflink-pool/volumes/appvms%2F..%2F..%2Fx.json'), rec)
    t.is((await pool.listVolumes()).length, 2)
    t.is((await ReflinkPool.open({ dirPath: pool.dirPath }).then((p) => p.listVolumes())).length, 2)
  })

  test(`${kind}: verify names the missing image (ERR_MISSING_IMAGE) for S and SoS volumes`, async (t) => {
    const pool = await open()
    const tpl = await origin(pool)
    const snap = await pool.createVolume({ vid: 'appvms/a/root', name: 'root', snapOnStart: true, source: tpl.vid, size: SIZE })
    const vol = await pool.createVolume({ vid: 'appvms/a/volatile', name: 'volatile', kind: 'volatile', size: SIZE })
    t.true(await snap.verify())
    t.true(await vol.verify())
    const { unlinkSync } = await import('node:fs')
    unlinkSync(img(pool, 'vm-templates/t-root/root.img'))
    for (const v of [tpl, snap]) {
      const err = await t.throwsAsync(v.verify(), { code: 'ERR_MISSING_IMAGE' })
      t.true(err!.message.includes(img(pool, 'vm-templates/t-root/root.img')))
    }
  })

  // ---- start / stop / commit -------------------------------------------------------

  test(`${kind}: start of S ${expected.reflink ? 'renames the precache to dirty (same inode)' : 'copies clean to dirty (no precache)'} and returns the dirty path`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    const preIno = expected.reflink ? ino(img(pool, 'vm-templates/t-root/root-precache.img')) : null
    t.is(await v.start(), img(pool, 'vm-templates/t-root/root-dirty.img'))
    t.is(v.path, img(pool, 'vm-templates/t-root/root-dirty.img'))
    if (preIno !== null) t.is(ino(v.path), preIno)
    else t.not(ino(v.path), ino(img(pool, 'vm-templates/t-root/root.img')))
    t.deepEqual(ls(img(pool, 'vm-templates/t-root')), ['root-dirty.img', 'root.img'])
    t.true(await v.isDirty())
    t.is(statSync(v.path).mode & 0o777, 0o600)
  })

  test(`${kind}: start discards a stale precache (mtime or size differs) and clones clean instead`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    await commit(v, 'committed')
    const pre = img(pool, 'vm-templates/t-root/root-precache.img')
    const clean = img(pool, 'vm-templates/t-root/root.img')
    // An mtime 100 ns apart, the same in float milliseconds: compared as st_mtime_ns, as Qubes does.
    const nsApart = (): void => {
      execFileSync('touch', ['-m', '-d', '@1700000000.000000100', clean])
      execFileSync('touch', ['-m', '-d', '@1700000000.000000200', pre])
    }
    const spoils: [() => void, bigint][] = [
      [() => utimesSync(pre, new Date(1e12), new Date(1e12)), 1_000_000_000_000_000_000n],
      [() => truncateSync(pre, SIZE + 4096), -1n],
      [nsApart, 1_700_000_000_000_000_200n],
    ]
    for (const [spoil, preMtimeNs] of spoils) {
      // Without reflink the pool makes no precache: plant one (an adopted pool's) to spoil.
      if (!expected.reflink) writeFileSync(pre, readFileSync(clean), { mode: 0o600 })
      spoil()
      await v.start()
      // (Inode numbers are reused at once on XFS, so judge by what a rename would have kept.)
      t.not(statSync(v.path, { bigint: true }).mtimeNs, preMtimeNs, 'the stale precache is not used')
      t.is(readAt(v.path, 0, 9), 'committed')
      t.is(statSync(v.path).size, SIZE)
      await v.stop({ discard: true })
      t.false(existsSync(pre), 'the stale precache was deleted')
      await commit(v, 'committed')
      precacheOf(t, clean, 'the next commit')
    }
    // Without any precache, start clones clean.
    const { rmSync } = await import('node:fs')
    rmSync(pre, { force: true })
    await v.start()
    t.is(readAt(v.path, 0, 9), 'committed')
    const u = await v.usage()
    if (expected.reflink) t.true(u.shared > 0, 'dirty shares extents with clean (reflink)')
    else t.is(u.shared, 0, 'no sharing without reflink')
  })

  test(`${kind}: stop commits: revision of the old clean image (its inode: a hardlink, no data moved) named with its mtime (UTC), new clean, ${expected.reflink ? 'fresh precache' : 'no precache'}`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    const clean = img(pool, 'vm-templates/t-root/root.img')
    utimesSync(clean, new Date('2021-02-03T04:05:06.789Z'), new Date('2021-02-03T04:05:06.789Z'))
    const oldHash = hashFile(clean)
    const oldIno = ino(clean)
    const dirty = await v.start()
    writeAt(dirty, 0, 'first')
    const dirtyIno = ino(dirty)
    await v.stop()
    const revIno = ino(img(pool, 'vm-templates/t-root/root.img.1@2021-02-03T04:05:06Z'))
    // On every filesystem the revision is the old clean inode itself (a hardlink: no data, no extents touched).
    t.is(revIno, oldIno)
    t.is(statSync(img(pool, 'vm-templates/t-root/root.img.1@2021-02-03T04:05:06Z')).nlink, 1, 'the revision has one name once the commit is done')
    t.deepEqual(ls(img(pool, 'vm-templates/t-root')), withPrecache('root-precache.img', 'root.img', 'root.img.1@2021-02-03T04:05:06Z'))
    t.is(ino(clean), dirtyIno, 'the dirty image is renamed over clean')
    t.is(readAt(clean, 0, 5), 'first')
    t.is(hashFile(img(pool, 'vm-templates/t-root/root.img.1@2021-02-03T04:05:06Z')), oldHash)
    t.is(statSync(img(pool, 'vm-templates/t-root/root.img.1@2021-02-03T04:05:06Z')).mode & 0o777, 0o600)
    precacheOf(t, clean, 'commit')
    t.deepEqual(await v.revisions(), { 1: '2021-02-03T04:05:06Z' })
    t.false(await v.isDirty())
    await v.stop()
    t.deepEqual(await v.revisions(), { 1: '2021-02-03T04:05:06Z' }, 'stop is idempotent')
  })

  for (const keep of [0, 1, 3]) {
    test(`${kind}: revisionsToKeep ${keep}: four commits keep the newest ${keep} revisions, numbered upward`, async (t) => {
      const pool = await open({ revisionsToKeep: keep })
      const v = await origin(pool)
      for (let i = 1; i <= 4; i++) await commit(v, `commit-${i}`)
      t.deepEqual(Object.keys(await v.revisions()), ['1', '2', '3', '4'].slice(4 - keep))
      t.is(readAt(img(pool, 'vm-templates/t-root/root.img'), 0, 8), 'commit-4')
      if (keep > 0) t.is(readAt(img(pool, `vm-templates/t-root/${ls(img(pool, 'vm-templates/t-root')).at(-1)}`), 0, 8), 'commit-3')
    })
  }

  test(`${kind}: a volume's own revisionsToKeep overrides the pool's`, async (t) => {
    const pool = await open({ revisionsToKeep: 3 })
    const v = await origin(pool, 'root', { revisionsToKeep: 1 })
    t.is(v.revisionsToKeep, 1)
    for (let i = 1; i <= 3; i++) await commit(v, `c${i}`)
    t.deepEqual(Object.keys(await v.revisions()), ['3'])
  })

  test(`${kind}: stop({ discard: true }) drops the dirty image: clean, revisions and precache unchanged`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    await commit(v, 'keep-me')
    const dirty = await v.start()
    writeAt(dirty, 0, 'throw-away')
    const before = snapshotTree(pool.dirPath)
    await v.stop({ discard: true })
    const after = snapshotTree(pool.dirPath)
    delete before['vm-templates/t-root/root-dirty.img']
    for (const k of Object.keys(after)) if (k.startsWith('.reflink-pool/locks')) delete after[k]
    for (const k of Object.keys(before)) if (k.startsWith('.reflink-pool/locks')) delete before[k]
    t.deepEqual(after, before)
    t.is(readAt(img(pool, 'vm-templates/t-root/root.img'), 0, 7), 'keep-me')
  })

  test(`${kind}: start reuses a dirty image left by a crash unchanged, and stop then commits it`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    const dirty = await v.start()
    writeAt(dirty, 0, 'crashed')
    const dIno = ino(dirty)
    writeFileSync(dirty.replace('-dirty.img', '.img~tmp123'), 'temp leftover')
    const reopened = await ReflinkPool.open({ dirPath: pool.dirPath })
    const again = reopened.getVolume(v.vid)
    t.true(await again.isDirty())
    t.is(await again.start(), dirty)
    t.is(ino(dirty), dIno)
    t.is(readAt(dirty, 0, 7), 'crashed')
    t.false(ls(img(pool, 'vm-templates/t-root')).some((f) => f.includes('~')), 'start removed the temp file')
    await again.stop()
    t.is(readAt(img(pool, 'vm-templates/t-root/root.img'), 0, 7), 'crashed')
  })

  test(`${kind}: snapshot start hardlinks the source's clean image, clones it to dirty; isOutdated after the source commits; stop removes both`, async (t) => {
    const pool = await open()
    const tpl = await origin(pool)
    await commit(tpl, 'template-v1')
    const snap = await pool.createVolume({ vid: 'appvms/a/root', name: 'root', snapOnStart: true, source: tpl.vid, size: SIZE, rw: false })
    const dirty = await snap.start()
    t.is(ino(img(pool, 'appvms/a/root.img')), ino(img(pool, 'vm-templates/t-root/root.img')), 'own clean is a hardlink of the source clean')
    t.not(ino(dirty), ino(img(pool, 'appvms/a/root.img')))
    t.is(readAt(dirty, 0, 11), 'template-v1')
    const u = await snap.usage()
    if (expected.reflink) t.true(u.shared > 0)
    else t.is(u.shared, 0)
    t.false(await snap.isOutdated())
    t.false(await snap.isDirty(), 'a snapshot is never dirty (not saveOnStop)')
    await commit(tpl, 'template-v2')
    t.true(await snap.isOutdated())
    writeAt(dirty, 0, 'scratch')
    await snap.stop()
    t.deepEqual(ls(img(pool, 'appvms/a')), [])
    t.false(await snap.isOutdated())
    await snap.start()
    t.is(readAt(snap.path, 0, 11), 'template-v2', 'next start sees the new template')
    await snap.stop()
  })

  test(`${kind}: origin-snapshot (S & SoS) starts from the source and commits into its own clean image only`, async (t) => {
    const pool = await open()
    const tpl = await origin(pool)
    await commit(tpl, 'base')
    const tplHash = hashFile(img(pool, 'vm-templates/t-root/root.img'))
    const os = await pool.createVolume({ vid: 'appvms/a/os', name: 'os', snapOnStart: true, saveOnStop: true, source: tpl.vid, size: SIZE })
    const dirty = await os.start()
    t.is(ino(img(pool, 'appvms/a/os.img')), ino(img(pool, 'vm-templates/t-root/root.img')))
    writeAt(dirty, 0, 'mine')
    await os.stop()
    t.is(readAt(img(pool, 'appvms/a/os.img'), 0, 4), 'mine')
    t.is(hashFile(img(pool, 'vm-templates/t-root/root.img')), tplHash, 'the source is untouched')
    t.not(ino(img(pool, 'appvms/a/os.img')), ino(img(pool, 'vm-templates/t-root/root.img')))
    t.deepEqual(Object.keys(await os.revisions()), ['1'])
  })

  test(`${kind}: volatile start makes a sparse dirty image of size; stop removes it and keeps a size changed while running`, async (t) => {
    const pool = await open()
    const v = await pool.createVolume({ vid: 'appvms/a/volatile', name: 'volatile', kind: 'volatile', size: SIZE })
    const dirty = await v.start()
    const st = statSync(dirty)
    t.is(st.size, SIZE)
    t.is(st.blocks, 0)
    t.is(st.mode & 0o777, 0o600)
    truncateSync(dirty, 2 * SIZE)
    await v.stop()
    t.deepEqual(ls(img(pool, 'appvms/a')), [])
    t.is(await v.size(), 2 * SIZE)
    const reopened = await ReflinkPool.open({ dirPath: pool.dirPath })
    t.is(await reopened.getVolume(v.vid).size(), 2 * SIZE, 'persisted')
    await v.stop()
  })

  test(`${kind}: snapshots disabled (-1): no precache; start prunes revisions and renames clean to dirty; stop renames back; discard refused`, async (t) => {
    const pool = await open({ revisionsToKeep: 2 })
    const v = await origin(pool)
    await commit(v, 'one')
    await commit(v, 'two')
    t.is(Object.keys(await v.revisions()).length, 2)
    const sd = await ReflinkPool.open({ dirPath: pool.dirPath, revisionsToKeep: -1 })
    const w = sd.getVolume(v.vid)
    t.is(w.revisionsToKeep, 2, 'reopening with another default leaves the volume its own')
    await w.setConfig({ revisionsToKeep: -1 })
    t.is(w.revisionsToKeep, -1)
    const cleanIno = ino(img(pool, 'vm-templates/t-root/root.img'))
    const dirty = await w.start()
    t.is(ino(dirty), cleanIno, 'start is a rename')
    t.deepEqual(ls(img(pool, 'vm-templates/t-root')), ['root-dirty.img'])
    t.true(await w.verify())
    writeAt(dirty, 0, 'three')
    await refusedUnchanged(t, sd, 'ERR_INVALID_ARG_VALUE', () => w.stop({ discard: true }))
    await refusedUnchanged(t, sd, 'ERR_VOLUME_DIRTY', () => w.export())
    await w.stop()
    t.deepEqual(ls(img(pool, 'vm-templates/t-root')), ['root.img'])
    t.is(ino(img(pool, 'vm-templates/t-root/root.img')), cleanIno, 'stop is a rename back')
    t.is(readAt(img(pool, 'vm-templates/t-root/root.img'), 0, 5), 'three')
    t.deepEqual(await w.revisions(), {})
    const fresh = await sd.createVolume({ vid: 'appvms/sd/root', name: 'root', saveOnStop: true, size: SIZE })
    t.deepEqual(ls(img(pool, 'appvms/sd')), ['root.img'], 'no precache under SD')
    t.is(fresh.revisionsToKeep, -1)
  })

  // ---- revert ------------------------------------------------------------------------

  test(`${kind}: revert restores the newest (or a chosen) revision, consuming it and saving the current clean as a new one`, async (t) => {
    const pool = await open({ revisionsToKeep: 3 })
    const v = await origin(pool)
    for (const c of ['c1', 'c2', 'c3']) await commit(v, c)
    // revisions: 1 (empty), 2 (c1), 3 (c2); clean = c3
    t.deepEqual(Object.keys(await v.revisions()), ['1', '2', '3'])
    const rev3 = ls(img(pool, 'vm-templates/t-root')).find((f) => f.includes('.img.3@'))!
    const rev3Ino = ino(img(pool, `vm-templates/t-root/${rev3}`))
    await v.revert()
    t.is(readAt(img(pool, 'vm-templates/t-root/root.img'), 0, 2), 'c2')
    t.is(ino(img(pool, 'vm-templates/t-root/root.img')), rev3Ino, 'the revision file is renamed into place')
    t.deepEqual(Object.keys(await v.revisions()), ['1', '2', '4'])
    t.is(readAt(img(pool, `vm-templates/t-root/${ls(img(pool, 'vm-templates/t-root')).find((f) => f.includes('.img.4@'))}`), 0, 2), 'c3')
    await v.revert(2)
    t.is(readAt(img(pool, 'vm-templates/t-root/root.img'), 0, 2), 'c1')
    t.deepEqual(Object.keys(await v.revisions()), ['1', '4', '5'])
    precacheOf(t, img(pool, 'vm-templates/t-root/root.img'), 'revert')
    await v.start()
    t.is(readAt(v.path, 0, 2), 'c1')
    await v.stop({ discard: true })
  })

  test(`${kind}: a revision that is still a second name of the clean image (a commit cut between its hardlink and its rename) is harmless`, async (t) => {
    const pool = await open({ revisionsToKeep: 3 })
    const v = await origin(pool)
    await commit(v, 'c1')
    const dir = img(pool, 'vm-templates/t-root')
    // What a power cut between the revision's link and the rename of the new image leaves on a filesystem without reflink.
    const { linkSync } = await import('node:fs')
    linkSync(join(dir, 'root.img'), join(dir, 'root.img.7@2024-01-01T00:00:00Z'))
    await commit(v, 'c2')
    t.is(readAt(join(dir, 'root.img'), 0, 2), 'c2')
    await v.revert(7)
    t.is(readAt(join(dir, 'root.img'), 0, 2), 'c1', 'revert to it gives its data')
    t.false(Object.keys(await v.revisions()).includes('7'), 'and consumes it, as any revert does')
    await v.revert()
    t.is(readAt(join(dir, 'root.img'), 0, 2), 'c2')
    for (const f of ls(dir)) t.is(statSync(join(dir, f)).nlink, 1, `${f}: one name per image once the commits are done`)
  })

  test(`${kind}: an origin-snapshot's revision never shares an inode with its source's clean image`, async (t) => {
    const pool = await open()
    const tpl = await origin(pool)
    await commit(tpl, 'template')
    const os = await pool.createVolume({ vid: 'appvms/a/os', name: 'os', snapOnStart: true, saveOnStop: true, source: tpl, size: SIZE })
    await commit(os, 'first')
    await commit(os, 'second')
    const tplClean = img(pool, 'vm-templates/t-root/root.img')
    const before = hashFile(tplClean)
    for (const f of ls(img(pool, 'appvms/a')).filter((n) => n.includes('.img.'))) {
      t.not(ino(img(pool, `appvms/a/${f}`)), ino(tplClean), `${f} is not the template's inode`)
    }
    // The source is changed through its own commits only; its clean image's bytes are not the snapshot's to keep.
    await commit(tpl, 'template 2')
    t.not(hashFile(tplClean), before)
    t.is(readAt(img(pool, 'appvms/a/os.img'), 0, 6), 'second')
  })

  test(`${kind}: revert errors: ERR_VOLUME_DIRTY while running, ERR_REVISION_NOT_FOUND for unknown or none; nothing changes`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    await refusedUnchanged(t, pool, 'ERR_REVISION_NOT_FOUND', () => v.revert())
    await commit(v, 'x')
    await refusedUnchanged(t, pool, 'ERR_REVISION_NOT_FOUND', () => v.revert(7))
    await refusedUnchanged(t, pool, 'ERR_REVISION_NOT_FOUND', () => v.revert('1/../../x'))
    await v.start()
    await refusedUnchanged(t, pool, 'ERR_VOLUME_DIRTY', () => v.revert(1))
  })

  // ---- resize --------------------------------------------------------------------------

  test(`${kind}: resize of a stopped S volume makes a new clean inode; a reader of the exported path keeps the old data`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    await commit(v, 'before-resize')
    const exported = await v.export()
    t.is(exported, img(pool, 'vm-templates/t-root/root.img'))
    const fd = openSync(exported, 'r')
    const oldIno = ino(exported)
    const oldHash = hashFile(exported)
    await v.resize(2 * SIZE)
    t.not(ino(exported), oldIno)
    t.is(statSync(exported).size, 2 * SIZE)
    t.is(readAt(exported, 0, 13), 'before-resize')
    const buf = Buffer.alloc(13)
    readSync(fd, buf, 0, 13, 0)
    t.is(buf.toString(), 'before-resize')
    const { fstatSync } = await import('node:fs')
    t.is(fstatSync(fd).size, SIZE, 'the open reader still sees the old image')
    closeSync(fd)
    await v.exportEnd(exported)
    t.not(hashFile(exported), oldHash)
    precacheOf(t, exported, 'resize')
    t.deepEqual(Object.keys(await v.revisions()), ['1'], 'resize adds no revision')
    await v.resize(SIZE, { allowShrink: true })
    t.is(await v.size(), SIZE)
  })

  test(`${kind}: resize of a running volume resizes dirty in place; stopped snapshot/volatile change only the nominal size`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    const dirty = await v.start()
    const dIno = ino(dirty)
    await v.resize(3 * SIZE)
    t.is(ino(dirty), dIno)
    t.is(statSync(dirty).size, 3 * SIZE)
    await v.stop()
    t.is(statSync(img(pool, 'vm-templates/t-root/root.img')).size, 3 * SIZE)
    const vol = await pool.createVolume({ vid: 'appvms/a/volatile', name: 'volatile', kind: 'volatile', size: SIZE })
    await vol.resize(2 * SIZE)
    t.deepEqual(ls(img(pool, 'appvms/a')), [])
    t.is(await vol.size(), 2 * SIZE)
    t.is(statSync((await vol.start())).size, 2 * SIZE)
    await vol.stop()
  })

  test(`${kind}: resize errors change nothing: read-only, shrink without allowShrink, invalid sizes`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    const ro = await origin(pool, 'ro', { rw: false })
    await refusedUnchanged(t, pool, 'ERR_VOLUME_READ_ONLY', () => ro.resize(2 * SIZE))
    await refusedUnchanged(t, pool, 'ERR_SHRINK_REFUSED', () => v.resize(SIZE - 4096))
    for (const size of [-4096, 0.5, 2 ** 60, Infinity]) await refusedUnchanged(t, pool, 'ERR_INVALID_ARG_VALUE', () => v.resize(size))
    await refusedUnchanged(t, pool, 'ERR_INVALID_ARG_TYPE', () => v.resize(SIZE / 2, { allowShrink: 'yes' as unknown as boolean }))
    await refusedUnchanged(t, pool, 'ERR_INVALID_ARG_TYPE', () => v.resize(2 * SIZE, 1 as never))
    await v.start()
    await refusedUnchanged(t, pool, 'ERR_SHRINK_REFUSED', () => v.resize(SIZE / 2))
  })

  // ---- export / import ------------------------------------------------------------------

  test(`${kind}: export/import need saveOnStop (ERR_NOT_SAVE_ON_STOP); importVolume is a no-op on other kinds`, async (t) => {
    const pool = await open()
    const tpl = await origin(pool)
    const vol = await pool.createVolume({ vid: 'appvms/a/volatile', name: 'volatile', kind: 'volatile', size: SIZE })
    await refusedUnchanged(t, pool, 'ERR_NOT_SAVE_ON_STOP', () => vol.export())
    await refusedUnchanged(t, pool, 'ERR_NOT_SAVE_ON_STOP', () => vol.importData(SIZE))
    await refusedUnchanged(t, pool, 'ERR_NOT_SAVE_ON_STOP', () => vol.importDataEnd(true))
    await refusedUnchanged(t, pool, 'ERR_NOT_SAVE_ON_STOP', () => vol.importStream(Readable.from([]), 0))
    t.throws(() => vol.exportStream(), { code: 'ERR_NOT_SAVE_ON_STOP' })
    t.is(await vol.importVolume(tpl), null)
    t.deepEqual(ls(img(pool, 'appvms/a')), [])
  })

  test(`${kind}: importData gives a sparse import file of exactly size; importDataEnd(true) commits it with a revision, (false) deletes it`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    const path = await v.importData(2 * SIZE)
    t.is(path, img(pool, 'vm-templates/t-root/root-import.img'))
    const st = statSync(path)
    t.is(st.size, 2 * SIZE)
    t.is(st.blocks, 0)
    writeAt(path, 0, 'imported')
    await v.importDataEnd(true)
    t.deepEqual(ls(img(pool, 'vm-templates/t-root')).filter((f) => !f.includes('.img.')), ['root.img'], 'an import makes no precache')
    t.is(readAt(img(pool, 'vm-templates/t-root/root.img'), 0, 8), 'imported')
    t.is(await v.size(), 2 * SIZE)
    t.deepEqual(Object.keys(await v.revisions()), ['1'])
    const before = hashFile(img(pool, 'vm-templates/t-root/root.img'))
    writeAt(await v.importData(SIZE), 0, 'discarded')
    await v.importDataEnd(false)
    t.false(existsSync(path))
    t.is(hashFile(img(pool, 'vm-templates/t-root/root.img')), before)
    t.deepEqual(Object.keys(await v.revisions()), ['1'])
    await refusedUnchanged(t, pool, 'ERR_MISSING_IMAGE', () => v.importDataEnd(true))
    await refusedUnchanged(t, pool, 'ERR_INVALID_ARG_VALUE', () => v.importData(-1))
  })

  test(`${kind}: importVolume copies the source's committed data (${expected.copyMethod}), commits, and the size follows the source; also across pools`, async (t) => {
    const pool = await open()
    const src = await origin(pool, 'src')
    await src.resize(2 * SIZE)
    await commit(src, 'source-data')
    const dst = await origin(pool, 'dst')
    const report = await dst.importVolume(src)
    t.is(report!.method, expected.copyMethod)
    t.is(hashFile(img(pool, 'vm-templates/t-dst/dst.img')), hashFile(img(pool, 'vm-templates/t-src/src.img')))
    t.is(await dst.size(), 2 * SIZE)
    t.deepEqual(Object.keys(await dst.revisions()), ['1'])
    t.false(existsSync(img(pool, 'vm-templates/t-dst/dst-import.img')))
    const other = await open()
    const far = await origin(other, 'far')
    const r2 = await far.importVolume(src)
    t.is(r2!.method, expected.copyMethod, 'across pools on one filesystem')
    t.is(hashFile(img(other, 'vm-templates/t-far/far.img')), hashFile(img(pool, 'vm-templates/t-src/src.img')))
  })

  test(`${kind}: exportStream yields the committed image byte for byte, holes as zeros`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    await commit(v, 'exported-data')
    const chunks: Buffer[] = []
    for await (const c of v.exportStream()) chunks.push(c as Buffer)
    const all = Buffer.concat(chunks)
    t.is(all.length, SIZE)
    t.true(all.equals(readFileSync(img(pool, 'vm-templates/t-root/root.img'))))
  })

  test(`${kind}: importStream keeps large zero regions as holes, commits, reports progress; round trip with exportStream`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    const size = 16 * MiB
    // 16 MiB: 64 KiB of data at 0 and at 10 MiB, zeros elsewhere, in odd-sized chunks.
    const data = Buffer.alloc(size)
    data.fill('a', 0, 65536)
    data.fill('b', 10 * MiB, 10 * MiB + 65536)
    const chunks: Buffer[] = []
    for (let off = 0; off < size; off += 300_001) chunks.push(data.subarray(off, Math.min(size, off + 300_001)))
    const progress: number[] = []
    await v.importStream(Readable.from(chunks), size, { onProgress: (done) => progress.push(done) })
    const clean = img(pool, 'vm-templates/t-root/root.img')
    t.true(readFileSync(clean).equals(data))
    const allocated = statSync(clean).blocks * 512
    t.true(allocated <= 4 * MiB, `only the data blocks are allocated (${allocated} bytes of ${size})`)
    t.is(progress.at(-1), size)
    t.deepEqual(Object.keys(await v.revisions()), ['1'])
    const back: Buffer[] = []
    for await (const c of v.exportStream()) back.push(c as Buffer)
    t.true(Buffer.concat(back).equals(data))
  })

  test(`${kind}: importStream that aborts, errors, or delivers the wrong length changes nothing`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    await commit(v, 'stable')
    const ac = new AbortController()
    async function* slow() {
      yield Buffer.alloc(MiB, 1)
      ac.abort()
      yield Buffer.alloc(MiB, 2)
    }
    await refusedUnchanged(t, pool, 'ABORT_ERR', () => v.importStream(Readable.from(slow()), 2 * MiB, { signal: ac.signal }))
    async function* broken() {
      yield Buffer.alloc(MiB, 1)
      throw Object.assign(new Error('network down'), { code: 'ECONNRESET' })
    }
    await refusedUnchanged(t, pool, 'ECONNRESET', () => v.importStream(Readable.from(broken()), 2 * MiB))
    await refusedUnchanged(t, pool, 'ERR_INVALID_ARG_VALUE', () => v.importStream(Readable.from([Buffer.alloc(MiB, 1)]), 2 * MiB))
    await refusedUnchanged(t, pool, 'ERR_INVALID_ARG_VALUE', () => v.importStream(Readable.from([Buffer.alloc(3 * MiB, 1)]), 2 * MiB))
    await refusedUnchanged(t, pool, 'ERR_INVALID_ARG_TYPE', () => v.importStream(Readable.from([]), 0, { signal: 1 as never }))
    await refusedUnchanged(t, pool, 'ERR_INVALID_ARG_TYPE', () => v.importStream('data' as never, 4))
    await refusedUnchanged(t, pool, 'ERR_INVALID_ARG_TYPE', () => v.importVolume('vm-templates/t-root/root' as never))
    t.is(readAt(img(pool, 'vm-templates/t-root/root.img'), 0, 6), 'stable')
  })

  // ---- remove ------------------------------------------------------------------------------

  test(`${kind}: remove deletes every file of the volume, the empty VM directory and the record`, async (t) => {
    const pool = await open()
    const v = await origin(pool)
    const other = await origin(pool, 'other')
    await commit(v, 'x')
    await v.start()
    await v.remove()
    t.false(existsSync(img(pool, 'vm-templates/t-root')))
    t.throws(() => pool.getVolume(v.vid), { code: 'ERR_UNKNOWN_VOLUME' })
    const reopened = await ReflinkPool.open({ dirPath: pool.dirPath })
    t.deepEqual((await reopened.listVolumes()).map((x) => x.vid), [other.vid])
    await t.throwsAsync(v.start(), { code: 'ERR_UNKNOWN_VOLUME' })
    t.false(existsSync(img(pool, 'vm-templates/t-root')), 'a stale handle creates nothing')
  })

  // ---- planted symlinks ------------------------------------------------------------------------

  test(`${kind}: planted symlinks never lead outside the pool (ERR_UNSAFE_PATH; nothing outside changes)`, async (t) => {
    const pool = await open()
    const outside = join(fs().dir, `outside-${seq++}`)
    mkdirSync(outside)
    writeFileSync(join(outside, 'secret.img'), 'secret')
    writeFileSync(join(outside, 'victim'), 'victim-data')
    chmodSync(join(outside, 'victim'), 0o644)
    const outsideBefore = snapshotTree(outside)
    // A VM directory that is a symlink.
    const vol = await pool.createVolume({ vid: 'appvms/evil/volatile', name: 'volatile', kind: 'volatile', size: SIZE })
    symlinkSync(outside, img(pool, 'appvms/evil'))
    await t.throwsAsync(pool.createVolume({ vid: 'appvms/evil/secret', name: 'secret', saveOnStop: true, size: SIZE }), { code: 'ERR_UNSAFE_PATH' })
    await t.throwsAsync(pool.createVolume({ vid: 'appvms/evil/other', name: 'other', size: SIZE }), { code: 'ERR_UNSAFE_PATH' })
    t.throws(() => pool.getVolume('appvms/evil/secret'), { code: 'ERR_UNKNOWN_VOLUME' }, 'a refused create registers nothing')
    await t.throwsAsync(vol.start(), { code: 'ERR_UNSAFE_PATH' })
    await t.throwsAsync(vol.importData(SIZE), { code: 'ERR_NOT_SAVE_ON_STOP' })
    await t.throwsAsync(vol.remove(), { code: 'ERR_UNSAFE_PATH' })
    // Images that are symlinks to files outside.
    const v = await origin(pool)
    await commit(v, 'inside')
    const dir = img(pool, 'vm-templates/t-root')
    const { unlinkSync, renameSync } = await import('node:fs')
    renameSync(join(dir, 'root.img'), join(dir, 'root.img.bak'))
    symlinkSync(join(outside, 'victim'), join(dir, 'root.img'))
    await t.throwsAsync(v.start(), { code: 'ERR_UNSAFE_PATH' })
    await t.throwsAsync(v.resize(2 * SIZE), { code: 'ERR_UNSAFE_PATH' })
    await t.throwsAsync(v.export(), { code: 'ERR_UNSAFE_PATH' })
    await t.throwsAsync(v.remove(), { code: 'ERR_UNSAFE_PATH' })
    const tplSnap = await pool.createVolume({ vid: 'appvms/s/root', name: 'root', snapOnStart: true, source: v.vid, size: SIZE })
    await t.throwsAsync(tplSnap.start(), { code: 'ERR_UNSAFE_PATH' })
    unlinkSync(join(dir, 'root.img'))
    renameSync(join(dir, 'root.img.bak'), join(dir, 'root.img'))
    // A dirty image planted as a symlink: never renamed over clean.
    symlinkSync(join(outside, 'victim'), join(dir, 'root-dirty.img'))
    await t.throwsAsync(v.stop(), { code: 'ERR_UNSAFE_PATH' })
    await t.throwsAsync(v.start(), { code: 'ERR_UNSAFE_PATH' })
    unlinkSync(join(dir, 'root-dirty.img'))
    // A revision planted as a symlink: revert refuses.
    const rev = ls(dir).find((f) => f.includes('.img.1@'))!
    unlinkSync(join(dir, rev))
    symlinkSync(join(outside, 'secret.img'), join(dir, rev))
    await t.throwsAsync(v.revert(), { code: 'ERR_UNSAFE_PATH' })
    await t.throwsAsync(commit(v, 'again'), { code: 'ERR_UNSAFE_PATH' })
    // Metadata directories that are symlinks: open refuses the pool.
    const p2 = await open()
    await p2.close()
    const { rmSync } = await import('node:fs')
    rmSync(join(p2.dirPath, '.reflink-pool/locks'), { recursive: true })
    symlinkSync(outside, join(p2.dirPath, '.reflink-pool/locks'))
    await t.throwsAsync(ReflinkPool.open({ dirPath: p2.dirPath }), { code: 'ERR_UNSAFE_PATH' })
    // A lock file planted as a symlink is refused, not followed or waited on.
    symlinkSync(join(outside, 'victim'), join(pool.dirPath, '.reflink-pool/locks/appvms%2Fs%2Froot.lock'))
    await t.throwsAsync(tplSnap.stop(), { code: 'ERR_UNSAFE_PATH' })
    t.deepEqual(snapshotTree(outside), outsideBefore, 'nothing outside the pool was created, changed or deleted')
    t.is(readAt(join(dir, 'root.img'), 0, 6), 'inside')
  })
}
