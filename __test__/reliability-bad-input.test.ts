// Bad input: property-based tests of the public API with
// generated invalid vids, sizes, revisions, options and wrong volume kinds.
// Every call must reject with a typed error (a code from the error table) and
// leave the scratch filesystem byte-for-byte unchanged (manifest of paths,
// inodes, modes, sizes, checksums before and after). Then planted symlinks and
// hardlinks into and out of the pool; unknown option keys on every call, stream
// chunks that are not bytes (and typed arrays, which must count by their
// bytes), vids whose derived names exceed NAME_MAX, and planted records.
// Runs: RELIABILITY_PROP_RUNS (default 25
// per property; the full run uses more), seed RELIABILITY_SEED.
import test from 'ava'
import fc from 'fast-check'
import { linkSync, mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync, existsSync, renameSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { fsSuite } from './helpers/scratch-fs'
import { Prng } from './helpers/reliability-prng'
import { hashFile, manifest, diffManifest } from './helpers/reliability-files'
import { codeOf, loadApi, type Pool, type Volume } from './helpers/reliability-api'
import { scribble, cleanPath, dirtyPath } from './helpers/reliability-workload'
import {
  ARG_CODES, VID_CODES, SECRET, byteView, goodComponent, invalidRevisionsToKeep, invalidSize, invalidVid, longVid, mustRefuse, nonBoolean, nonByteChunk, plantedRecord, show,
  unknownKey, type BadInputFigures,
} from './helpers/reliability-badinput'
import { envCount, logFigures } from './helpers/reliability-report'

const RUNS = envCount('RELIABILITY_PROP_RUNS', 25)
const SEED = Number(process.env.RELIABILITY_SEED ?? 1234)
const KiB = 1024
// The fixture pool holds its directory open: close it before the unmount (ava runs `after` hooks before `after.always`).
test.after(async () => {
  await fixture?.pool.close()
})
const xfs = fsSuite(test, 'xfs', { sizeMiB: 320 })

interface Fixture {
  root: string
  dir: string
  outside: string
  secret: string
  pool: Pool
  vols: Record<'tpl' | 'priv' | 'snap' | 'volatile' | 'ro' | 'running', Volume>
}

let fixture: Fixture | undefined

async function makeFixture(root: string): Promise<Fixture> {
  const g = new Prng(SEED)
  const dir = join(root, 'pool')
  const outside = join(root, 'outside')
  mkdirSync(outside, { recursive: true })
  const secret = join(outside, 'secret.img')
  writeFileSync(secret, g.bytes(64 * KiB), { mode: 0o600 })
  const pool = await loadApi().ReflinkPool.open({ dirPath: dir, setupCheck: true, revisionsToKeep: 2 })
  const s = (vid: string, extra = {}) => pool.createVolume({ vid, name: vid.split('/').pop()!, size: 64 * KiB, saveOnStop: true, rw: true, ...extra })
  const tpl = await s('vm-templates/tpl/root')
  const priv = await s('appvms/vm1/private')
  for (const v of [tpl, priv, priv]) {
    await v.start()
    scribble(v.path, g, 4, false)
    await v.stop()
  }
  const snap = await pool.createVolume({ vid: 'appvms/vm1/root', name: 'root', snapOnStart: true, source: 'vm-templates/tpl/root', rw: true })
  const volatile = await pool.createVolume({ vid: 'appvms/vm1/volatile', name: 'volatile', kind: 'volatile', size: 64 * KiB, rw: true })
  const ro = await s('appvms/ro/private', { rw: false })
  const running = await s('appvms/run/private')
  await running.start()
  return { root, dir, outside, secret, pool, vols: { tpl, priv, snap, volatile, ro, running } }
}

/** The shared pool fixture, built by the first test that needs it (the native properties do not). */
const fx = async (): Promise<Fixture> => {
  fixture ??= await makeFixture(xfs.fs().dir)
  return fixture
}


/** Run a property with `RUNS` generated cases; every case appends its verdict to `figures`. */
async function property<T>(arb: fc.Arbitrary<T>, check: (v: T) => Promise<string | null>, figures: BadInputFigures, runs = RUNS): Promise<void> {
  await fc.assert(fc.asyncProperty(arb, async (v) => (await check(v)) === null), { numRuns: runs, seed: SEED, endOnFailure: true })
    .catch((e) => figures.violations.push(`property failed: ${String((e as Error).message).split('\n').slice(0, 6).join(' | ')}`))
}

function report(t: import('ava').ExecutionContext, suite: string, f: BadInputFigures) {
  logFigures(t, suite, { calls: f.calls, violations: f.violations.length })
  t.deepEqual([...new Set(f.violations)], [])
}

xfs.test.serial('invalid vids are refused with ERR_INVALID_VID and create nothing', async (t) => {
  const f: BadInputFigures = { calls: 0, violations: [] }
  const { root, pool } = await fx()
  await property(fc.tuple(invalidVid, fc.constantFrom('createVolume', 'getVolume', 'source')), async ([vid, call]) => {
    const what = `${call}(${show(vid)})`
    if (call === 'createVolume') return mustRefuse(root, what, VID_CODES, () => pool.createVolume({ vid: vid as string, name: 'x', size: 4096, saveOnStop: true }), f)
    if (call === 'getVolume') return mustRefuse(root, what, VID_CODES, async () => pool.getVolume(vid as string), f)
    return mustRefuse(root, what, [...VID_CODES, 'ERR_UNKNOWN_VOLUME'], () => pool.createVolume({ vid: 'appvms/new/root', name: 'root', snapOnStart: true, source: vid as string }), f)
  }, f)
  await property(fc.tuple(goodComponent, goodComponent), async ([a, b]) =>
    mustRefuse(root, `getVolume(unknown appvms/${a}/${b})`, ['ERR_UNKNOWN_VOLUME'], async () => pool.getVolume(`appvms/zz${a}/${b}`), f), f)
  report(t, 'bad input/vids', f)
})

xfs.test.serial('invalid sizes (negative, fractional, NaN, > 2^53, strings) are refused and change nothing', async (t) => {
  const f: BadInputFigures = { calls: 0, violations: [] }
  const { root, pool, vols } = await fx()
  const calls: Record<string, (size: unknown) => Promise<unknown>> = {
    createVolume: (size) => pool.createVolume({ vid: 'appvms/sz/private', name: 'private', size: size as number, saveOnStop: true }),
    'resize(stopped)': (size) => vols.priv.resize(size as number, { allowShrink: true }),
    'resize(running)': (size) => vols.running.resize(size as number, { allowShrink: true }),
    importData: (size) => vols.priv.importData(size as number),
    importStream: (size) => vols.priv.importStream(Readable.from([Buffer.alloc(4096)]), size as number),
  }
  await property(fc.tuple(invalidSize, fc.constantFrom(...Object.keys(calls))), async ([size, call]) =>
    mustRefuse(root, `${call}(${show(size)})`, ARG_CODES, () => calls[call](size), f), f)
  report(t, 'bad input/sizes', f)
})

xfs.test.serial('unknown or malformed revisions are refused with ERR_REVISION_NOT_FOUND (or an argument error)', async (t) => {
  const f: BadInputFigures = { calls: 0, violations: [] }
  const { root, vols } = await fx()
  const badRev = fc.oneof(
    fc.integer({ min: 3, max: 2 ** 31 }), fc.integer({ min: -(2 ** 31), max: 0 }),
    fc.constantFrom(1.5, NaN, Infinity, 2 ** 53, 2 ** 60, 'abc', '', '../1', ' 1', {}, [], true),
    fc.string().filter((s) => !/^\s*\d+\s*$/.test(s)),
  )
  await property(badRev, async (rev) =>
    mustRefuse(root, `revert(${show(rev)})`, ['ERR_REVISION_NOT_FOUND', ...ARG_CODES], () => vols.priv.revert(rev as number), f), f)
  report(t, 'bad input/revisions', f)
})

xfs.test.serial('invalid volume configurations and options are refused and change nothing', async (t) => {
  const f: BadInputFigures = { calls: 0, violations: [] }
  const { root, pool, vols } = await fx()
  const base = { vid: 'appvms/cfg/private', name: 'private', size: 4096 }
  const configs = fc.oneof(
    nonBoolean.map((v) => ({ ...base, rw: v })),
    nonBoolean.map((v) => ({ ...base, saveOnStop: v })),
    nonBoolean.map((v) => ({ ...base, snapOnStart: v, source: 'vm-templates/tpl/root' })),
    invalidRevisionsToKeep.map((v) => ({ ...base, saveOnStop: true, revisionsToKeep: v })),
    fc.constant({ ...base, snapOnStart: true }),
    fc.constant({ ...base, source: 'vm-templates/tpl/root' }),
    fc.constant({ ...base, snapOnStart: true, source: 'vm-templates/nope/root' }),
    fc.constant({ ...base, vid: 'appvms/vm1/private' }),
    fc.oneof(fc.integer(), fc.constant(null), fc.object()).map((v) => ({ ...base, name: v })),
    fc.constantFrom(null, undefined, 42, 'appvms/x/y', []),
  )
  await property(configs, async (cfg) =>
    mustRefuse(root, `createVolume(${show(cfg)})`, [...VID_CODES, 'ERR_UNKNOWN_VOLUME', 'ERR_VOLUME_EXISTS'], () => pool.createVolume(cfg as never), f), f)

  // One property per call, so a bug in one does not hide the others.
  const stopOpts = fc.oneof(nonBoolean.map((v) => ({ discard: v })), fc.constantFrom('discard', 1, true, []))
  // Keep the fixture running even if an earlier case wrongly stopped it (start of a running volume changes nothing).
  await property(stopOpts, async (o) => vols.running.start().then(() =>
    mustRefuse(root, `stop(${show(o)})`, ARG_CODES, () => vols.running.stop(o as never), f)), f)
  await property(nonBoolean.map((v) => ({ allowShrink: v })), async (o) =>
    mustRefuse(root, `resize(4096, ${show(o)})`, [...ARG_CODES, 'ERR_SHRINK_REFUSED'], () => vols.priv.resize(4096, o as never), f), f)
  await property(fc.constantFrom('x', 1, [], {}).map((v) => ({ signal: v })), async (o) =>
    mustRefuse(root, `importStream(${show(o)})`, ARG_CODES, () => vols.priv.importStream(Readable.from([Buffer.alloc(4096)]), 4096, o as never), f), f)

  const poolOpts = fc.oneof(
    fc.constantFrom(undefined, null, 42, 'dir'),
    fc.oneof(fc.integer(), fc.constant(''), fc.constant('a\0b'), fc.constant(null)).map((d) => ({ dirPath: d })),
    invalidRevisionsToKeep.map((r) => ({ dirPath: join(root, 'newpool'), revisionsToKeep: r })),
    nonBoolean.map((b) => ({ dirPath: join(root, 'newpool'), setupCheck: b })),
    fc.oneof(fc.integer(), fc.object()).map((n) => ({ dirPath: join(root, 'newpool'), name: n })),
  )
  await property(poolOpts, async (o) =>
    mustRefuse(root, `ReflinkPool.open(${show(o)})`, ARG_CODES, () => loadApi().ReflinkPool.open(o as never), f), f)
  report(t, 'bad input/configs+options', f)
})

xfs.test.serial('unknown option keys are refused with ERR_INVALID_ARG_VALUE on every call and change nothing', async (t) => {
  const f: BadInputFigures = { calls: 0, violations: [] }
  const { root, dir, pool, vols } = await fx()
  await vols.running.start()
  const api = loadApi()
  const calls: Record<string, (key: string) => Promise<unknown>> = {
    'ReflinkPool.open': (k) => api.ReflinkPool.open({ dirPath: dir, [k]: 1 } as never),
    createVolume: (k) => pool.createVolume({ vid: 'appvms/uk/private', name: 'private', size: 4096, saveOnStop: true, [k]: true } as never),
    'createVolume vm': (k) => pool.createVolume({ vm: { name: 'uk', dirPathPrefix: 'appvms', [k]: 'x' }, name: 'private' } as never),
    adoptVolume: (k) => pool.adoptVolume({ vid: 'appvms/uk/private', name: 'private', [k]: true } as never),
    stop: (k) => vols.running.stop({ [k]: true } as never),
    resize: (k) => vols.priv.resize(128 * KiB, { [k]: true } as never),
    importStream: (k) => vols.priv.importStream(Readable.from([Buffer.alloc(4096)]), 4096, { [k]: undefined } as never),
    setConfig: (k) => vols.priv.setConfig({ [k]: 1 } as never),
    copyFile: (k) => api.copyFile(cleanPath(dir, vols.priv.vid), join(root, 'uk-copy.img'), { [k]: 'always' } as never),
  }
  await property(fc.tuple(unknownKey, fc.constantFrom(...Object.keys(calls))), async ([key, call]) =>
    mustRefuse(root, `${call}({ ${show(key)} })`, ['ERR_INVALID_ARG_VALUE'], () => calls[call](key), f), f, RUNS * 2)
  t.true(await vols.running.isDirty(), 'no stop with an unknown key committed the running volume')
  report(t, 'bad input/unknown keys', f)
})

xfs.test.serial('importStream: chunks that are not bytes are ERR_INVALID_ARG_TYPE; typed arrays commit exactly their bytes', async (t) => {
  const f: BadInputFigures = { calls: 0, violations: [] }
  const { root, dir, vols } = await fx()
  await property(fc.tuple(nonByteChunk, fc.nat(3)), async ([chunk, before]) => {
    async function* gen() {
      for (let i = 0; i < before; i++) yield Buffer.alloc(1024, i + 1)
      yield chunk
    }
    return mustRefuse(root, `importStream(chunk ${show(chunk)} after ${before})`, ['ERR_INVALID_ARG_TYPE'], () => vols.priv.importStream(gen() as AsyncIterable<Uint8Array>, 64 * KiB), f)
  }, f)
  let commits = 0
  await property(fc.array(byteView, { minLength: 1, maxLength: 6 }), async (views) => {
    const bytes = Buffer.concat(views.map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength)))
    f.calls++
    try {
      await vols.tpl.importStream(Readable.from(views, { objectMode: true }), bytes.length)
      commits++
      const got = readFileSync(cleanPath(dir, vols.tpl.vid))
      if (!got.equals(bytes)) f.violations.push(`importStream(${views.map((v) => v.constructor.name).join(',')}): committed ${got.length} bytes, not the ${bytes.length} chunk bytes`)
    } catch (e) {
      f.violations.push(`importStream(${views.map((v) => v.constructor.name).join(',')}): ${codeOf(e)}`)
    }
    return null
  }, f)
  t.true(commits > 0)
  report(t, 'bad input/stream chunks', f)
})

