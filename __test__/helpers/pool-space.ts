// Space suite, run on each filesystem of the matrix (docs/design.md §7, "Space
// guard" and "What removing gives back"): minFree persisted and changed; a real
// filesystem filled up with a filler file until clone, create, start and import
// refuse with ERR_LOW_SPACE and change nothing while stop and remove still run;
// and usageIfRemoved checked against statvfs before and after the removal.
// Serial: each test reads the free space of the one filesystem they share.
import type { ExecutionContext, TestFn } from 'ava'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { lstatSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { ReflinkPool, type ReflinkVolume } from '../../ts/index'
import { FS_MATRIX, fsSuite, type FsKind } from './scratch-fs'
import { MiB, writeAt } from './pool-fixture'
import { runCli } from './cli-run'
import { collect } from './send-suite'

type Ctx = ExecutionContext<unknown>

export function poolSpace(avaTest: TestFn, kind: FsKind): void {
  const opened: ReflinkPool[] = []
  avaTest.after.always(async () => {
    for (const p of opened) await p.close()
  })
  const { test, fs } = fsSuite(avaTest, kind)
  const expected = FS_MATRIX.find((m) => m.kind === kind)!
  let seq = 0
  const open = async (extra: { minFree?: number | `${number}%` } = {}) => {
    const pool = await ReflinkPool.open({ dirPath: join(fs().dir, `space-${seq++}`), setupCheck: expected.reflink, ...extra })
    opened.push(pool)
    return pool
  }
  /** An origin of 16 MiB with `mib` MiB of random (incompressible) data committed at `at`. */
  async function origin(pool: ReflinkPool, vid: string, mib: number, at = 0): Promise<ReflinkVolume> {
    const v = await pool.createVolume({ vid, name: vid.split('/').pop()!, size: 16 * MiB, saveOnStop: true })
    if (mib) await commitRandom(v, mib, at)
    return v
  }
  async function commitRandom(v: ReflinkVolume, mib: number, at: number): Promise<void> {
    writeAt(await v.start(), at * MiB, randomBytes(mib * MiB))
    await v.stop()
  }
  /** Bytes the pool's filesystem has in use, after writeback (btrfs frees at its transaction commit). */
  async function used(pool: ReflinkPool): Promise<number> {
    execFileSync('sync', ['-f', pool.dirPath])
    if (kind === 'btrfs') execFileSync('btrfs', ['filesystem', 'sync', pool.dirPath])
    return (await pool.usageDetails()).dataUsage!
  }
  /**
   * Every entry below `root` with its inode, size, link count, mode and ns mtime and ctime: any write,
   * truncate, link, rename or chmod changes one of them (cheaper than snapshotTree's content hashes,
   * which would read every image twice per refusal here).
   */
  function metaTree(root: string): Record<string, string> {
    const out: Record<string, string> = {}
    const walk = (dir: string) => {
      for (const name of readdirSync(dir).sort()) {
        const path = join(dir, name)
        const st = lstatSync(path, { bigint: true })
        out[path.slice(root.length)] = [st.ino, st.size, st.nlink, st.mode, st.mtimeNs, st.ctimeNs].join('/')
        if (st.isDirectory()) walk(path)
      }
    }
    walk(root)
    return out
  }
  async function refusedUnchanged(t: Ctx, pool: ReflinkPool, call: () => Promise<unknown>, what: string): Promise<void> {
    const before = metaTree(pool.dirPath)
    const err = await t.throwsAsync(call, { code: 'ERR_LOW_SPACE' }, what)
    const e = err as unknown as { free: number; floor: number; need: number }
    t.true(e.free - e.need < e.floor, `${what}: the figures say why (free ${e.free}, need ${e.need}, floor ${e.floor})`)
    t.regex(err!.message, /is free .* floor of /, `${what}: the message names the free space and the floor`)
    t.deepEqual(metaTree(pool.dirPath), before, `${what}: nothing on disk changed`)
  }

  test.serial(`${kind}: minFree is persisted like the other options, changed by setConfig and the CLI, and checked`, async (t) => {
    const pool = await open({ minFree: '10%' })
    t.is(pool.config.minFree, '10%')
    const dir = pool.dirPath
    await pool.close()
    const again = await ReflinkPool.open({ dirPath: dir })
    opened.push(again)
    t.is(again.minFree, '10%', 'kept across opens')
    t.deepEqual((await again.setConfig({ minFree: 5 * MiB })).minFree, 5 * MiB)
    for (const bad of [-1, 1.5, '10', '101%', 'x%', null]) {
      await t.throwsAsync(async () => again.setConfig({ minFree: bad as never }), { code: 'ERR_INVALID_ARG_VALUE' }, String(bad))
      await t.throwsAsync(() => ReflinkPool.open({ dirPath: dir, minFree: bad as never }), { code: 'ERR_INVALID_ARG_VALUE' }, String(bad))
    }
    t.is(again.minFree, 5 * MiB, 'a refused value changes nothing')
    await again.close()
    const set = await runCli(['--pool', dir, '--json', 'config', '--min-free', '2.5%'])
    t.is(set.status, 0, set.stderr)
    t.is(JSON.parse(set.stdout).config.minFree, '2.5%')
    const init = await runCli(['--pool', dir, '--json', 'init', '--min-free', '1G'])
    t.is(init.status, 0, init.stderr)
    t.is(JSON.parse(init.stdout).config.minFree, 1 << 30)
    t.is((await runCli(['--pool', dir, 'config', '--min-free', '200%'])).status, 2, 'a bad value is a usage error')
    const off = await runCli(['--pool', dir, '--json', 'config', '--min-free', '0'])
    t.is(JSON.parse(off.stdout).config.minFree, 0, '0 turns the guard off')
    t.false(readFileSync(join(dir, '.reflink-pool', 'pool.json'), 'utf8').includes('minFree'), 'pool.json without a floor is as older versions wrote it')
  })

  test.serial(`${kind}: a filling filesystem: clone, create, start and import refuse below minFree and change nothing; stop and remove run`, async (t) => {
    const pool = await open()
    const tpl = await origin(pool, 'vm-templates/tpl/root', 8)
    const running = await origin(pool, 'appvms/run/root', 1)
    await running.start()
    const spare = await origin(pool, 'appvms/spare/root', 1)
    const data = join(fs().dir, `import-${seq}.raw`)
    writeFileSync(data, randomBytes(6 * MiB))
    const full = await collect(tpl.send())
    // Fill the filesystem until 12 MiB above a floor of 20%.
    const { dataSize } = await pool.usageDetails()
    const floor = Math.ceil(dataSize! * 0.2)
    await pool.setConfig({ minFree: '20%' })
    const filler = join(fs().dir, `filler-${seq}`)
    let fillerSize = 0
    // Grow or cut one filler file (an unlinked file would be freed in the background on XFS: df could lag).
    const fill = async (aboveFloor: number) => {
      execFileSync('sync', ['-f', fs().dir])
      const avail = Number(execFileSync('df', ['--output=avail', '-B1', fs().dir], { encoding: 'utf8' }).split('\n')[1])
      const delta = Math.floor((avail - floor - aboveFloor) / 4096) * 4096
      if (delta > 0) execFileSync('fallocate', ['-o', String(fillerSize), '-l', String(delta), filler])
      else truncateSync(filler, fillerSize + delta)
      fillerSize += delta
      execFileSync('sync', ['-f', fs().dir])
    }
    try {
      await fill(12 * MiB)
      // One check per batch, for the whole batch: 200 clones' metadata allowance (12.5 MiB) does not fit in 12 MiB, one clone does.
      const many = Array.from({ length: 200 }, (_, i) => `appvms/m${i}/root`)
      await refusedUnchanged(t, pool, () => pool.cloneVolumes(tpl, many), 'a batch that fits only volume by volume')
      // 12 MiB of room: metadata operations pass; an import of 6 MiB + a copy of 8 MiB of data (ext4) do not fit twice.
      const made = await pool.cloneVolumes(tpl, ['appvms/c1/root'])
      t.deepEqual(made.methods, expected.reflink ? { reflink: 1 } : { [expected.copyMethod]: 1 }, 'the copy strategy that ran')
      if (!expected.reflink) {
        // Without reflinks a clone copies the template's 8 MiB: a second one leaves less than the floor.
        await fill(6 * MiB)
        await refusedUnchanged(t, pool, () => pool.cloneVolumes(tpl, ['appvms/c2/root']), 'clone (a full copy on ext4)')
        await refusedUnchanged(t, pool, () => tpl.start(), 'start of the 8 MiB template (a full copy on ext4)')
      }
      await fill(4 * MiB)
      await refusedUnchanged(t, pool, () => spare.importFile(data), 'importFile of 6 MiB of data')
      await refusedUnchanged(t, pool, () => spare.importStream(Readable.from([Buffer.alloc(0)]), 6 * MiB), 'importStream of 6 MiB')
      // A full stream of the 16 MiB template may write all of it: refused into a volume and when it would create one.
      await refusedUnchanged(t, pool, () => spare.receive(Readable.from([full])), 'receive of a full stream')
      await refusedUnchanged(t, pool, () => pool.receiveVolume('appvms/received/root', Readable.from([full])), 'receiveVolume creating the volume')
      await t.notThrowsAsync(() => pool.createVolume({ vid: 'appvms/small/root', name: 'root', size: 16 * MiB, saveOnStop: true }), 'a sparse create fits')
      // Below the floor: every operation that allocates refuses, once per batch.
      await fill(-MiB)
      await refusedUnchanged(t, pool, () => pool.cloneVolumes(tpl, ['appvms/c3/root', 'appvms/c4/root']), 'cloneVolumes')
      await refusedUnchanged(t, pool, () => pool.cloneVolumes(tpl, ['appvms/s1/root'], { mode: 'snapshot' }), 'cloneVolumes snapshot')
      await refusedUnchanged(t, pool, () => pool.createVolume({ vid: 'appvms/new/root', name: 'root', size: MiB, saveOnStop: true }), 'createVolume')
      await refusedUnchanged(t, pool, () => pool.createVolumes([{ vid: 'appvms/n1/root', name: 'root', size: MiB }]), 'createVolumes')
      await refusedUnchanged(t, pool, () => spare.start(), 'start')
      await refusedUnchanged(t, pool, () => pool.startVolumes([spare.vid, 'appvms/small/root']), 'startVolumes')
      await refusedUnchanged(t, pool, () => spare.importFile(data), 'importFile')
      const cli = await runCli(['--pool', pool.dirPath, '--json', 'volume', 'start', spare.vid])
      t.is(cli.status, 1, 'the CLI refusal exits 1')
      const { error } = JSON.parse(cli.stdout) as { error: { code: string; free: number; need: number; floor: number } }
      t.is(error.code, 'ERR_LOW_SPACE', cli.stderr)
      t.true(error.free - error.need < error.floor && error.floor === floor, '--json carries the figures')
      // What frees space always runs.
      await running.stop()
      t.false(await running.isRunning(), 'stop committed below the floor')
      await pool.getVolume('appvms/c1/root').remove()
      t.false((await pool.listVolumes()).some((v) => v.vid === 'appvms/c1/root'), 'remove ran below the floor')
      await pool.setConfig({ minFree: 0 })
      await t.notThrowsAsync(() => spare.start(), 'minFree 0 turns the guard off')
      await spare.stop()
      await pool.close()
    } finally {
      rmSync(filler, { force: true })
      rmSync(data, { force: true })
    }
  })

  test.serial(`${kind}: usageIfRemoved counts the extents only the removed set maps, and matches statvfs after the removal`, async (t) => {
    const pool = await open()
    const tpl = await origin(pool, 'vm-templates/base/root', 8)
    await commitRandom(tpl, 1, 0) // its revision keeps the old first MiB
    await pool.cloneVolumes(tpl, ['appvms/c1/root', 'appvms/c2/root'])
    const [c1, c2] = ['appvms/c1/root', 'appvms/c2/root'].map((vid) => pool.getVolume(vid))
    await commitRandom(c1, 2, 10)
    await commitRandom(c2, 3, 10)
    const est = async (vids: string[]) => (await pool.usageIfRemoved(vids)).freed
    const tol = (bytes: number) => 512 * 1024 + bytes * 0.03
    if (expected.reflink) {
      // With reflinks, what each set holds alone is known exactly (metadata aside).
      const want: Array<[string[], number]> = [
        [[c1.vid], 2 * MiB],
        [[tpl.vid], 1 * MiB],
        [[c1.vid, c2.vid], 5 * MiB],
        [[tpl.vid, c1.vid, c2.vid], 14 * MiB],
      ]
      for (const [vids, bytes] of want) {
        const got = await est(vids)
        t.true(Math.abs(got - bytes) <= tol(bytes), `${vids.join(' + ')}: ${got} bytes, expected about ${bytes}`)
      }
    }
    // Planted entries are never followed or opened: a symlink named as a revision of c1 pointing at the
    // template's image, a FIFO named as an image of another VM (opening it would block).
    const plain = await est([c1.vid])
    const planted = [join(pool.dirPath, 'appvms/c1/root.img.99@2020-01-01T00:00:00Z'), join(pool.dirPath, 'appvms/c2/fifo.img')]
    symlinkSync(join(pool.dirPath, 'vm-templates/base/root.img'), planted[0])
    execFileSync('mkfifo', [planted[1]])
    t.is(await est([c1.vid]), plain, 'a planted symlink and FIFO change nothing')
    for (const p of planted) rmSync(p)
    const report = await pool.usageIfRemoved([c2.vid, c1.vid])
    t.deepEqual(report.vids, [c1.vid, c2.vid])
    t.true(report.files >= 4, 'clean and revision images of both')
    const cli = await runCli(['--pool', pool.dirPath, '--json', 'usage', '--if-removed', c1.vid, c2.vid])
    t.is(cli.status, 0, cli.stderr)
    t.is(JSON.parse(cli.stdout).freed, report.freed, 'the CLI reports the library figure')
    t.is((await runCli(['--pool', pool.dirPath, 'usage', '--if-removed', 'appvms/nope/root'])).status, 1, 'an unknown volume is refused')
    // Against reality: remove, then compare the filesystem's used bytes.
    for (const set of [[c1], [tpl, c2]]) {
      const estimate = await est(set.map((v) => v.vid))
      const before = await used(pool)
      for (const v of set) await v.remove()
      // Freeing is asynchronous (XFS inactivates unlinked inodes in the background, btrfs frees at
      // its transaction commit): wait up to 5 s for the figure to come within the tolerance.
      let freed = 0
      for (const until = Date.now() + 5000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
        freed = before - (await used(pool))
        if (Math.abs(freed - estimate) <= tol(estimate)) break
      }
      const what = set.map((v) => v.vid).join(' + ')
      t.log(`${kind}: removing ${what}: estimate ${estimate}, statvfs ${freed}`)
      t.true(Math.abs(freed - estimate) <= tol(estimate), `${what}: estimate ${estimate}, statvfs freed ${freed}`)
    }
    await pool.close()
  })
}
