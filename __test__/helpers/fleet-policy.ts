// Fleet policy suite (docs/design.md §3, §7), run on each filesystem of the
// matrix through the package root and the CLI: the one volume kind, library
// defaults and the kind option, clone names and --skip-existing, batch aborts
// at any moment (all or nothing), a closed pool, exit codes, adoption that
// never stops part-way, and vids quoted safely in every message.
import type { TestFn } from 'ava'
import { execFileSync } from 'node:child_process'
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ReflinkPool, type ReflinkVolume } from '../../ts/index'
import { FS_MATRIX, fsSuite, type FsKind } from './scratch-fs'
import { ls, MiB, readAt, snapshotTree, writeAt } from './pool-fixture'
import { runCli, runJson } from './cli-run'

const SIZE = 4 * MiB

export function fleetPolicy(avaTest: TestFn, kind: FsKind): void {
  const opened: ReflinkPool[] = []
  avaTest.after(async () => {
    for (const p of opened) await p.close()
  })
  const { test, fs } = fsSuite(avaTest, kind)
  const expected = FS_MATRIX.find((m) => m.kind === kind)!
  let seq = 0
  const poolDir = () => join(fs().dir, `fleet-${seq++}`)
  const open = async (dirPath = poolDir()) => {
    const pool = await ReflinkPool.open({ dirPath, setupCheck: expected.reflink })
    opened.push(pool)
    return pool
  }
  /** A committed template with data at 0. */
  async function template(pool: ReflinkPool, vid = 'vm-templates/t/root'): Promise<ReflinkVolume> {
    const tpl = await pool.createVolume({ vid, size: SIZE, saveOnStop: true })
    writeAt(await tpl.start(), 0, 'template data')
    await tpl.stop()
    return tpl
  }

  test(`${kind}: every volume has one kind, the same in the library, the batch calls and the CLI`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const made = {
      origin: await pool.createVolume({ vid: 'appvms/o/root', size: SIZE, saveOnStop: true }),
      snapshot: await pool.createVolume({ vid: 'appvms/s/root', snapOnStart: true, source: tpl.vid }),
      volatile: await pool.createVolume({ vid: 'appvms/v/volatile', size: SIZE, saveOnStop: false }),
      'origin-snapshot': await pool.createVolume({ vid: 'appvms/os/root', saveOnStop: true, snapOnStart: true, source: tpl.vid }),
    }
    for (const [k, v] of Object.entries(made)) t.is(v.kind as string, k, `${v.vid} is a ${k}`)
    t.is(tpl.kind, 'origin')
    const { json } = await runJson(['--pool', pool.dirPath, 'volume', 'list'])
    t.deepEqual(
      Object.fromEntries((json as Array<{ vid: string; kind: string }>).map((r) => [r.vid, r.kind])),
      Object.fromEntries([tpl, ...Object.values(made)].map((v) => [v.vid, v.kind])),
    )
    // An origin with snapshots disabled is still an origin; startVolumes starts it as start() does (a rename).
    const sd = await pool.createVolume({ vid: 'appvms/sd/root', size: SIZE, saveOnStop: true, revisionsToKeep: -1 })
    t.is(sd.kind, 'origin')
    const paths = await pool.startVolumes([sd, made.snapshot, made['origin-snapshot'], made.volatile, made.origin])
    t.is(paths.length, 5)
    for (const v of [sd, made.snapshot, made['origin-snapshot'], made.volatile, made.origin]) t.true(await v.isRunning(), v.vid)
    await pool.stopVolumes([sd, made.snapshot, made['origin-snapshot'], made.volatile, made.origin])
    for (const v of [sd, made.snapshot, made['origin-snapshot'], made.volatile, made.origin]) t.false(await v.isRunning(), v.vid)
  })

  test(`${kind}: createVolume with no kind makes an origin, as the CLI does; kind beside the flags; name from the vid`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const plain = await pool.createVolume({ vid: 'appvms/plain/private', size: SIZE })
    t.is(plain.kind, 'origin')
    t.is(plain.name, 'private', 'the name comes from the vid')
    writeAt(await plain.start(), 0, 'kept')
    await plain.stop()
    t.is(readAt(await plain.start(), 0, 4), 'kept', 'its data is kept at stop')
    await plain.stop()
    const cli = await runJson(['--pool', pool.dirPath, 'volume', 'create', 'appvms/cli/private', '--size', '4M'])
    t.is(cli.result.status, 0, cli.result.stderr)
    t.is(cli.json.kind, plain.kind, 'the CLI and the library agree on the default')
    // kind beside the Qubes flags: agreeing flags are fine, a contradiction is refused and changes nothing.
    t.is((await pool.createVolume({ vid: 'appvms/k/volatile', kind: 'volatile', size: SIZE })).kind, 'volatile')
    t.is((await pool.createVolume({ vid: 'appvms/k/root', kind: 'snapshot', snapOnStart: true, source: tpl.vid })).kind, 'snapshot')
    t.is((await pool.createVolume({ vid: 'appvms/q/root', snapOnStart: true, source: tpl.vid })).kind, 'snapshot', 'Qubes flags alone: a missing one is false')
    t.is((await pool.createVolume({ vid: 'appvms/q/volatile', saveOnStop: false })).kind, 'volatile')
    const before = snapshotTree(pool.dirPath)
    for (const bad of [
      { vid: 'appvms/x/a', kind: 'volatile', saveOnStop: true },
      { vid: 'appvms/x/b', kind: 'origin', snapOnStart: true, source: tpl.vid },
      { vid: 'appvms/x/c', kind: 'snapshot', saveOnStop: true, source: tpl.vid },
      { vid: 'appvms/x/d', kind: 'origin-snapshot', saveOnStop: false, source: tpl.vid },
      { vid: 'appvms/x/e', kind: 'clone' },
      { vid: 'appvms/x/f', kind: 'snapshot' },
      { vid: 'appvms/x/g', name: 'other' },
      { vid: 'appvms/mm/root', name: 'private' },
    ]) {
      await t.throwsAsync(pool.createVolume(bad as never), { code: 'ERR_INVALID_ARG_VALUE' }, JSON.stringify(bad))
      await t.throwsAsync(pool.createVolumes([bad as never]), { code: 'ERR_INVALID_ARG_VALUE' }, `createVolumes ${JSON.stringify(bad)}`)
    }
    t.deepEqual(snapshotTree(pool.dirPath), before, 'no refused create changed anything')
    t.is((await pool.createVolume({ vid: 'appvms/mm/root', name: 'root' })).name, 'root', 'the same name is fine')
    // vm + name still builds the vid.
    t.is((await pool.createVolume({ vm: { name: 'vmx', dirPathPrefix: 'appvms' }, name: 'data' })).vid, 'appvms/vmx/data')
    await t.throwsAsync(pool.createVolume({ vm: { name: 'vmy', dirPathPrefix: 'appvms' } } as never), { code: 'ERR_INVALID_ARG_TYPE' })
    // The batch calls share the rule.
    const batch = await pool.createVolumes([{ vid: 'appvms/b1/private', size: SIZE }, { vid: 'appvms/b2/volatile', kind: 'volatile' }])
    t.deepEqual(batch.volumes.map((v) => v.kind), ['origin', 'volatile'])
    const clones = await pool.cloneVolumes(tpl, ['appvms/c1/root'])
    t.is(clones.volumes[0].kind, 'origin')
    const snaps = await pool.cloneVolumes(tpl, ['appvms/c2/root'], { mode: 'snapshot' })
    t.is(snaps.volumes[0].kind, 'snapshot')
  })

  test(`${kind}: a malformed vid is always ERR_INVALID_VID, quoted with control characters escaped`, async (t) => {
    const pool = await open()
    for (const vid of ['appvms/x/root/', '/appvms/x/root', 'appvms//root', 'appvms/x\x1b[2J/root', 'appvms/x/\x1b]0;pwned\x07']) {
      const e = await t.throwsAsync(pool.createVolume({ vid, size: SIZE }), { code: 'ERR_INVALID_VID' }, vid)
      t.false([...e!.message].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f), `no raw control character in ${JSON.stringify(e!.message)}`)
      t.throws(() => pool.getVolume(vid), { code: 'ERR_INVALID_VID' })
      await t.throwsAsync(pool.adoptVolume({ vid }), { code: 'ERR_INVALID_VID' })
      await t.throwsAsync(pool.createVolumes([{ vid }]), { code: 'ERR_INVALID_VID' })
    }
    const cli = await runCli(['--pool', pool.dirPath, 'volume', 'create', 'appvms/x/root/', '--size', '1M'])
    t.regex(cli.stderr, /ERR_INVALID_VID/)
    const esc = await runCli(['--pool', pool.dirPath, 'volume', 'create', 'appvms/a\x1b[31mred/root', '--size', '1M'])
    t.regex(esc.stderr, /ERR_INVALID_VID/)
    t.false(esc.stderr.includes('\x1b'), `ESC never reaches the terminal: ${JSON.stringify(esc.stderr)}`)
    t.true(esc.stderr.includes('\\u001b'), 'it is shown escaped')
  })

  test(`${kind}: after close, every pool and volume call, sync or async, is ERR_POOL_CLOSED and changes nothing`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const other = await open()
    await pool.close()
    const before = snapshotTree(pool.dirPath)
    const vid = tpl.vid
    const asyncCalls: Record<string, () => Promise<unknown>> = {
      createVolume: () => pool.createVolume({ vid: 'appvms/n/root', size: SIZE }),
      adoptVolume: () => pool.adoptVolume({ vid }),
      adoptAll: () => pool.adoptAll(),
      cloneVolumes: () => pool.cloneVolumes(vid, ['appvms/c/root']),
      cloneVolumesOfVolume: () => pool.cloneVolumes(tpl, ['appvms/c/root']),
      createVolumes: () => pool.createVolumes([{ vid: 'appvms/n/root' }]),
      startVolumes: () => pool.startVolumes([vid]),
      stopVolumes: () => pool.stopVolumes([tpl]),
      loadVolume: () => pool.loadVolume(vid),
      listVolumes: () => pool.listVolumes(),
      usageDetails: () => pool.usageDetails(),
      size: () => pool.size(),
      usage: () => pool.usage(),
      'volume.create': () => tpl.create(),
      'volume.verify': () => tpl.verify(),
      'volume.start': () => tpl.start(),
      'volume.stop': () => tpl.stop(),
      'volume.strayRevisions': () => tpl.strayRevisions(),
      'volume.revert': () => tpl.revert(),
      'volume.resize': () => tpl.resize(SIZE * 2),
      'volume.export': () => tpl.export(),
      'volume.exportToFile': () => tpl.exportToFile(join(fs().dir, 'out.img')),
      'volume.importData': () => tpl.importData(SIZE),
      'volume.importDataEnd': () => tpl.importDataEnd(false),
      'volume.importFile': () => tpl.importFile('/dev/null'),
      'volume.importPipe': () => tpl.importPipe('/dev/null', 0),
      'volume.importVolume': () => tpl.importVolume(tpl),
      'volume.importStream': () => tpl.importStream((async function* () {})(), 0),
      'volume.receive': () => tpl.receive((async function* () {})()),
      'volume.isDirty': () => tpl.isDirty(),
      'volume.isRunning': () => tpl.isRunning(),
      'volume.isOutdated': () => tpl.isOutdated(),
      'volume.revisions': () => tpl.revisions(),
      'volume.size': () => tpl.size(),
      'volume.usage': () => tpl.usage(),
      'volume.setConfig': () => tpl.setConfig({ rw: false }),
      'volume.footprint': () => tpl.footprint(),
      'volume.remove': () => tpl.remove(),
    }
    for (const [name, call] of Object.entries(asyncCalls)) {
      let sync: unknown = null
      let p: Promise<unknown> | undefined
      try {
        p = call()
      } catch (e) {
        sync = e
      }
      t.is(sync, null, `${name} rejects, never throws`)
      if (p) await t.throwsAsync(p, { code: 'ERR_POOL_CLOSED' }, name)
    }
    const syncCalls: Record<string, () => unknown> = {
      getVolume: () => pool.getVolume(vid),
      includedIn: () => pool.includedIn([other]),
      'volume.exportStream': () => tpl.exportStream(),
      'volume.send': () => tpl.send(),
    }
    for (const [name, call] of Object.entries(syncCalls)) t.throws(call, { code: 'ERR_POOL_CLOSED' }, name)
    t.deepEqual(snapshotTree(pool.dirPath), before, 'nothing on disk changed')
    t.is(tpl.vid, vid, 'what the volume is stays readable')
    await pool.close()
  })

  // ---- aborts: from the call until its commit point, all or nothing ----------------------

  /** Run `call` with a signal aborted at `when` ('sync': right after the call returns its promise; else ms). */
  async function abortAt<T>(when: 'sync' | number, call: (signal: AbortSignal) => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
    const ac = new AbortController()
    const p = call(ac.signal)
    if (when === 'sync') ac.abort()
    else setTimeout(() => ac.abort(), when)
    return p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }))
  }
  /** Abort points: at 0 (sync and timer) and random ones over a run of `ms` (a little past its end too). */
  const abortPoints = (ms: number, n: number): Array<'sync' | number> => ['sync', 0, ...Array.from({ length: n }, () => Math.round(Math.random() * ms * 1.2 * 10) / 10)]

  test(`${kind}: cloneVolumes and createVolumes aborted at 0 ms or at a random point make nothing or the whole batch`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const N = 150
    let round = 0
    const targets = () => Array.from({ length: N }, (_, i) => `appvms/r${round}-${i}/root`)
    const t0 = performance.now()
    await pool.cloneVolumes(tpl, targets())
    const ms = performance.now() - t0
    const outcomes = { made: 0, none: 0 }
    for (const [what, run] of [
      ['cloneVolumes', (vids: string[], signal: AbortSignal) => pool.cloneVolumes(tpl, vids, { signal })],
      ['cloneVolumes snapshot', (vids: string[], signal: AbortSignal) => pool.cloneVolumes(tpl.vid, vids, { signal, mode: 'snapshot' })],
      ['createVolumes', (vids: string[], signal: AbortSignal) => pool.createVolumes(vids.map((vid) => ({ vid, size: SIZE })), { signal })],
    ] as const) {
      for (const when of abortPoints(ms, 5)) {
        round++
        const vids = targets()
        const r = await abortAt(when, (signal) => run(vids, signal))
        const listed = new Set((await pool.listVolumes()).map((v) => v.vid))
        const dirs = ls(join(pool.dirPath, 'appvms')).filter((d) => d.startsWith(`r${round}-`))
        const label = `${what} aborted at ${when}`
        if (when === 'sync') t.false(r.ok, `${label}: an abort right after the call returned always wins`)
        if (r.ok) {
          outcomes.made++
          t.true(vids.every((v) => listed.has(v)), `${label}: resolved, so every volume exists`)
          if (what !== 'cloneVolumes snapshot') t.is(dirs.length, N, label)
        } else {
          outcomes.none++
          t.is((r.error as { code?: string }).code, 'ABORT_ERR', label)
          t.deepEqual(vids.filter((v) => listed.has(v)), [], `${label}: rejected, so no volume exists`)
          t.deepEqual(dirs, [], `${label}: and no file or directory of one`)
        }
      }
    }
    t.log(`${kind}: ${JSON.stringify(outcomes)} over runs of ${ms.toFixed(0)} ms`)
    // A fresh open (recovery) sees the same volumes.
    const again = await open(pool.dirPath)
    t.deepEqual((await again.listVolumes()).map((v) => v.vid), (await pool.listVolumes()).map((v) => v.vid))
  })

  test(`${kind}: startVolumes and stopVolumes aborted at 0 ms or at a random point start (stop) nothing or every volume`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    writeAt(await tpl.start(), MiB, Buffer.alloc(MiB, 1)) // data each snapshot's start copies where nothing reflinks
    await tpl.stop()
    const snaps = (await pool.cloneVolumes(tpl, Array.from({ length: 30 }, (_, i) => `appvms/s${i}/root`), { mode: 'snapshot' })).volumes
    const origins = (await pool.cloneVolumes(tpl, Array.from({ length: 30 }, (_, i) => `appvms/t${i}/root`))).volumes
    const others = (await pool.createVolumes([
      ...Array.from({ length: 6 }, (_, i) => ({ vid: `appvms/v${i}/volatile`, kind: 'volatile' as const, size: SIZE })),
      ...Array.from({ length: 4 }, (_, i) => ({ vid: `appvms/sd${i}/private`, size: SIZE, revisionsToKeep: -1 })),
    ])).volumes
    const all = [...snaps, ...origins, ...others]
    const running = async () => (await Promise.all(all.map((v) => v.isRunning()))).filter(Boolean).length
    const ownImages = () => snaps.filter((v) => existsSync(join(pool.dirPath, `${v.vid}.img`))).map((v) => v.vid)
    // Aborted from its progress (the snapshots sort first, so some are linked by then):
    // nothing is left of the start. Progress is throttled: on a fast reflink the first
    // report may be the last, and the start then completes (all or nothing either way).
    const ac = new AbortController()
    const mid = await pool.startVolumes(all, { signal: ac.signal, onProgress: (done, total) => done < total && ac.abort() }).then(() => ({ ok: true }), () => ({ ok: false }))
    if (mid.ok) await pool.stopVolumes(all)
    else t.deepEqual([await running(), ownImages()], [0, []], 'an aborted start leaves no dirty image and no linked clean image')
    t.log(`${kind}: mid-batch abort ${mid.ok ? 'came too late (one progress report)' : 'landed'}`)
    let t0 = performance.now()
    await pool.startVolumes(all)
    const startMs = performance.now() - t0
    t0 = performance.now()
    await pool.stopVolumes(all)
    const stopMs = performance.now() - t0
    for (const when of abortPoints(startMs, 4)) {
      const r = await abortAt(when, (signal) => pool.startVolumes(all, { signal }))
      const n = await running()
      if (when === 'sync') t.false(r.ok, 'an abort right after startVolumes returned always wins')
      if (r.ok) t.is(n, all.length, `startVolumes aborted at ${when}: resolved, so all run`)
      else {
        t.is((r.error as { code?: string }).code, 'ABORT_ERR')
        t.is(n, 0, `startVolumes aborted at ${when}: rejected, so none runs`)
        t.deepEqual(ownImages(), [], 'and no snapshot keeps a linked clean image')
      }
      if (!r.ok) await pool.startVolumes(all)
      const s = await abortAt(when === 'sync' ? 'sync' : Math.round(Math.random() * stopMs * 1.2), (signal) => pool.stopVolumes(all, { signal }))
      const m = await running()
      if (when === 'sync') t.false(s.ok, 'an abort right after stopVolumes returned always wins')
      if (s.ok) t.is(m, 0, 'stopVolumes resolved: none runs')
      else {
        t.is((s.error as { code?: string }).code, 'ABORT_ERR')
        t.is(m, all.length, 'stopVolumes rejected: all still run')
        await pool.stopVolumes(all)
      }
    }
  })

  // ---- CLI: clone names, exit codes (the filesystem does not matter: XFS only) -------------
  const cliTest = kind === 'xfs' ? test : (..._args: unknown[]) => {}

  cliTest(`${kind}: CLI clone: {n} makes the same names whatever -n is, {n:3} pads; --skip-existing reports made and skipped`, async (t) => {
    const pool = await open()
    await template(pool)
    const cli = (...args: string[]) => runCli(['--pool', pool.dirPath, ...args])
    const first = await runJson(['--pool', pool.dirPath, 'clone', 'vm-templates/t/root', 'appvms/ci-{n}/root', '-n', '9'])
    t.is(first.result.status, 0, first.result.stderr)
    const again = await runJson(['--pool', pool.dirPath, 'clone', 'vm-templates/t/root', 'appvms/ci-{n}/root', '-n', '12', '--skip-existing'])
    t.is(again.result.status, 0, again.result.stderr)
    t.deepEqual(again.json.counts, { made: 3, skipped: 9 })
    t.deepEqual(again.json.made, ['appvms/ci-10/root', 'appvms/ci-11/root', 'appvms/ci-12/root'])
    const human = await cli('clone', 'vm-templates/t/root', 'appvms/ci-{n}/root', '-n', '13', '--skip-existing')
    t.is(human.status, 0, human.stderr)
    t.regex(human.stdout, /^cloned: +1 × /m)
    t.regex(human.stdout, /^skipped: +12 that existed already$/m)
    const vids = (await (await open(pool.dirPath)).listVolumes()).map((v) => v.vid).filter((v) => v.startsWith('appvms/ci-'))
    t.is(vids.length, 13, `13 volumes, not 9 + 12 + 13: ${vids.join(' ')}`)
    const padded = await runJson(['--pool', pool.dirPath, 'clone', 'vm-templates/t/root', 'appvms/w-{n:3}/root', '-n', '2'])
    t.deepEqual(padded.json.made, ['appvms/w-001/root', 'appvms/w-002/root'])
    // No advice that cannot help: {n} without -n is a usage error that names --count, not --skip-existing.
    const noCount = await cli('clone', 'vm-templates/t/root', 'appvms/z-{n}/root')
    t.is(noCount.status, 2, noCount.stderr)
    t.regex(noCount.stderr, /--count/)
    t.notRegex(noCount.stderr, /skip-existing/)
  })

  cliTest(`${kind}: CLI exit status: 2 for every usage error (option, size, vid, revision, pattern), 1 for a refusal or failure`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    // The volumes and their records (a CLI's open writes the records cache: not a change of the pool).
    const state = () => Object.fromEntries(Object.entries(snapshotTree(pool.dirPath)).filter(([k]) => !k.startsWith('.reflink-pool/') || k.startsWith('.reflink-pool/volumes/')))
    const before = state()
    const usage: string[][] = [
      ['volume', 'create', 'appvms/a/root', '--bogus'],
      ['volume', 'create', 'appvms/a/root', '--size', '10gb'],
      ['volume', 'create', 'appvms/a/root/', '--size', '1M'],
      ['volume', 'create', 'appvms/a/root', '--kind', 'snapshot', '--source', 'vm-templates/t/x/'],
      ['volume', 'info', 'appvms/a/root/'],
      ['volume', 'start', '../etc/passwd'],
      ['volume', 'revert', tpl.vid, 'abc'],
      ['volume', 'revert', tpl.vid, '0'],
      ['clone', tpl.vid, 'appvms/c-{m}/root', '-n', '2'],
      ['clone', tpl.vid, 'appvms/c-{n}/root'],
      ['clone', tpl.vid, 'appvms/c-{n}/root', '-n', '0'],
      ['clone', tpl.vid, 'appvms/ok/root', 'appvms/bad/root/'],
      ['volume', 'frobnicate'],
      ['\x1b[2Jboom'],
      ['volume', 'info', 'appvms/\x1b]0;pwned\x07/root'],
      ['clone', tpl.vid, 'appvms/\x1b[31m-{n}/root', '-n', '2'],
    ]
    for (const args of usage) {
      const r = await runCli(['--pool', pool.dirPath, ...args])
      t.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`)
      t.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`)
      t.false(r.stderr.includes('\x1b') || r.stderr.includes('\x07'), `no raw control character: ${JSON.stringify(r.stderr)}`)
    }
    t.deepEqual(state(), before, 'no usage error changed anything')
    await runCli(['--pool', pool.dirPath, 'clone', tpl.vid, 'appvms/e/root'])
    const failures: Array<[string[], string]> = [
      [['volume', 'info', 'appvms/nope/root'], 'ERR_UNKNOWN_VOLUME'],
      [['volume', 'revert', tpl.vid, '7'], 'ERR_REVISION_NOT_FOUND'],
      [['volume', 'create', tpl.vid], 'ERR_VOLUME_EXISTS'],
      [['clone', tpl.vid, 'appvms/e/root'], 'ERR_VOLUME_EXISTS'],
    ]
    for (const [args, code] of failures) {
      const r = await runCli(['--pool', pool.dirPath, ...args])
      t.is(r.status, 1, `${args.join(' ')}: ${r.stderr}`)
      t.regex(r.stderr, new RegExp(`\\(${code}\\)`))
    }
  })

  // ---- adoption never stops part-way ------------------------------------------------------

  /**
   * A directory with the upstream Qubes file-reflink names: good image sets between odd
   * entries that sort first and last (symlinks, FIFOs, a device, a directory named as an
   * image, a hardlinked clean image, a partial set, a VM name with ESC in it).
   */
  function oddQubesLayout(dir: string, outside: string, good = true): { good: string[]; odd: Record<string, RegExp> } {
    const file = (rel: string, text = rel) => {
      mkdirSync(join(dir, rel, '..'), { recursive: true })
      writeFileSync(join(dir, rel), Buffer.concat([Buffer.from(text), Buffer.alloc(64 * 1024)]), { mode: 0o600 })
    }
    const at = (rel: string) => {
      mkdirSync(join(dir, rel, '..'), { recursive: true })
      return join(dir, rel)
    }
    writeFileSync(outside, 'outside: never adopted, never changed')
    const odd: Record<string, RegExp> = {
      'appvms/0-sym/private': /private\.img is a symlink/,
      'appvms/0-dir/root': /root\.img is a directory/,
      'appvms/b-fifo/private': /private\.img is a FIFO/,
      'appvms/c-dev/private': /private\.img is a FIFO, socket or device/,
      'appvms/e-hard/root': /hardlinked/,
      'appvms/f-partial/private': /no clean image/,
      'appvms/x\x1b[31m/private': /not a valid volume id/,
      'appvms/zz-fifo/volatile': /FIFO/,
      'appvms/zz-sym/private': /symlink/,
      'appvms/zzz-link': /a symlink, not a VM directory/,
      'vm-templates/0-dir/root': /directory/,
    }
    symlinkSync(outside, at('appvms/0-sym/private.img'))
    mkdirSync(at('appvms/0-dir/root.img'))
    execFileSync('mkfifo', [at('appvms/b-fifo/private.img')])
    execFileSync('mknod', [at('appvms/c-dev/private.img'), 'c', '1', '3'])
    file('appvms/f-partial/private-dirty.img')
    file('appvms/x\x1b[31m/private.img')
    execFileSync('mkfifo', [at('appvms/zz-fifo/volatile.img')])
    symlinkSync(outside, at('appvms/zz-sym/private.img'))
    symlinkSync(join(outside, '..'), at('appvms/zzz-link'))
    mkdirSync(at('vm-templates/0-dir/root.img'))
    file('vm-templates/debian/root.img', 'template')
    file('vm-templates/debian/root-precache.img', 'template')
    linkSync(join(dir, 'vm-templates/debian/root.img'), at('appvms/e-hard/root.img'))
    if (!good) {
      rmSync(join(dir, 'vm-templates/debian'), { recursive: true })
      rmSync(join(dir, 'appvms/e-hard'), { recursive: true })
      delete odd['appvms/e-hard/root']
      return { good: [], odd }
    }
    for (const vm of ['a-good', 'g-good']) {
      file(`appvms/${vm}/private.img`)
      file(`appvms/${vm}/private.img.1@2024-03-01T10:00:00Z`)
      file(`appvms/${vm}/private-precache.img`, `appvms/${vm}/private.img`)
    }
    return { good: ['appvms/a-good/private', 'appvms/g-good/private', 'vm-templates/debian/root'], odd }
  }
  /** What adoption may not change: everything but the pool's metadata. */
  const images = (dir: string) => Object.fromEntries(Object.entries(snapshotTree(dir)).filter(([k]) => !k.startsWith('.reflink-pool')))

  test(`${kind}: adoptAll never stops part-way: odd entries sorted first and last are skipped with their reason, the rest adopted`, async (t) => {
    const dir = poolDir()
    const outside = join(fs().dir, `outside-${seq}`)
    const { good, odd } = oddQubesLayout(dir, outside)
    const before = images(dir)
    const pool = await open(dir)
    const report = await pool.adoptAll()
    t.deepEqual(report.adopted, good)
    t.deepEqual(report.skipped.map((s) => s.path.slice(dir.length + 1)).sort(), Object.keys(odd).sort())
    for (const s of report.skipped) {
      const rel = s.path.slice(dir.length + 1)
      t.regex(s.reason, odd[rel], `${rel}: ${s.reason}`)
    }
    t.deepEqual(images(dir), before, 'no image, link or special file changed')
    t.is(readFileSync(outside, 'utf8'), 'outside: never adopted, never changed')
    // The adopted volumes work; adopting again adopts nothing and skips the same.
    const v = pool.getVolume('appvms/g-good/private')
    t.is(v.kind, 'origin')
    t.is(readAt(await v.start(), 0, 6), 'appvms')
    await v.stop()
    const again = await pool.adoptAll()
    t.deepEqual(again.adopted, [])
    t.is(again.skipped.length, report.skipped.length)
  })

  test(`${kind}: CLI init --adopt prints what was adopted and skipped; exit 0 when anything was adopted, 1 when nothing was`, async (t) => {
    const setup = expected.reflink ? [] : ['--no-setup-check']
    const dir = poolDir()
    const { good, odd } = oddQubesLayout(dir, join(fs().dir, `outside-${seq}`))
    const r = await runCli(['--pool', dir, 'init', '--adopt', ...setup])
    t.is(r.status, 0, r.stderr)
    t.regex(r.stdout, new RegExp(`Adopted ${good.length} volumes:`))
    t.regex(r.stdout, new RegExp(`Skipped ${Object.keys(odd).length}:`))
    for (const vid of good) t.true(r.stdout.includes(`  ${vid}\n`), vid)
    t.false(r.stdout.includes('\x1b'), 'a name with ESC is printed escaped')
    t.true(r.stdout.includes('x\\u001b[31m'), r.stdout)
    const none = poolDir()
    const bad = oddQubesLayout(none, join(fs().dir, `outside-${seq}`), false)
    const j = await runJson(['--pool', none, 'init', '--adopt', ...setup])
    t.is(j.result.status, 1, j.result.stderr)
    t.regex(j.result.stderr, /nothing was adopted.*\(ERR_NOTHING_ADOPTED\)/)
    t.deepEqual(j.json.adoption.adopted, [])
    t.is(j.json.adoption.skipped.length, Object.keys(bad.odd).length)
  })

  test(`${kind}: exportToFile to a path ending in '/' is refused, never written as a file without the slash`, async (t) => {
    const pool = await open()
    const tpl = await template(pool)
    const dir = join(fs().dir, `no-such-dir-${seq}`)
    await t.throwsAsync(tpl.exportToFile(`${dir}/`), { code: 'ERR_INVALID_ARG_VALUE', message: /names a directory/ })
    t.false(existsSync(dir), 'nothing was written')
    const cli = await runCli(['--pool', pool.dirPath, 'volume', 'export', tpl.vid, `${dir}/`])
    t.is(cli.status, 1, cli.stderr)
    t.false(existsSync(dir))
  })
}