xfs.test.serial('vids whose derived names exceed NAME_MAX are ERR_INVALID_VID before anything exists', async (t) => {
  const f: BadInputFigures = { calls: 0, violations: [] }
  const { root, pool } = await fx()
  await property(fc.tuple(longVid, fc.constantFrom('createVolume', 'adoptVolume', 'getVolume', 'source')), async ([vid, call]) => {
    const what = `${call}(${vid.slice(0, 40)}... ${vid.length} chars)`
    if (call === 'createVolume') return mustRefuse(root, what, ['ERR_INVALID_VID'], () => pool.createVolume({ vid, name: 'x', size: 4096, saveOnStop: true }), f)
    if (call === 'adoptVolume') return mustRefuse(root, what, ['ERR_INVALID_VID'], () => pool.adoptVolume({ vid, name: 'x' }), f)
    if (call === 'getVolume') return mustRefuse(root, what, ['ERR_INVALID_VID'], async () => pool.getVolume(vid), f)
    return mustRefuse(root, what, ['ERR_INVALID_VID'], () => pool.createVolume({ vid: 'appvms/new/root', name: 'root', snapOnStart: true, source: vid }), f)
  }, f)
  report(t, 'bad input/long names', f)
})

xfs.test.serial('planted records: the pool opens, the volume is listed broken and refused (ERR_VOLUME_BROKEN), no message shows the contents', async (t) => {
  const f: BadInputFigures = { calls: 0, violations: [] }
  const { root, dir, pool } = await fx()
  const api = loadApi()
  const volumesDir = join(dir, '.reflink-pool', 'volumes')
  const secretFile = join(root, 'outside', 'planted-secret')
  let n = 0
  await property(fc.tuple(plantedRecord, fc.boolean()), async ([text, viaSymlink]) => {
    const vid = `appvms/planted${n++}/private`
    const rec = join(volumesDir, `${vid.replaceAll('/', '%2F')}.json`)
    if (viaSymlink) {
      writeFileSync(secretFile, text)
      symlinkSync(secretFile, rec)
    } else {
      writeFileSync(rec, text)
    }
    f.calls++
    let failure: string | null = null
    const messages: string[] = []
    try {
      const other = await api.ReflinkPool.open({ dirPath: dir })
      try {
        const v = (await other.listVolumes()).find((x) => x.vid === vid)
        if (!v) failure = `${vid}: not listed`
        else if (v.broken === null) failure = `${vid}: not broken (${show(text)})`
        else {
          messages.push(v.broken)
          for (const call of [() => v.start(), () => v.size(), () => v.remove()]) {
            try {
              await call()
              failure = `${vid}: a call on a broken volume was accepted`
            } catch (e) {
              messages.push(String((e as Error).message))
              if (codeOf(e) !== 'ERR_VOLUME_BROKEN') failure = `${vid}: ${codeOf(e)}, expected ERR_VOLUME_BROKEN`
            }
          }
        }
      } finally {
        await other.close()
      }
    } catch (e) {
      failure = `open with a planted record failed: ${codeOf(e)}`
      messages.push(String((e as Error).message))
    }
    if (messages.some((m) => m.includes(SECRET))) failure = `${vid}: a message shows the record's contents`
    rmSync(rec)
    if (failure) f.violations.push(failure)
    return failure
  }, f)
  t.is((await pool.listVolumes()).filter((v) => v.broken !== null).length, 0, 'the fixture pool sees none left')
  report(t, 'bad input/planted records', f)
})

