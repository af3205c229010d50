// pool.removeVolumes (docs/design.md §7) and dependents (§3) on one filesystem
// of the matrix: many volumes removed in one batch, every refusal (running
// without force, dependents without recursive, unknown vid) and every abort
// before the commit point changing nothing, and recovery finishing a remove
// batch whose process died past its commit point.
import type { TestFn } from 'ava'
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ReflinkPool, type ReflinkVolume } from '../../ts/index'
import { FS_MATRIX, fsSuite, type FsKind } from './scratch-fs'
import { hashFile, MiB, snapshotTree, writeAt } from './pool-fixture'

const SIZE = 4 * MiB

export function poolRemove(avaTest: TestFn, kind: FsKind): void {
  const { test, fs } = fsSuite(avaTest, kind)
  const expected = FS_MATRIX.find((m) => m.kind === kind)!
  let seq = 0
  const open = () => ReflinkPool.open({ dirPath: join(fs().dir, `remove-${seq++}`), setupCheck: expected.reflink })

  async function template(pool: ReflinkPool): Promise<ReflinkVolume> {
    const tpl = await pool.createVolume({ vid: 'vm-templates/t/root', name: 'root', size: SIZE, saveOnStop: true })
    writeAt(await tpl.start(), 0, 'template data')
    await tpl.stop()
    return tpl
  }
  const vids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `appvms/${prefix}-${i}/root`)
  const listed = async (pool: ReflinkPool) => (await pool.listVolumes()).map((v) => v.vid).sort()
  const noIntent = (pool: ReflinkPool) => readdirSync(join(pool.dirPath, '.reflink-pool/sessions')).filter((n) => !n.endsWith('.session'))

  test(`${kind}: removeVolumes removes many volumes whole (${expected.copyMethod} clones) and touches nothing else`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const want = hashFile(join(pool.dirPath, 'vm-templates/t/root.img'))
    const { volumes } = await pool.cloneVolumes(tpl, vids('c', 40))
    // One with revisions and a precache-less commit, one with a second volume in its VM directory.
    const v0 = volumes[0]
    writeAt(await v0.start(), 0, 'a commit')
    await v0.stop()
    t.is(Object.keys(await v0.revisions()).length, 1)
    await pool.createVolume({ vid: 'appvms/c-1/private', name: 'private', size: SIZE, saveOnStop: true })
    const keep = volumes[39]
    const seen: number[] = []
    const r = await pool.removeVolumes(volumes.slice(0, 39).map((v) => v.vid), { onProgress: (d, n) => seen.push(d / n) })
    t.is(r.removed.length, 39)
    t.is(seen.at(-1), 1)
    t.true('barrier' in r.phases && 'intent' in r.phases, JSON.stringify(r.phases))
    t.deepEqual(await listed(pool), ['appvms/c-1/private', keep.vid, 'vm-templates/t/root'])
    t.false(existsSync(join(pool.dirPath, 'appvms/c-0')), 'the VM directory went with its last volume, revisions included')
    t.deepEqual(readdirSync(join(pool.dirPath, 'appvms/c-1')).filter((n) => n.startsWith('root')), [], 'c-1/root is gone')
    t.true(existsSync(join(pool.dirPath, 'appvms/c-1/private.img')), 'another volume of the VM keeps the directory')
    t.is(hashFile(join(pool.dirPath, 'vm-templates/t/root.img')), want, 'the template is untouched')
    t.is(hashFile(join(pool.dirPath, `${keep.vid}.img`)), want)
    t.deepEqual(noIntent(pool), [], 'no intent left')
    t.deepEqual(readdirSync(join(pool.dirPath, '.reflink-pool/volumes')).filter((n) => n.includes('c-0')), [])
    // A reopen sees the same, and a clone of a removed vid works again.
    await pool.close()
    const again = await ReflinkPool.open({ dirPath: pool.dirPath })
    t.deepEqual(again.recovery.removed, [])
    t.is((await again.listVolumes()).length, 3)
    await again.cloneVolumes('vm-templates/t/root', ['appvms/c-0/root'])
    await again.close()
  })

  test(`${kind}: removeVolumes finds every image of a volume under its lock (temps, kept bases, revisions) and its side files, and nothing else`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const { volumes } = await pool.cloneVolumes(tpl, vids('f', 2))
    const dir = join(pool.dirPath, 'appvms/f-0')
    const ours = ['root.img~tmp1', 'root-dirty.img~x', 'root.img.base@0123456789abcdef0123456789abcdef', 'root.img.partial@0123456789abcdef0123456789abcdef', 'root.img.7@2026-12-06T16:46:28Z', 'root.img.99999999999999999@2026-12-06T16:46:28Z~t']
    // Not images of appvms/f-0/root: another base, a revision 0, a revision out of range (kept: not ours), a bare `~`.
    const foreign = ['rooty.img', 'root.img.0@2026-12-06T16:46:28Z', 'root.img.99999999999999999@2026-12-06T16:46:28Z', 'root.img~', 'notes.txt']
    for (const n of [...ours, ...foreign]) writeFileSync(join(dir, n), 'x')
    const states = join(pool.dirPath, '.reflink-pool/states')
    mkdirSync(states, { recursive: true })
    const sideName = (vid: string) => vid.replaceAll('/', '%2F') + '.json'
    writeFileSync(join(states, sideName(volumes[0].vid)), '{}')
    writeFileSync(join(states, sideName(volumes[1].vid)), '{}')
    // A second volume of the same VM directory in the same batch: its directory is listed again.
    const priv = await pool.createVolume({ vid: 'appvms/f-0/private', name: 'private', size: SIZE, saveOnStop: true })
    writeAt(await priv.start(), 0, 'private data')
    await priv.stop()
    const r = await pool.removeVolumes([volumes[0].vid, priv.vid])
    t.deepEqual(r.removed, [priv.vid, volumes[0].vid])
    t.deepEqual(readdirSync(dir).sort(), [...foreign].sort(), 'every image of both volumes went (revisions included); the rest stays')
    t.deepEqual(readdirSync(states), [sideName(volumes[1].vid)], 'its side file went, the other volume keeps its own')
    t.true(existsSync(join(pool.dirPath, `${volumes[1].vid}.img`)))
    await pool.close()
  })

  test(`${kind}: a running volume refuses the whole batch without force (nothing changes); force removes it`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const { volumes } = await pool.cloneVolumes(tpl, vids('r', 5))
    await volumes[3].start()
    const before = snapshotTree(pool.dirPath)
    const err = await t.throwsAsync(pool.removeVolumes(volumes), { code: 'ERR_VOLUME_DIRTY' })
    t.is((err as { vid?: string }).vid, volumes[3].vid)
    t.regex(err!.message, /force/)
    t.deepEqual(snapshotTree(pool.dirPath), before, 'nothing removed')
    await t.throwsAsync(pool.removeVolumes([volumes[3]]), { code: 'ERR_VOLUME_DIRTY' })
    await pool.removeVolumes(volumes, { force: true })
    t.deepEqual(await listed(pool), ['vm-templates/t/root'])
    await pool.close()
  })

  test(`${kind}: dependents: removing a source is refused naming them; recursive removes them too`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const snaps = await pool.cloneVolumes(tpl, vids('s', 3), { mode: 'snapshot' })
    const other = await pool.createVolume({ vid: 'appvms/o/root', name: 'root', size: SIZE, saveOnStop: true })
    t.deepEqual(await pool.dependents(tpl.vid), vids('s', 3))
    t.deepEqual(await pool.dependents(other.vid), [])
    const before = snapshotTree(pool.dirPath)
    // The bug of issue 20: removing a template used to break its snapshot volumes silently.
    const err = await t.throwsAsync(tpl.remove(), { code: 'ERR_HAS_DEPENDENTS' })
    t.deepEqual((err as { dependents?: string[] }).dependents, vids('s', 3))
    t.regex(err!.message, /appvms\/s-0\/root, appvms\/s-1\/root, appvms\/s-2\/root/)
    await t.throwsAsync(pool.removeVolumes([other.vid, tpl.vid, snaps.volumes[0].vid]), { code: 'ERR_HAS_DEPENDENTS', message: /s-1.*s-2/ })
    t.deepEqual(snapshotTree(pool.dirPath), before, 'nothing removed')
    // A started snapshot still works: the refusal protected it.
    t.is(hashFile(await snaps.volumes[1].start()), hashFile(join(pool.dirPath, 'vm-templates/t/root.img')))
    await snaps.volumes[1].stop()
    // With every dependent in the batch, no recursive is needed.
    const r = await pool.removeVolumes([tpl.vid, ...vids('s', 3)])
    t.is(r.removed.length, 4)
    t.deepEqual(await listed(pool), [other.vid])
    await pool.close()
  })

  test(`${kind}: recursive removes dependents transitively; running dependents still need force`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    await pool.cloneVolumes(tpl, vids('s', 2), { mode: 'snapshot' })
    // An origin-snapshot of the template (S & SoS) is itself a source.
    const os = await pool.createVolume({ vid: 'appvms/os/root', name: 'root', saveOnStop: true, snapOnStart: true, source: tpl.vid })
    await pool.createVolume({ vid: 'appvms/os2/root', name: 'root', snapOnStart: true, source: os.vid })
    const running = pool.getVolume('appvms/s-1/root')
    await running.start()
    const before = snapshotTree(pool.dirPath)
    await t.throwsAsync(pool.removeVolumes([tpl], { recursive: true }), { code: 'ERR_VOLUME_DIRTY' })
    t.deepEqual(snapshotTree(pool.dirPath), before)
    const r = await pool.removeVolumes([tpl], { recursive: true, force: true })
    t.deepEqual(r.removed, ['appvms/os/root', 'appvms/os2/root', 'appvms/s-0/root', 'appvms/s-1/root', 'vm-templates/t/root'])
    t.deepEqual(await listed(pool), [])
    t.deepEqual(readdirSync(join(pool.dirPath, 'appvms')), [])
    await pool.close()
  })

  test(`${kind}: bad arguments are refused before anything changes`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const before = snapshotTree(pool.dirPath)
    await t.throwsAsync(pool.removeVolumes([tpl.vid, 'appvms/nope/root']), { code: 'ERR_UNKNOWN_VOLUME', message: /appvms\/nope\/root/ })
    await t.throwsAsync(pool.removeVolumes(['appvms/../x/root']), { code: 'ERR_INVALID_VID' })
    await t.throwsAsync(pool.removeVolumes([tpl.vid, tpl]), { code: 'ERR_INVALID_ARG_VALUE' })
    await t.throwsAsync(pool.removeVolumes([tpl], { forse: true } as never), { code: 'ERR_INVALID_ARG_VALUE', message: /forse/ })
    await t.throwsAsync(pool.removeVolumes([tpl], { force: 'yes' } as never), { code: 'ERR_INVALID_ARG_TYPE' })
    await t.throwsAsync(pool.removeVolumes(tpl as never), { code: 'ERR_INVALID_ARG_TYPE' })
    t.deepEqual(snapshotTree(pool.dirPath), before)
    t.deepEqual(await pool.removeVolumes([]), { removed: [], phases: {} })
    await pool.close()
  })

  test.serial(`${kind}: an abort at 0 ms, and at random moments, removes nothing or everything`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const { volumes } = await pool.cloneVolumes(tpl, vids('a', 300))
    const before = snapshotTree(pool.dirPath)
    const ac = new AbortController()
    const p = pool.removeVolumes(volumes, { signal: ac.signal })
    ac.abort()
    await t.throwsAsync(p, { name: 'AbortError', code: 'ABORT_ERR' })
    t.deepEqual(snapshotTree(pool.dirPath), before, 'aborted at once: nothing removed')
    // How long a whole batch takes here, so that the random aborts land before, inside and after it.
    const t0 = performance.now()
    await pool.removeVolumes(volumes.slice(0, 100))
    const span = performance.now() - t0
    const outcomes = { none: 0, all: 0 }
    for (let round = 0; round < 8; round++) {
      const batch = (await pool.listVolumes()).filter((v) => v.vid !== tpl.vid)
      if (batch.length === 0) await pool.cloneVolumes(tpl, vids(`a${round}`, 300))
      const list = (await pool.listVolumes()).filter((v) => v.vid !== tpl.vid)
      const c = new AbortController()
      setTimeout(() => c.abort(), Math.random() * span * 4)
      const done = await pool.removeVolumes(list, { signal: c.signal }).then(() => true, (e: { code?: string }) => {
        if (e.code !== 'ABORT_ERR') throw e
        return false
      })
      const left = (await pool.listVolumes()).length - 1
      if (done) {
        outcomes.all++
        t.is(left, 0)
      } else {
        outcomes.none++
        t.is(left, list.length, 'an aborted batch removed nothing')
        for (const v of list) t.true(existsSync(join(pool.dirPath, `${v.vid}.img`)))
      }
      t.deepEqual(noIntent(pool), [])
    }
    t.log(`random aborts within ${Math.round(span * 4)} ms: ${JSON.stringify(outcomes)}`)
    await pool.close()
  })

  test(`${kind}: a remove batch that died past its commit point is finished at open; other volumes stay`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const { volumes } = await pool.cloneVolumes(tpl, vids('d', 3))
    const dir = pool.dirPath
    await pool.close()
    // As a batch killed after its intent and one record unlink: d-0 half removed, d-1 whole, d-2 outside the batch.
    rmSync(join(dir, '.reflink-pool/volumes', encodeURIComponent(volumes[0].vid) + '.json'))
    writeFileSync(join(dir, '.reflink-pool/sessions/1-dead.remove'), `boot 999999 1\n${volumes[0].vid}\n${volumes[1].vid}\n`)
    mkdirSync(join(dir, 'appvms/d-1'), { recursive: true })
    const again = await ReflinkPool.open({ dirPath: dir, setupCheck: expected.reflink })
    t.deepEqual(await listed(again), [volumes[2].vid, tpl.vid])
    t.false(existsSync(join(dir, 'appvms/d-0')))
    t.false(existsSync(join(dir, 'appvms/d-1')))
    t.true(existsSync(join(dir, 'appvms/d-2/root.img')))
    t.false(existsSync(join(dir, '.reflink-pool/sessions/1-dead.remove')))
    t.true(again.recovery.removed.some((p) => p.endsWith('appvms/d-1/root.img')))
    await again.close()
  })
}
