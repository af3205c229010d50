// The pool across processes (on XFS): persistence, cross-process locking and
// crash recovery at open, with real child processes (tsx).
import test from 'ava'
import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ReflinkPool } from '../ts/index'
import { fsSuite } from './helpers/scratch-fs'
import { CHILD_SCRIPT, ls, MiB, readAt, runChild, writeAt } from './helpers/pool-fixture'

const { test: fsTest, fs } = fsSuite(test, 'xfs')
let seq = 0
const newDir = () => join(fs().dir, `pool-${seq++}`)

fsTest('a child process reopening the pool sees the same config, volumes, revisions and dirty state', async (t) => {
  const dir = newDir()
  const pool = await ReflinkPool.open({ dirPath: dir, name: 'shared', revisionsToKeep: 2, ephemeralVolatile: true })
  const tpl = await pool.createVolume({ vid: 'vm-templates/deb/root', name: 'root', size: 4 * MiB, saveOnStop: true, rw: false })
  await tpl.start()
  await tpl.stop()
  await pool.createVolume({ vid: 'appvms/a/root', name: 'root', size: 4 * MiB, snapOnStart: true, source: tpl.vid })
  const priv = await pool.createVolume({ vid: 'appvms/a/private', name: 'private', size: 2 * MiB, saveOnStop: true, revisionsToKeep: 0 })
  await pool.createVolume({ vid: 'appvms/a/volatile', name: 'volatile', kind: 'volatile', size: MiB })
  await priv.start()
  // A temp file of an operation this (live) process might be running: another process's open leaves it alone.
  const liveTemp = join(dir, 'appvms/a/private.img~inflight')
  writeFileSync(liveTemp, 'x')
  const mine = []
  for (const v of await pool.listVolumes()) {
    mine.push({ vid: v.vid, config: v.config, revisions: await v.revisions(), size: await v.size(), dirty: await v.isDirty() })
  }
  const theirs = JSON.parse(await runChild(CHILD_SCRIPT, ['list', dir]))
  t.deepEqual(theirs.config, pool.config)
  t.deepEqual(theirs.volumes, mine)
  t.is(theirs.volumes.length, 4)
  t.deepEqual(theirs.recovery, { fullScan: false, recovered: [], removed: [] }, 'nothing to recover while the owner is alive')
  t.true(existsSync(liveTemp))
  t.true(existsSync(priv.path), "another process's open does not touch a running volume")
  await pool.close()
})

fsTest('two processes taking one volume lock never overlap', async (t) => {
  const dir = newDir()
  const pool = await ReflinkPool.open({ dirPath: dir })
  t.teardown(() => pool.close())
  const log = join(dir, 'lock.log')
  const at = join(dir, 'barrier')
  await Promise.all([runChild(CHILD_SCRIPT, ['lockloop', dir, '15', log, at]), runChild(CHILD_SCRIPT, ['lockloop', dir, '15', log, at])])
  const lines = readFileSync(log, 'utf8').trim().split('\n')
  t.is(lines.length, 60)
  const pids = new Set<string>()
  let switches = 0
  for (let i = 0; i < lines.length; i += 2) {
    if (i > 0 && lines[i].split(' ')[1] !== lines[i - 2].split(' ')[1]) switches++
    const [enter, pid] = lines[i].split(' ')
    t.is(enter, 'enter')
    t.is(lines[i + 1], `exit ${pid}`, `critical sections interleaved at line ${i + 1}`)
    pids.add(pid)
  }
  t.is(pids.size, 2)
  t.true(switches >= 2, `the two processes really contended (${switches} hand-overs)`)
  t.deepEqual(ls(join(dir, '.reflink-pool', 'locks')), [], 'every lock released')
})

fsTest('two processes starting and stopping the same volume at once end consistent', async (t) => {
  const dir = newDir()
  const pool = await ReflinkPool.open({ dirPath: dir, revisionsToKeep: 3 })
  const v = await pool.createVolume({ vid: 'appvms/a/private', name: 'private', size: 4 * MiB, saveOnStop: true })
  const at = join(dir, 'barrier')
  await Promise.all([runChild(CHILD_SCRIPT, ['cycle', dir, v.vid, '12', 'A', at]), runChild(CHILD_SCRIPT, ['cycle', dir, v.vid, '12', 'B', at])])
  t.false(await v.isDirty())
  const files = ls(join(dir, 'appvms', 'a'))
  t.false(files.some((f) => f.includes('~')), 'no temp files')
  t.deepEqual(files.filter((f) => !f.includes('.img.')), ['private-precache.img', 'private.img'])
  const revs = Object.keys(await v.revisions()).map(Number)
  t.is(revs.length, 3)
  t.deepEqual(revs, [...revs].sort((a, b) => a - b))
  t.regex(readAt(join(dir, 'appvms/a/private.img'), 0, 4), /^[AB]-\d/)
  t.deepEqual(ls(join(dir, '.reflink-pool', 'locks')), [])
  // The volume still works.
  writeAt(await v.start(), 0, 'after')
  await v.stop()
  t.is(readAt(join(dir, 'appvms/a/private.img'), 0, 5), 'after')
  await pool.close()
})