xfs.test.serial('operations on the wrong kind of volume are refused with their typed error and change nothing', async (t) => {
  const f: BadInputFigures = { calls: 0, violations: [] }
  const { root, vols } = await fx()
  await vols.running.start()
  const cases: Array<[string, string[], () => Promise<unknown>]> = [
    ['export(snapshot)', ['ERR_NOT_SAVE_ON_STOP'], () => vols.snap.export()],
    ['export(volatile)', ['ERR_NOT_SAVE_ON_STOP'], () => vols.volatile.export()],
    ['importData(snapshot)', ['ERR_NOT_SAVE_ON_STOP'], () => vols.snap.importData(4096)],
    ['importData(volatile)', ['ERR_NOT_SAVE_ON_STOP'], () => vols.volatile.importData(4096)],
    ['importStream(volatile)', ['ERR_NOT_SAVE_ON_STOP'], () => vols.volatile.importStream(Readable.from([Buffer.alloc(4096)]), 4096)],
    ['resize(read-only)', ['ERR_VOLUME_READ_ONLY'], () => vols.ro.resize(128 * KiB)],
    ['revert(running)', ['ERR_VOLUME_DIRTY'], () => vols.running.revert()],
    ['revert(no revisions)', ['ERR_REVISION_NOT_FOUND'], () => vols.ro.revert()],
    ['resize shrink without allowShrink', ['ERR_SHRINK_REFUSED'], () => vols.priv.resize(4096)],
    ['importVolume(not a volume)', [...ARG_CODES, 'ERR_UNKNOWN_VOLUME'], () => vols.priv.importVolume({ vid: '../../x' } as never)],
    ['importVolume(string)', [...ARG_CODES, 'ERR_UNKNOWN_VOLUME', 'ERR_INVALID_VID'], () => vols.priv.importVolume('/etc/passwd' as never)],
  ]
  for (const [what, codes, call] of cases) await mustRefuse(root, what, codes, call, f)
  report(t, 'bad input/wrong kinds', f)
})

