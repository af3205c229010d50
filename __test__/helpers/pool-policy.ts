// Pool policy suite, run on each filesystem of the matrix: what the pool may
// and may not do to files it did not make (create over foreign images,
// adoption of a Qubes file-reflink directory), per-volume settings that
// reopening never changes, imports while running, stream chunk types,
// broken records, name limits, planted revisions and unknown option keys.
// Every refusal is checked to change nothing on disk (snapshotTree before and
// after: paths, inodes, sizes, mtimes, modes, content hashes).
import type { ExecutionContext, TestFn } from 'ava'
import { existsSync, linkSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync, truncateSync, rmSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { ReflinkPool, copyFile, type ReflinkVolume } from '../../ts/index'
import { FS_MATRIX, fsSuite, type FsKind } from './scratch-fs'
import { hashFile, ls, MiB, readAt, runChild, snapshotTree, writeAt, CHILD_SCRIPT } from './pool-fixture'
import { runCli } from './cli-run'

const SIZE = 4 * MiB
type Ctx = ExecutionContext<unknown>

export function poolPolicy(avaTest: TestFn, kind: FsKind): void {
  // Pools hold their directory open: close them before the filesystem is unmounted (ava runs `after` hooks before `after.always`).
  const opened: ReflinkPool[] = []
  avaTest.after(async () => {
    for (const p of opened) await p.close()
  })
  const { test, fs } = fsSuite(avaTest, kind)
  const expected = FS_MATRIX.find((m) => m.kind === kind)!
  /** An origin's files after create: its precache only where the filesystem reflinks. */
  const created = (name: string) => (expected.reflink ? [`${name}-precache.img`, `${name}.img`] : [`${name}.img`])
  let seq = 0
  const poolDir = () => join(fs().dir, `policy-${seq++}`)
  const open = async (opts: { revisionsToKeep?: number; dirPath?: string } = {}) => {
    const pool = await ReflinkPool.open({ dirPath: opts.dirPath ?? poolDir(), setupCheck: expected.reflink, ...opts })
    opened.push(pool)
    return pool
  }
  const origin = (pool: ReflinkPool, vid: string, extra: object = {}) =>
    pool.createVolume({ vid, name: vid.split('/').pop()!, size: SIZE, saveOnStop: true, ...extra })

  async function commit(v: ReflinkVolume, text: string): Promise<void> {
    writeAt(await v.start(), 0, text)
    await v.stop()
  }
  async function refusedUnchanged(t: Ctx, root: string, code: string, call: () => Promise<unknown>, what = code): Promise<Error> {
    const before = snapshotTree(root)
    const err = await t.throwsAsync(call, { code }, what)
    t.deepEqual(snapshotTree(root), before, `${what}: nothing on disk changed`)
    return err!
  }

  // ---- 1. create never destroys what it did not make --------------------------------

  test(`${kind}: createVolume over images without a record refuses with ERR_VOLUME_EXISTS naming them, and changes nothing`, async (t) => {
    const pool = await open()
    const dir = join(pool.dirPath, 'appvms', 'old')
    mkdirSync(dir, { recursive: true })
    const precious = Buffer.alloc(SIZE)
    precious.write('PRECIOUS', 0)
    precious.write('PRECIOUS', 3 * MiB)
    writeFileSync(join(dir, 'private.img'), precious)
    const hash = hashFile(join(dir, 'private.img'))
    const err = await refusedUnchanged(t, pool.dirPath, 'ERR_VOLUME_EXISTS', () => origin(pool, 'appvms/old/private'))
    t.regex(err.message, /private\.img/, 'names the file')
    t.is(hashFile(join(dir, 'private.img')), hash, 'PRECIOUS survives byte for byte')
    t.is(readAt(join(dir, 'private.img'), 3 * MiB, 8), 'PRECIOUS')
    t.deepEqual(await pool.listVolumes(), [])
    // Every other kind of file of the vid, alone, is refused the same way (for every volume kind).
    const others = ['data-dirty.img', 'data-precache.img', 'data-import.img', 'data.img.7@2020-01-01T00:00:00Z', 'data.img~0123456789abcdef',
      'data.img.99999999999999999999@2020-01-01T00:00:00Z']
    for (const f of others) {
      writeFileSync(join(dir, f), 'PRECIOUS')
      for (const extra of [{ saveOnStop: true }, { saveOnStop: false }]) {
        const e = await refusedUnchanged(t, pool.dirPath, 'ERR_VOLUME_EXISTS', () => pool.createVolume({ vid: 'appvms/old/data', name: 'data', size: SIZE, ...extra }), f)
        t.true(e.message.includes(f), `names ${f}`)
      }
      rmSync(join(dir, f))
    }
    // A neighbour's files do not count; adoption is the way to register the old image.
    t.is((await origin(pool, 'appvms/old/priv')).vid, 'appvms/old/priv')
    const adopted = await pool.adoptVolume({ vid: 'appvms/old/private', name: 'private' })
    t.is(await adopted.size(), SIZE)
    t.is(hashFile(join(dir, 'private.img')), hash)
  })

  test(`${kind}: a create killed (SIGKILL) after making its files leaves nothing listed, and the next open removes its files`, async (t) => {
    const pool = await open()
    await origin(pool, 'appvms/keep/private')
    await pool.close()
    const err = await t.throwsAsync(runChild(CHILD_SCRIPT, ['killcreate', pool.dirPath, 'appvms/half/private', String(SIZE)]))
    t.is((err as { signal?: string }).signal, 'SIGKILL')
    t.deepEqual(ls(join(pool.dirPath, 'appvms', 'half')), created('private'), 'the killed create made its files')
    t.true(ls(join(pool.dirPath, '.reflink-pool', 'volumes')).includes('appvms%2Fhalf%2Fprivate.json'), 'and its record, marked creating')
    const again = await open({ dirPath: pool.dirPath })
    t.deepEqual((await again.listVolumes()).map((v) => v.vid), ['appvms/keep/private'], 'nothing of the unfinished create is listed')
    t.false(existsSync(join(pool.dirPath, 'appvms', 'half')), 'its files and directory are gone')
    t.deepEqual(ls(join(pool.dirPath, '.reflink-pool', 'volumes')), ['appvms%2Fkeep%2Fprivate.json'])
    t.true(again.recovery.removed.some((p) => p.endsWith('half/private.img')))
    t.true(again.recovery.recovered.includes('appvms/half/private'))
    // The vid is free again.
    t.is(await (await origin(again, 'appvms/half/private')).size(), SIZE)
  })

  test(`${kind}: a record marked creating is not a volume; createVolume of its vid undoes that create first`, async (t) => {
    const pool = await open()
    const dir = join(pool.dirPath, 'vm-templates', 'f')
    mkdirSync(dir, { recursive: true })
    const other = await open({ dirPath: pool.dirPath })
    // What a create killed in another process leaves: its record marked creating, and files.
    writeFileSync(join(dir, 'root.img'), 'made by the crashed create')
    writeFileSync(join(pool.dirPath, '.reflink-pool', 'volumes', 'vm-templates%2Ff%2Froot.json'),
      JSON.stringify({ vid: 'vm-templates/f/root', name: 'root', rw: true, saveOnStop: true, snapOnStart: false, source: null, size: SIZE, revisionsToKeep: 1, creating: true }))
    t.deepEqual((await other.listVolumes()).map((v) => v.vid), [], 'not listed while unfinished')
    t.throws(() => other.getVolume('vm-templates/f/root'), { code: 'ERR_UNKNOWN_VOLUME' })
    // createVolume of the same vid (under its lock) undoes the unfinished create, then creates.
    const v = await origin(pool, 'vm-templates/f/root')
    t.true(await v.verify())
    t.deepEqual(ls(dir), created('root'))
    t.is(readAt(join(dir, 'root.img'), 0, 4), '\0\0\0\0')
    t.is((await other.listVolumes()).length, 1)
  })

  // ---- 2. adoption of a Qubes file-reflink directory --------------------------------------

  /** A directory exactly as the Qubes file-reflink driver leaves it (VMs stopped, one running), no metadata. */
  function qubesLayout(dir: string): Record<string, string> {
    const files: Record<string, string> = {
      'vm-templates/debian-12/root.img': 'template root c3',
      'vm-templates/debian-12/root.img.1@2024-03-01T10:00:00Z': 'template root c1',
      'vm-templates/debian-12/root.img.2@2024-03-02T11:30:00Z': 'template root c2',
      'vm-templates/debian-12/root-precache.img': 'template root c3',
      'vm-templates/debian-12/private.img': 'template private',
      'vm-templates/debian-12/private.img.1@2024-03-01T10:00:00Z': 'template private old',
      'vm-templates/debian-12/private-precache.img': 'template private',
      'appvms/work/private.img': 'work private c9',
      'appvms/work/private.img.8@2024-04-01T08:00:00Z': 'work private c7',
      'appvms/work/private.img.9@2024-04-02T08:00:00Z': 'work private c8',
      'appvms/work/private-precache.img': 'work private c9',
      'appvms/mail/private.img': 'mail private',
      'appvms/mail/private-precache.img': 'mail private',
      // A VM left running: its private volume is dirty, its volatile and root snapshot exist only while it runs.
      'appvms/run/private.img': 'run private committed',
      'appvms/run/private-dirty.img': 'run private in use',
      'appvms/run/volatile-dirty.img': 'volatile',
      'appvms/run/root-dirty.img': 'root in use',
      // Names that are no volume of ours.
      'appvms/work/notes.txt': 'not an image',
      'appvms/.hidden/private.img': 'hidden VM dir',
    }
    for (const [rel, text] of Object.entries(files)) {
      mkdirSync(join(dir, rel, '..'), { recursive: true })
      writeFileSync(join(dir, rel), Buffer.concat([Buffer.from(text), Buffer.alloc(64 * 1024)]), { mode: 0o600 })
    }
    // The running appvm's root snapshot: a hardlink of the template's clean image, as the driver makes it.
    linkSync(join(dir, 'vm-templates/debian-12/root.img'), join(dir, 'appvms/run/root.img'))
    files['appvms/run/root.img'] = files['vm-templates/debian-12/root.img']
    // The precaches have their clean image's mtime, as the driver's copy_mtime gives them.
    const t0 = new Date('2024-04-02T09:00:00Z')
    for (const rel of Object.keys(files)) utimesSync(join(dir, rel), t0, t0)
    return files
  }

  test(`${kind}: adoptAll registers a Qubes file-reflink directory's image sets without changing a byte; the volumes then work`, async (t) => {
    const dir = poolDir()
    const files = qubesLayout(dir)
    const before = snapshotTree(dir)
    const pool = await open({ dirPath: dir, revisionsToKeep: 2 })
    t.deepEqual(await pool.listVolumes(), [], 'opening adopts nothing by itself')
    const report = await pool.adoptAll()
    const after = snapshotTree(dir)
    for (const rel of Object.keys(files)) t.deepEqual(after[rel], before[rel], `${rel}: same inode, size, mtime, mode and content`)
    t.deepEqual(Object.keys(after).filter((k) => !k.startsWith('.reflink-pool') && !(k in before)), [], 'no new file outside .reflink-pool')
    t.deepEqual(report.adopted, ['appvms/mail/private', 'appvms/run/private', 'appvms/work/private', 'vm-templates/debian-12/private', 'vm-templates/debian-12/root'])
    t.deepEqual(report.skipped.map((s) => s.path.slice(dir.length + 1)).sort(), ['appvms/.hidden/private', 'appvms/run/root', 'appvms/run/volatile'])
    t.regex(report.skipped.find((s) => s.path.endsWith('volatile'))!.reason, /no clean image \(dirty only\)/)
    t.regex(report.skipped.find((s) => s.path.endsWith('run/root'))!.reason, /hardlinked/)
    // Revisions as the driver named them; sizes from the images; the pool's default revisionsToKeep.
    const work = pool.getVolume('appvms/work/private')
    t.deepEqual(await work.revisions(), { 8: '2024-04-01T08:00:00Z', 9: '2024-04-02T08:00:00Z' })
    t.is(await work.size(), before['appvms/work/private.img'].size)
    t.is(work.revisionsToKeep, 2)
    t.true(work.saveOnStop && !work.snapOnStart)
    // The running VM's private volume is dirty: stop commits what it wrote.
    const run = pool.getVolume('appvms/run/private')
    t.true(await run.isDirty())
    await run.stop()
    t.is(readAt(join(dir, 'appvms/run/private.img'), 0, 18), 'run private in use')
    // Start uses the driver's precache (same size and mtime): a rename, so the dirty image is that inode.
    const dirty = await work.start()
    t.is(snapshotTree(dir)['appvms/work/private-dirty.img'].ino, before['appvms/work/private-precache.img'].ino)
    writeAt(dirty, 0, 'work private c10')
    await work.stop()
    t.deepEqual(Object.keys(await work.revisions()), ['9', '10'], 'numbering continues after the adopted revisions, pruned to 2')
    t.is(readAt(join(dir, 'appvms/work/private.img.10@2024-04-02T09:00:00Z'), 0, 15), 'work private c9')
    // Data moves between adopted volumes with this filesystem's strategy.
    const copied = await pool.getVolume('appvms/mail/private').importVolume(work)
    t.is(copied?.method, expected.copyMethod)
    t.is(readAt(join(dir, 'appvms/mail/private.img'), 0, 16), 'work private c10')
    // Running adoptAll again adopts nothing new; adopting one again is ERR_VOLUME_EXISTS.
    t.deepEqual((await pool.adoptAll()).adopted, [])
    await t.throwsAsync(pool.adoptVolume({ vid: 'appvms/mail/private', name: 'private' }), { code: 'ERR_VOLUME_EXISTS' })
    // A reopened pool knows them.
    const again = await open({ dirPath: dir })
    t.is((await again.listVolumes()).length, 5)
  })

  test(`${kind}: adoptVolume registers one image set (or a snapshot kind) and refuses what it cannot adopt, changing nothing`, async (t) => {
    const dir = poolDir()
    qubesLayout(dir)
    const pool = await open({ dirPath: dir })
    const tpl = await pool.adoptVolume({ vid: 'vm-templates/debian-12/root', name: 'root', revisionsToKeep: 3 })
    t.is(tpl.revisionsToKeep, 3)
    t.deepEqual(Object.keys(await tpl.revisions()), ['1', '2'])
    // The running appvm's root is a snapshot of the template: adopt it as one, its images stay.
    const snap = await pool.adoptVolume({ vid: 'appvms/run/root', name: 'root', snapOnStart: true, saveOnStop: false, source: tpl.vid, rw: false })
    t.true(snap.snapOnStart && !snap.saveOnStop && !snap.rw)
    t.true(existsSync(join(dir, 'appvms/run/root-dirty.img')))
    const vol = await pool.adoptVolume({ vid: 'appvms/run/volatile', name: 'volatile', saveOnStop: false, size: 1 << 20 })
    await vol.stop()
    t.false(existsSync(join(dir, 'appvms/run/volatile-dirty.img')), 'a volatile volume drops its dirty image on stop')
    await refusedUnchanged(t, dir, 'ERR_MISSING_IMAGE', () => pool.adoptVolume({ vid: 'appvms/none/private', name: 'private' }), 'no image')
    await refusedUnchanged(t, dir, 'ERR_VOLUME_EXISTS', () => pool.adoptVolume({ vid: tpl.vid, name: 'root' }), 'already a volume')
    await refusedUnchanged(t, dir, 'ERR_UNKNOWN_VOLUME', () => pool.adoptVolume({ vid: 'appvms/mail/root', name: 'root', snapOnStart: true, saveOnStop: false, source: 'vm-templates/x/root' }), 'unknown source')
    await refusedUnchanged(t, dir, 'ERR_INVALID_ARG_VALUE', () => pool.adoptVolume({ vid: 'appvms/mail/private', name: 'private', sizee: 1 } as never), 'unknown key')
    symlinkSync(join(dir, 'appvms/mail/private.img'), join(dir, 'appvms/work/linked.img'))
    await refusedUnchanged(t, dir, 'ERR_UNSAFE_PATH', () => pool.adoptVolume({ vid: 'appvms/work/linked', name: 'linked' }), 'symlinked image')
  })

  test(`${kind}: CLI init --adopt and volume adopt register a Qubes layout; volume config changes one volume`, async (t) => {
    const dir = poolDir()
    const files = qubesLayout(dir)
    const before = snapshotTree(dir)
    const init = await runCli(['--pool', dir, 'init', '--adopt', '--json', ...(expected.reflink ? [] : ['--no-setup-check'])])
    t.is(init.status, 0, init.stderr)
    const out = JSON.parse(init.stdout)
    t.is(out.adoption.adopted.length, 5)
    const after = snapshotTree(dir)
    for (const rel of Object.keys(files)) t.deepEqual(after[rel], before[rel], rel)
    const adopt = await runCli(['--pool', dir, 'volume', 'adopt', 'appvms/run/volatile', '--kind', 'volatile', '--json'])
    t.is(adopt.status, 0, adopt.stderr)
    t.is(JSON.parse(adopt.stdout).kind, 'volatile')
    const cfg = await runCli(['--pool', dir, 'volume', 'config', 'appvms/work/private', '--revisions-to-keep', '5', '--ro', '--json'])
    t.is(cfg.status, 0, cfg.stderr)
    t.like(JSON.parse(cfg.stdout), { revisionsToKeep: 5, rw: false })
    const text = await runCli(['--pool', dir, 'init', '--adopt'])
    t.regex(text.stdout, /Adopted 0 volumes\./)
    t.regex(text.stdout, /appvms\/\.hidden\/private: its name is not a valid volume id/)
  })

  // ---- 3. a volume's revisionsToKeep is its own ----------------------------------------

  test(`${kind}: reopening with another revisionsToKeep never changes existing volumes; setConfig does, and persists`, async (t) => {
    const pool = await open({ revisionsToKeep: 3 })
    const v = await origin(pool, 'appvms/a/private')
    t.is(v.revisionsToKeep, 3)
    for (const c of ['c1', 'c2', 'c3']) await commit(v, c)
    t.is(Object.keys(await v.revisions()).length, 3)
    const reopened = await open({ dirPath: pool.dirPath, revisionsToKeep: -1 })
    const w = reopened.getVolume(v.vid)
    t.is(w.revisionsToKeep, 3, 'still its own')
    t.is(reopened.revisionsToKeep, -1, 'the pool default changed')
    await w.start()
    await w.stop()
    t.is(Object.keys(await w.revisions()).length, 3, 'no revision lost on the next start/stop')
    t.is((await origin(reopened, 'appvms/b/private')).revisionsToKeep, -1, 'new volumes copy the new default')
    // The explicit call changes it, from the next commit on, and survives reopening.
    await w.setConfig({ revisionsToKeep: 1 })
    await commit(w, 'c4')
    t.deepEqual(Object.keys(await w.revisions()), ['5'])
    t.is((await open({ dirPath: pool.dirPath, revisionsToKeep: 7 })).getVolume(v.vid).revisionsToKeep, 1)
    // rw: read-only refuses resize; back to rw allows it.
    await w.setConfig({ rw: false })
    await refusedUnchanged(t, pool.dirPath, 'ERR_VOLUME_READ_ONLY', () => w.resize(2 * SIZE))
    await w.setConfig({ rw: true })
    await w.resize(2 * SIZE)
    // Switching snapshots off (or on) while running is refused; bad settings are refused; nothing changes.
    await w.start()
    await refusedUnchanged(t, pool.dirPath, 'ERR_VOLUME_DIRTY', () => w.setConfig({ revisionsToKeep: -1 }))
    await w.setConfig({ revisionsToKeep: 2 })
    await w.stop()
    const bad: Array<[unknown, string]> = [
      [{ revisionsToKeep: -2 }, 'ERR_INVALID_ARG_VALUE'], [{ revisionsToKeep: 1.5 }, 'ERR_INVALID_ARG_VALUE'], [{ revisionsToKeep: '1' }, 'ERR_INVALID_ARG_TYPE'],
      [{ rw: 'yes' }, 'ERR_INVALID_ARG_TYPE'], [{ revisions: 1 }, 'ERR_INVALID_ARG_VALUE'], [null, 'ERR_INVALID_ARG_TYPE'], [undefined, 'ERR_INVALID_ARG_TYPE'], [5, 'ERR_INVALID_ARG_TYPE'],
    ]
    for (const [o, code] of bad) await refusedUnchanged(t, pool.dirPath, code, () => w.setConfig(o as never), `setConfig(${JSON.stringify(o)})`)
  })

  test(`${kind}: records without revisionsToKeep get the pool's stored default once, persisted at the first open`, async (t) => {
    const pool = await open({ revisionsToKeep: 2 })
    const a = await origin(pool, 'appvms/a/private')
    const b = await origin(pool, 'appvms/b/private', { revisionsToKeep: 4 })
    await pool.close()
    // Records as older versions wrote them: the field missing, or null (follow the pool).
    const recA = join(pool.dirPath, '.reflink-pool/volumes/appvms%2Fa%2Fprivate.json')
    const { revisionsToKeep: _drop, ...legacy } = JSON.parse(readFileSync(recA, 'utf8'))
    writeFileSync(recA, JSON.stringify(legacy))
    const recB = join(pool.dirPath, '.reflink-pool/volumes/appvms%2Fb%2Fprivate.json')
    writeFileSync(recB, JSON.stringify({ ...JSON.parse(readFileSync(recB, 'utf8')), revisionsToKeep: null }))
    const first = await open({ dirPath: pool.dirPath, revisionsToKeep: 5 })
    t.is(first.getVolume(a.vid).revisionsToKeep, 2, 'the stored default, not the one given to this open')
    t.is(first.getVolume(b.vid).revisionsToKeep, 2)
    t.is(JSON.parse(readFileSync(recA, 'utf8')).revisionsToKeep, 2, 'persisted')
    t.is(JSON.parse(readFileSync(recB, 'utf8')).revisionsToKeep, 2, 'persisted')
    await first.close()
    const second = await open({ dirPath: pool.dirPath, revisionsToKeep: 0 })
    t.is(second.getVolume(a.vid).revisionsToKeep, 2, 'later reopen options never change it')
    t.is(second.revisionsToKeep, 0)
  })

  // ---- 4. imports while a dirty image exists ---------------------------------------------

  test(`${kind}: every import is refused with ERR_VOLUME_DIRTY while the volume runs (snapshots disabled or not); the VM's data commits`, async (t) => {
    const pool = await open({ revisionsToKeep: -1 })
    const sd = await origin(pool, 'appvms/sd/private')
    const src = await origin(pool, 'appvms/src/private', { revisionsToKeep: 1 })
    await commit(src, 'SOURCE')
    const dirty = await sd.start()
    writeAt(dirty, 0, 'VM-DATA')
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['importData', () => sd.importData(SIZE)],
      ['importStream', () => sd.importStream(Readable.from([Buffer.alloc(SIZE, 1)]), SIZE)],
      ['importVolume', () => sd.importVolume(src)],
    ]
    for (const [what, call] of calls) await refusedUnchanged(t, pool.dirPath, 'ERR_VOLUME_DIRTY', call, `${what} (snapshots disabled)`)
    await sd.stop()
    t.is(readAt(join(pool.dirPath, 'appvms/sd/private.img'), 0, 7), 'VM-DATA', 'the stop committed the VM data, no import was lost')
    // The same on a volume with revisions; and an import begun before start cannot be committed while running.
    const rv = await origin(pool, 'appvms/rv/private', { revisionsToKeep: 2 })
    await rv.start()
    for (const [what, call] of [['importData', () => rv.importData(SIZE)], ['importVolume', () => rv.importVolume(src)]] as const) {
      await refusedUnchanged(t, pool.dirPath, 'ERR_VOLUME_DIRTY', call, `${what} (revisions)`)
    }
    await rv.stop()
    const imp = await rv.importData(SIZE)
    writeAt(imp, 0, 'IMPORTED')
    renameSync(join(pool.dirPath, 'appvms/rv/private.img'), join(pool.dirPath, 'appvms/rv/private-dirty.img')) // as if started meanwhile
    await refusedUnchanged(t, pool.dirPath, 'ERR_VOLUME_DIRTY', () => rv.importDataEnd(true), 'importDataEnd while dirty')
    renameSync(join(pool.dirPath, 'appvms/rv/private-dirty.img'), join(pool.dirPath, 'appvms/rv/private.img'))
    await rv.importDataEnd(true)
    t.is(readAt(join(pool.dirPath, 'appvms/rv/private.img'), 0, 8), 'IMPORTED')
  })

  // ---- 5. importStream chunks are bytes ------------------------------------------------------

  test(`${kind}: importStream counts any ArrayBufferView by its bytes; other chunks are ERR_INVALID_ARG_TYPE with nothing left`, async (t) => {
    const pool = await open()
    const v = await origin(pool, 'appvms/s/private', { size: 0 })
    const bytes = Buffer.alloc(64 * 1024)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)
    const views: Array<[string, ArrayBufferView[]]> = [
      ['Uint16Array', [new Uint16Array(ab, 0, 8192), new Uint16Array(ab, 16384, 24576)]],
      ['DataView + Float64Array', [new DataView(ab, 0, 1000), new Float64Array(ab, 1000, 100), new Uint8Array(ab, 1800)]],
      ['Float64Array', [new Float64Array(ab)]],
      ['Int32Array at an offset', [new Int32Array(ab, 4, 100), new Uint8Array(ab, 404)]],
    ]
    for (const [what, chunks] of views) {
      const total = chunks.reduce((n, c) => n + c.byteLength, 0)
      await v.importStream(Readable.from(chunks, { objectMode: true }), total)
      const clean = readFileSync(join(pool.dirPath, 'appvms/s/private.img'))
      const expectedBytes = Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)))
      t.is(clean.length, total, `${what}: size is the byte count`)
      t.true(clean.equals(expectedBytes), `${what}: the bytes committed are the chunks' bytes`)
    }
    for (const bad of ['a string', 42, { length: 4 }, [1, 2, 3], null]) {
      const err = await refusedUnchanged(t, pool.dirPath, 'ERR_INVALID_ARG_TYPE',
        () => v.importStream((async function* () {
          yield Buffer.alloc(4)
          yield bad
        })() as AsyncIterable<Uint8Array>, 8), `chunk ${JSON.stringify(bad)}`)
      t.regex(err.message, /Buffer, TypedArray or DataView/)
    }
    t.false(existsSync(join(pool.dirPath, 'appvms/s/private-import.img')))
  })

  // ---- 6. broken records and pool.json -------------------------------------------------------

  test(`${kind}: a symlinked, truncated or invalid record makes only that volume broken; no message shows file contents`, async (t) => {
    const pool = await open()
    const good = await origin(pool, 'appvms/good/private')
    for (const n of ['link', 'torn', 'schema', 'fifo']) await origin(pool, `appvms/${n}/private`)
    await pool.close()
    const secret = join(fs().dir, `secret-${seq++}`)
    writeFileSync(secret, 'root:SECRET-HASH-1234:19000:0:99999:7:::\n')
    const rec = (n: string) => join(pool.dirPath, `.reflink-pool/volumes/appvms%2F${n}%2Fprivate.json`)
    rmSync(rec('link'))
    symlinkSync(secret, rec('link'))
    writeFileSync(rec('torn'), readFileSync(rec('torn'), 'utf8').slice(0, 30))
    writeFileSync(rec('schema'), JSON.stringify({ ...JSON.parse(readFileSync(rec('schema'), 'utf8')), size: -1, 'SECRET-HASH-1234': 1 }))
    rmSync(rec('fifo'))
    const { execFileSync } = await import('node:child_process')
    execFileSync('mkfifo', [rec('fifo')])
    const reopened = await open({ dirPath: pool.dirPath })
    const listed = await reopened.listVolumes()
    t.deepEqual(listed.map((v) => [v.vid, v.broken !== null]), [
      ['appvms/fifo/private', true], ['appvms/good/private', false], ['appvms/link/private', true], ['appvms/schema/private', true], ['appvms/torn/private', true],
    ])
    const messages: string[] = []
    for (const n of ['link', 'torn', 'schema', 'fifo']) {
      const v = reopened.getVolume(`appvms/${n}/private`)
      messages.push(v.broken!)
      for (const call of [() => v.start(), () => v.stop(), () => v.size(), () => v.revisions(), () => v.remove(), () => v.export(), () => v.setConfig({ rw: false })]) {
        const err = await refusedUnchanged(t, pool.dirPath, 'ERR_VOLUME_BROKEN', call as () => Promise<unknown>, `${n}`)
        messages.push(err.message)
      }
    }
    t.regex(reopened.getVolume('appvms/link/private').broken!, /symlink/)
    t.regex(reopened.getVolume('appvms/torn/private').broken!, /not valid JSON/)
    t.regex(reopened.getVolume('appvms/fifo/private').broken!, /not a regular file/)
    t.regex(reopened.getVolume('appvms/schema/private').broken!, /field this version does not know|size/)
    for (const m of messages) t.false(m.includes('SECRET-HASH-1234') || m.includes('root:'), `no contents in: ${m}`)
    // The good volume works; a new one can be created.
    await commit(reopened.getVolume(good.vid), 'fine')
    await origin(reopened, 'appvms/new/private')
    // The CLI lists the broken volumes as broken, and shows no contents anywhere.
    for (const args of [['volume', 'list'], ['volume', 'list', '--json'], ['volume', 'info', 'appvms/link/private'], ['volume', 'start', 'appvms/torn/private'], ['usage'], ['info']]) {
      const r = await runCli(['--pool', pool.dirPath, ...args])
      t.false((r.stdout + r.stderr).includes('SECRET-HASH'), `${args.join(' ')}: no contents`)
      if (args[1] === 'list') t.regex(r.stdout, /broken/)
    }
  })

  test(`${kind}: a symlinked or invalid pool.json is ERR_POOL_BROKEN without showing its contents; nothing is rewritten`, async (t) => {
    const pool = await open()
    await pool.close()
    const cfg = join(pool.dirPath, '.reflink-pool/pool.json')
    const good = readFileSync(cfg)
    const secret = join(fs().dir, `secret-${seq++}`)
    writeFileSync(secret, 'SECRET-HASH-5678')
    const cases: Array<[string, () => void]> = [
      ['symlink', () => { rmSync(cfg); symlinkSync(secret, cfg) }],
      ['truncated', () => writeFileSync(cfg, good.subarray(0, 20))],
      ['negative revisionsToKeep', () => writeFileSync(cfg, JSON.stringify({ ...JSON.parse(good.toString()), revisionsToKeep: -5 }))],
      ['unsafe integer', () => writeFileSync(cfg, JSON.stringify({ ...JSON.parse(good.toString()), revisionsToKeep: 2 ** 60 }))],
      ['unknown key', () => writeFileSync(cfg, JSON.stringify({ ...JSON.parse(good.toString()), 'SECRET-HASH-5678': true }))],
      ['empty', () => truncateSync(cfg, 0)],
    ]
    for (const [what, plant] of cases) {
      rmSync(cfg, { force: true })
      writeFileSync(cfg, good)
      plant()
      const err = await refusedUnchanged(t, pool.dirPath, 'ERR_POOL_BROKEN', () => open({ dirPath: pool.dirPath, revisionsToKeep: 3 }), what)
      t.false(err.message.includes('SECRET-HASH'), what)
    }
  })

  // ---- 7. names and revision numbers ---------------------------------------------------------

  test(`${kind}: a vid whose derived names would exceed NAME_MAX is ERR_INVALID_VID before anything exists; the longest accepted one works`, async (t) => {
    const pool = await open()
    await refusedUnchanged(t, pool.dirPath, 'ERR_INVALID_VID', () => origin(pool, `appvms/${'v'.repeat(128)}/${'n'.repeat(128)}`), '128 + 128')
    await refusedUnchanged(t, pool.dirPath, 'ERR_INVALID_VID', () => origin(pool, `appvms/vm/${'n'.repeat(197)}`), 'name 197')
    // The longest accepted names: every operation runs, including a revision's temp file and an import marker.
    for (const vid of [`appvms/vm/${'n'.repeat(196)}`, `vm-templates/${'v'.repeat(100)}/${'n'.repeat(113)}`]) {
      const v = await origin(pool, vid, { revisionsToKeep: 2 })
      await commit(v, 'long')
      await commit(v, 'longer')
      t.is(Object.keys(await v.revisions()).length, 2)
      const imp = await v.importData(SIZE)
      writeAt(imp, 0, 'imported')
      await v.importDataEnd(true)
      await v.revert()
      await v.remove()
    }
  })

  test(`${kind}: a planted revision with an out-of-range number is reported, never hides the others or stops pruning`, async (t) => {
    const pool = await open({ revisionsToKeep: 2 })
    const v = await origin(pool, 'appvms/r/private')
    await commit(v, 'c1')
    const planted = ['private.img.9007199254740993@2020-01-01T00:00:00Z', 'private.img.99999999999999999999@2020-01-01T00:00:00Z']
    for (const f of planted) writeFileSync(join(pool.dirPath, 'appvms/r', f), 'planted')
    for (const c of ['c2', 'c3', 'c4']) await commit(v, c)
    t.deepEqual(Object.keys(await v.revisions()), ['3', '4'], 'numbering and pruning ignore the planted files')
    t.is(readAt(join(pool.dirPath, 'appvms/r/private.img'), 0, 2), 'c4')
    t.deepEqual((await v.strayRevisions()).map((p) => p.split('/').pop()).sort(), [...planted].sort())
    const cli = await runCli(['--pool', pool.dirPath, 'volume', 'revisions', v.vid, '--json'])
    t.is(cli.status, 0, cli.stderr)
    t.deepEqual(JSON.parse(cli.stdout).strayRevisions.length, 2, 'the CLI reports them')
    await v.revert()
    t.is(readAt(join(pool.dirPath, 'appvms/r/private.img'), 0, 2), 'c3')
    await v.remove()
    t.deepEqual(ls(join(pool.dirPath, 'appvms/r')).sort(), [...planted].sort(), 'files the pool did not make are left')
  })

  // ---- 8. unknown option keys -------------------------------------------------------------------

  test(`${kind}: unknown option keys are ERR_INVALID_ARG_VALUE on every call that takes options, and change nothing`, async (t) => {
    const pool = await open()
    const v = await origin(pool, 'appvms/k/private')
    await commit(v, 'data')
    const src = join(pool.dirPath, 'appvms/k/private.img')
    const running = await origin(pool, 'appvms/k/run')
    await running.start()
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['ReflinkPool.open', () => ReflinkPool.open({ dirPath: pool.dirPath, revisionToKeep: 3 } as never)],
      ['createVolume', () => pool.createVolume({ vid: 'appvms/k/new', name: 'new', saveOnStpo: true } as never)],
      ['createVolume vm', () => pool.createVolume({ vm: { name: 'k', dirPathPrefix: 'appvms', extra: 1 }, name: 'new' } as never)],
      ['adoptVolume', () => pool.adoptVolume({ vid: 'appvms/k/new', name: 'new', rww: true } as never)],
      ['stop', () => running.stop({ discrad: true } as never)],
      ['resize', () => v.resize(2 * SIZE, { allowShrinkk: true } as never)],
      ['importStream', () => v.importStream(Readable.from([Buffer.alloc(4096)]), 4096, { signl: undefined } as never)],
      ['setConfig', () => v.setConfig({ revisionsToKeep: 1, ro: true } as never)],
      ['copyFile', () => copyFile(src, join(pool.dirPath, 'appvms/k/copy.img'), { reflnk: 'always' } as never)],
    ]
    for (const [what, call] of calls) {
      const err = await refusedUnchanged(t, pool.dirPath, 'ERR_INVALID_ARG_VALUE', call, what)
      t.regex(err.message, /unknown option key/, what)
    }
    t.true(await running.isDirty(), 'stop({ discrad }) did not commit')
  })
}