fsTest('open recovers what a killed process left: temp files and the half-written import go, the dirty image stays and commits', async (t) => {
  const dir = newDir()
  const pool = await ReflinkPool.open({ dirPath: dir })
  const v = await pool.createVolume({ vid: 'appvms/a/root', name: 'root', size: 4 * MiB, saveOnStop: true })
  const w = await pool.createVolume({ vid: 'appvms/b/data', name: 'data', size: 4 * MiB, saveOnStop: true })
  const z = await pool.createVolume({ vid: 'appvms/c/z', name: 'z', size: MiB, saveOnStop: true })
  await pool.close()
  const lostLockTemp = join(dir, 'appvms/c/z-dirty.img~lostlock')
  const err = await t.throwsAsync(runChild(CHILD_SCRIPT, ['crash', dir, v.vid, w.vid, lostLockTemp]))
  t.is((err as { signal?: string }).signal, 'SIGKILL')
  t.true(ls(join(dir, 'appvms/a')).includes('root.img~deadbeef'))
  t.true(ls(join(dir, 'appvms/b')).includes('data-import.img'))
  t.is(ls(join(dir, '.reflink-pool', 'locks')).length, 2, 'the dead lock and import marker are still there')

  const reopened = await ReflinkPool.open({ dirPath: dir })
  t.true(reopened.recovery.fullScan, "the killed process's session makes open scan the pool")
  t.deepEqual(reopened.recovery.recovered.sort(), [v.vid, w.vid, z.vid].sort())
  t.deepEqual(ls(join(dir, 'appvms/c')), ['z-precache.img', 'z.img'], 'a temp whose lock was lost is found too')
  t.deepEqual(ls(join(dir, '.reflink-pool', 'sessions')).length, 1, 'only the live session is left')
  t.deepEqual(ls(join(dir, 'appvms/a')), ['root-dirty.img', 'root.img'])
  t.deepEqual(ls(join(dir, 'appvms/b')), ['data-precache.img', 'data.img'])
  t.deepEqual(ls(join(dir, '.reflink-pool', 'locks')), [])
  const rv = reopened.getVolume(v.vid)
  t.true(await rv.isDirty(), 'a volume that was running is reported dirty')
  await rv.stop()
  t.is(readAt(join(dir, 'appvms/a/root.img'), 0, 21), 'crashed-while-running')
  t.false(await reopened.getVolume(w.vid).isDirty())
  await reopened.close()
})

fsTest('open reads the records cache only while the record directory is unchanged, and rebuilds it otherwise', async (t) => {
  const dir = newDir()
  const pool = await ReflinkPool.open({ dirPath: dir })
  for (const n of ['a', 'b', 'c']) await pool.createVolume({ vid: `appvms/${n}/volatile`, name: 'volatile', kind: 'volatile', size: MiB })
  await pool.close()
  const volumesDir = join(dir, '.reflink-pool', 'volumes')
  const cacheFile = join(dir, '.reflink-pool', 'volumes.cache.json')
  // A directory changed just now is racy: no cache is trusted or written.
  await (await ReflinkPool.open({ dirPath: dir })).close()
  t.false(existsSync(cacheFile))
  const past = new Date(Date.now() - 60_000)
  utimesSync(volumesDir, past, past)
  await (await ReflinkPool.open({ dirPath: dir })).close()
  const cache = JSON.parse(readFileSync(cacheFile, 'utf8'))
  t.is(cache.records.length, 3)
  t.is(cache.mtimeNs, String(statSync(volumesDir, { bigint: true }).mtimeNs))
  // Prove the next open uses it: a marked cache entry shows up.
  cache.records[0].name = 'from-cache'
  writeFileSync(cacheFile, JSON.stringify(cache))
  const p3 = await ReflinkPool.open({ dirPath: dir })
  t.is(p3.getVolume('appvms/a/volatile').name, 'from-cache')
  // Any record change renames in the directory: the cache no longer matches and the records win.
  await p3.getVolume('appvms/b/volatile').resize(2 * MiB)
  await p3.close()
  const p4 = await ReflinkPool.open({ dirPath: dir })
  t.is(p4.getVolume('appvms/a/volatile').name, 'volatile')
  t.is(await p4.getVolume('appvms/b/volatile').size(), 2 * MiB)
  await p4.close()
  writeFileSync(cacheFile, '{ torn')
  utimesSync(volumesDir, past, past)
  const p5 = await ReflinkPool.open({ dirPath: dir })
  t.is((await p5.listVolumes()).length, 3, 'a torn cache is ignored')
  await p5.close()
})

// Serial: its 8000 record writes would slow the timing-sensitive tests above (racy-directory rule).
fsTest.serial('the records cache of a large pool (over 1 MiB) is used too', async (t) => {
  const dir = newDir()
  const pool = await ReflinkPool.open({ dirPath: dir })
  await pool.createVolume({ vid: 'vm-templates/t/root', name: 'root', size: MiB, saveOnStop: true })
  await pool.close()
  const volumesDir = join(dir, '.reflink-pool', 'volumes')
  // 8000 snapshot records written directly (as many creates would): about 1.2 MB of cache.
  for (let i = 0; i < 8000; i++) {
    const vid = `appvms/vm-${i}/root`
    writeFileSync(join(volumesDir, `appvms%2Fvm-${i}%2Froot.json`),
      JSON.stringify({ vid, name: 'root', rw: true, saveOnStop: false, snapOnStart: true, source: 'vm-templates/t/root', size: 0, revisionsToKeep: 1 }))
  }
  const past = new Date(Date.now() - 60_000)
  utimesSync(volumesDir, past, past)
  await (await ReflinkPool.open({ dirPath: dir })).close()
  const cacheFile = join(dir, '.reflink-pool', 'volumes.cache.json')
  t.true(statSync(cacheFile).size > 1 << 20)
  const cache = JSON.parse(readFileSync(cacheFile, 'utf8'))
  cache.records.find((r: { vid: string }) => r.vid === 'appvms/vm-7/root').name = 'from-cache'
  writeFileSync(cacheFile, JSON.stringify(cache))
  const again = await ReflinkPool.open({ dirPath: dir })
  t.is(again.getVolume('appvms/vm-7/root').name, 'from-cache', 'open read the cache, not the 8001 records')
  t.is((await again.listVolumes()).length, 8001)
  await again.close()
})