xfs.test.serial('planted symlinks never make an operation read or write outside the pool', async (t) => {
  const { dir, outside, secret, pool, vols } = await fx()
  const secretHash = hashFile(secret)
  const outsideBefore = manifest(outside)
  const results: string[] = []
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn()
      results.push(`${what}: accepted`)
    } catch (e) {
      results.push(`${what}: ${codeOf(e)}`)
    }
  }
  // A VM directory that is a symlink to a directory outside the pool.
  symlinkSync(outside, join(dir, 'appvms', 'evil'))
  await attempt('createVolume in a symlinked VM dir', () => pool.createVolume({ vid: 'appvms/evil/private', name: 'private', size: 4096, saveOnStop: true }))
  t.deepEqual(diffManifest(outsideBefore, manifest(outside)), [], 'nothing created or changed outside the pool')
  unlinkSync(join(dir, 'appvms', 'evil'))

  // The clean image replaced by a symlink to an outside file: start must not clone it.
  const clean = cleanPath(dir, vols.priv.vid)
  renameSync(clean, clean + '.saved')
  symlinkSync(secret, clean)
  await attempt('start with a symlinked clean image', () => vols.priv.start())
  const leaked = [dirtyPath(dir, vols.priv.vid)].filter((p) => existsSync(p) && hashFile(p) === secretHash)
  t.deepEqual(leaked, [], 'the outside file was not cloned into the pool')
  await attempt('stop', () => vols.priv.stop({ discard: true }))
  rmSync(clean, { force: true })
  renameSync(clean + '.saved', clean)

  // The dirty image replaced by a symlink to an outside file: stop must not commit it, resize must not extend it.
  symlinkSync(secret, dirtyPath(dir, vols.priv.vid))
  await attempt('resize with a symlinked dirty image', () => vols.priv.resize(256 * KiB))
  await attempt('stop with a symlinked dirty image', () => vols.priv.stop())
  t.not(existsSync(clean) ? hashFile(clean) : '', secretHash, 'the outside file did not become the committed image')
  rmSync(dirtyPath(dir, vols.priv.vid), { force: true })
  t.is(hashFile(secret), secretHash, 'the outside file is unchanged')
  t.deepEqual(diffManifest(outsideBefore, manifest(outside)), [], 'nothing created or changed outside the pool')
  logFigures(t, 'bad input/symlinks', { cases: results.length, outcomes: results })
})

xfs.test.serial('hardlinks into and out of the pool: nothing outside is modified in place', async (t) => {
  const g = new Prng(SEED + 1)
  const { dir, outside, secret, vols } = await fx()
  const secretHash = hashFile(secret)
  // Out of the pool: an outside name for the committed image keeps the committed bytes through commit, resize and revert.
  const alias = join(outside, 'alias-of-clean.img')
  linkSync(cleanPath(dir, vols.tpl.vid), alias)
  const aliasHash = hashFile(alias)
  await vols.tpl.start()
  scribble(vols.tpl.path, g, 4, false)
  await vols.tpl.stop()
  await vols.tpl.resize(128 * KiB)
  await vols.tpl.revert()
  t.is(hashFile(alias), aliasHash, 'a committed image reachable from outside was never modified in place')
  unlinkSync(alias)
  // Into the pool: a planted precache hardlinked to an outside file; start then resize must not write into the outside file.
  const precache = join(dir, `${vols.priv.vid}-precache.img`)
  rmSync(precache, { force: true })
  linkSync(secret, precache)
  let outcome = 'accepted'
  try {
    await vols.priv.start()
    await vols.priv.resize(256 * KiB)
    await vols.priv.stop({ discard: true })
  } catch (e) {
    outcome = codeOf(e)
  }
  t.is(hashFile(secret), secretHash, `the outside file is unchanged (start+resize ${outcome})`)
  logFigures(t, 'bad input/hardlinks', { cases: 2, plantedPrecache: outcome })
})

xfs.test.serial('native primitives refuse invalid paths, sizes and options with typed errors and change nothing', async (t) => {
  const f: BadInputFigures = { calls: 0, violations: [] }
  const root = join(xfs.fs().dir, 'native')
  mkdirSync(root, { recursive: true })
  const src = join(root, 'src.img')
  writeFileSync(src, new Prng(SEED).bytes(16 * KiB))
  const api = loadApi() as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>
  const badPath = fc.oneof(fc.constantFrom('', 'a\0b', null, undefined, 42, {}, []), fc.integer())
  const calls = fc.oneof(
    badPath.map((p) => ['copyFile(src=' + show(p) + ')', () => api.copyFile(p, join(root, 'dst.img'))] as const),
    badPath.map((p) => ['copyFile(dst=' + show(p) + ')', () => api.copyFile(src, p)] as const),
    invalidSize.map((s) => ['copyFile(size=' + show(s) + ')', () => api.copyFile(src, join(root, 'dst.img'), { size: s })] as const),
    fc.oneof(fc.string().filter((s) => !['auto', 'always', 'never'].includes(s)), fc.constantFrom(true, 1, null)).map((r) =>
      ['copyFile(reflink=' + show(r) + ')', () => api.copyFile(src, join(root, 'dst.img'), { reflink: r })] as const),
    nonBoolean.map((b) => ['copyFile(copyMtime=' + show(b) + ')', () => api.copyFile(src, join(root, 'dst.img'), { copyMtime: b })] as const),
    invalidSize.map((s) => ['createSparseFile(size=' + show(s) + ')', () => api.createSparseFile(join(root, 'sparse.img'), s)] as const),
    invalidSize.map((s) => ['resizeFile(size=' + show(s) + ')', () => api.resizeFile(src, s)] as const),
    badPath.map((p) => ['createSparseFile(path=' + show(p) + ')', () => api.createSparseFile(p, 4096)] as const),
    badPath.map((p) => ['fileUsage(' + show(p) + ')', () => api.fileUsage(p)] as const),
    badPath.map((p) => ['isReflinkSupported(' + show(p) + ')', () => api.isReflinkSupported(p)] as const),
    badPath.map((p) => ['updateLoopDevSizes(' + show(p) + ')', () => api.updateLoopDevSizes(p)] as const),
  )
  await property(calls, async ([what, call]) => mustRefuse(root, what, ARG_CODES, call, f), f, RUNS * 2)
  // FIFO and device sources: refused before they are opened for I/O (a FIFO would block a thread).
  const fifo = join(root, 'pipe')
  execFileSync('mkfifo', [fifo])
  const special = fc.constantFrom(fifo, '/dev/zero', '/dev/null')
  const specialCalls = fc.oneof(
    special.map((p) => ['copyFile(src=' + p + ')', () => api.copyFile(p, join(root, 'dst.img'))] as const),
    special.map((p) => ['fileUsage(' + p + ')', () => api.fileUsage(p)] as const),
    special.map((p) => ['resizeFile(' + p + ')', () => api.resizeFile(p, 4096)] as const),
  )
  await property(specialCalls, async ([what, call]) => mustRefuse(root, what, ['ERR_NOT_REGULAR_FILE'], call, f), f)
  report(t, 'bad input/native primitives', f)
})
