// Concurrency runner: several processes (or many promises in one process)
// doing seeded random operations on shared volumes of one pool.
//
// Content changes go through the locked API only (importStream, importVolume,
// revert, resize, commit), never by writing a dirty image another process may
// be committing. Every imported image is self-describing: its first block
// names a tag, and the rest is generated from that tag, so any image found
// later (clean, revision, dirty, export) can be checked on its own: it must be
// all zeros (never imported) or a successfully imported tag's bytes, possibly
// cut short by a shrink and zero-extended by a grow. A torn, mixed or invented
// image fails that check. Errors other than the refusals the lifecycle defines
// (ERR_VOLUME_DIRTY, ERR_REVISION_NOT_FOUND, ERR_NOT_SAVE_ON_STOP) are races.
import { appendFileSync, existsSync, readFileSync } from 'node:fs'
import { Prng } from './reliability-prng'
import { poolImageFiles } from './reliability-files'
import { codeOf, type Pool, type PoolApi, type Volume, type VolumeConfig } from './reliability-api'
import { BLOCK, chunkedStream, cleanPath, dirtyPath } from './reliability-workload'

const KiB = 1024

export const CONC_VOLUMES: ReadonlyArray<VolumeConfig & { vid: string }> = [
  { vid: 'vm-templates/t0/root', name: 'root', size: 128 * KiB, saveOnStop: true, rw: true, revisionsToKeep: 1 },
  { vid: 'vm-templates/t1/root', name: 'root', size: 128 * KiB, saveOnStop: true, rw: true, revisionsToKeep: 2 },
  { vid: 'appvms/v0/private', name: 'private', size: 64 * KiB, saveOnStop: true, rw: true, revisionsToKeep: 0 },
  { vid: 'appvms/v1/private', name: 'private', size: 64 * KiB, saveOnStop: true, rw: true, revisionsToKeep: 1 },
  { vid: 'appvms/v2/private', name: 'private', size: 64 * KiB, saveOnStop: true, rw: true, revisionsToKeep: 3 },
  { vid: 'appvms/v3/private', name: 'private', size: 64 * KiB, saveOnStop: true, rw: true, revisionsToKeep: 2 },
  { vid: 'appvms/s0/root', name: 'root', snapOnStart: true, source: 'vm-templates/t0/root', rw: true },
  { vid: 'appvms/s1/root', name: 'root', snapOnStart: true, source: 'vm-templates/t1/root', rw: true },
]

/** Refusals the lifecycle defines (docs/design.md §3) for a call that races with another one. */
export const EXPECTED_REFUSALS = new Set(['ERR_VOLUME_DIRTY', 'ERR_REVISION_NOT_FOUND', 'ERR_NOT_SAVE_ON_STOP'])

const MAGIC = 'RPTAG1 '

/** The image a tag stands for: a header block naming it, then seeded data with zero blocks among it. */
export function taggedImage(tag: string, size: number): Buffer {
  const buf = Buffer.alloc(size)
  const g = new Prng([...tag].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0, 2166136261))
  g.bytes(size).copy(buf)
  for (let off = BLOCK; off < size; off += BLOCK) if (g.bool(0.3)) buf.fill(0, off, Math.min(size, off + BLOCK))
  buf.fill(0, 0, 256)
  buf.write(`${MAGIC}${JSON.stringify({ tag, size })}`, 0, 'latin1')
  return buf
}

/** The tag `path` holds, 'zero' for an all-zero image, or an error describing how it is broken. */
export function readTag(path: string): { tag: string } | { broken: string } {
  const data = readFileSync(path)
  const zeroFrom = (off: number) => data.subarray(off).every((b) => b === 0)
  const head = data.subarray(0, 256).toString('latin1')
  if (!head.startsWith(MAGIC)) return zeroFrom(0) ? { tag: 'zero' } : { broken: 'neither all zeros nor a tagged image' }
  let meta: { tag: string; size: number }
  try {
    meta = JSON.parse(head.slice(MAGIC.length, head.indexOf('\0')))
  } catch {
    return { broken: 'unreadable tag header' }
  }
  const want = taggedImage(meta.tag, meta.size)
  let k = 0
  const n = Math.min(want.length, data.length)
  while (k < n && data[k] === want[k]) k++
  if (k < n && !zeroFrom(k)) return { broken: `tag ${meta.tag}: byte ${k} differs and is not part of a zeroed tail` }
  if (k === n && !zeroFrom(n)) return { broken: `tag ${meta.tag}: non-zero data past its ${meta.size} bytes` }
  return { tag: meta.tag }
}

export interface ConcurrencyArgs {
  poolDir: string
  seed: number
  proc: number
  ops: number
  /** File (outside the pool) to which successful imports' tags are appended. */
  tagLog: string
}

export interface ConcurrencyResult {
  ops: number
  /** Operations tried, by kind. */
  kinds: Record<string, number>
  errors: Record<string, number>
  violations: string[]
}

/** One seeded random operation on `vid`. Throws only on an unexpected failure (a violation). */
export async function randomOp(pool: Pool, vid: string, g: Prng, tagOf: (n: number) => string, tagLog: string, counter: { n: number }, tried: (op: string) => void): Promise<string> {
  const cfg = CONC_VOLUMES.find((c) => c.vid === vid)!
  const vol: Volume = pool.getVolume(vid)
  const op = cfg.saveOnStop
    ? g.pick(['start', 'stop', 'stop', 'discard', 'revert', 'resize', 'importStream', 'importStream', 'importVolume', 'export', 'isDirty', 'revisions'] as const)
    : g.pick(['start', 'stop', 'isOutdated', 'verify'] as const)
  tried(op)
  switch (op) {
    case 'start': await vol.start(); break
    case 'stop': await vol.stop(); break
    case 'discard': await vol.stop({ discard: true }); break
    case 'revert': {
      const revs = Object.keys(await vol.revisions())
      await vol.revert(revs.length && g.bool(0.5) ? Number(g.pick(revs)) : undefined)
      break
    }
    case 'resize': await vol.resize(g.int(16, 160) * BLOCK, { allowShrink: true }); break
    case 'importStream': {
      const tag = tagOf(counter.n++)
      const data = taggedImage(tag, g.int(16, 160) * BLOCK)
      // Logged before the call: an import that fails after committing is still a known content (its failure is the violation).
      appendFileSync(tagLog, tag + '\n')
      await vol.importStream(chunkedStream(data, g), data.length)
      break
    }
    case 'importVolume': {
      const src = g.pick(CONC_VOLUMES.filter((c) => c.saveOnStop && c.vid !== vid))
      await vol.importVolume(pool.getVolume(src.vid))
      break
    }
    case 'export': {
      const p = await vol.export()
      try {
        const t = readTag(p)
        if ('broken' in t) throw Object.assign(new Error(`exported image of ${vid} is broken: ${t.broken}`), { code: 'VIOLATION' })
      } finally {
        await vol.exportEnd(p)
      }
      break
    }
    case 'isDirty': await vol.isDirty(); break
    case 'isOutdated': await vol.isOutdated(); break
    case 'verify': await vol.verify(); break
    case 'revisions': await vol.revisions(); break
  }
  return op
}

/** Run `ops` random operations, counting typed refusals and recording anything else as a violation. */
export async function runOps(pool: Pool, args: ConcurrencyArgs, pickVid: (g: Prng) => string, parallel: boolean): Promise<ConcurrencyResult> {
  const g = new Prng(args.seed)
  const counter = { n: 0 }
  const errors: Record<string, number> = {}
  const violations: string[] = []
  const kinds: Record<string, number> = {}
  const one = async (i: number, og: Prng) => {
    const vid = pickVid(og)
    let op = '?'
    try {
      op = await randomOp(pool, vid, og, (n) => `p${args.proc}-s${args.seed}-${i}-${n}`, args.tagLog, counter, (k) => { kinds[k] = (kinds[k] ?? 0) + 1 })
    } catch (e) {
      const code = codeOf(e)
      errors[code] = (errors[code] ?? 0) + 1
      if (!EXPECTED_REFUSALS.has(code)) violations.push(`proc ${args.proc} op ${i} on ${vid}: ${code}: ${(e as Error)?.message}`)
    }
    return op
  }
  if (parallel) await Promise.all(Array.from({ length: args.ops }, (_, i) => one(i, g.fork(i))))
  else for (let i = 0; i < args.ops; i++) await one(i, g.fork(i))
  return { ops: args.ops, kinds, errors, violations }
}

export async function openConcPool(api: PoolApi, poolDir: string): Promise<Pool> {
  return api.ReflinkPool.open({ dirPath: poolDir, revisionsToKeep: 1, setupCheck: false })
}

export async function setupConcPool(api: PoolApi, poolDir: string): Promise<void> {
  const pool = await openConcPool(api, poolDir)
  try {
    for (const cfg of CONC_VOLUMES) await pool.createVolume({ ...cfg })
  } finally {
    await pool.close()
  }
}

/** Child-process side: open the shared pool and run this process's share of operations. */
export async function runConcurrencyWorker(api: PoolApi, args: ConcurrencyArgs, ready: () => void): Promise<ConcurrencyResult> {
  const pool = await openConcPool(api, args.poolDir)
  ready()
  try {
    return await runOps(pool, args, (g) => g.pick(CONC_VOLUMES).vid, false)
  } finally {
    await pool.close()
  }
}

/** After the run: reopen, check every image against the tags that were imported, and that each volume still works. */
export async function checkConcPool(api: PoolApi, poolDir: string, tagLogs: string[]): Promise<string[]> {
  const tags = new Set<string>(['zero'])
  for (const f of tagLogs) if (existsSync(f)) for (const t of readFileSync(f, 'utf8').split('\n')) if (t) tags.add(t)
  const violations: string[] = []
  const pool = await openConcPool(api, poolDir)
  try {
    const listed = new Set((await pool.listVolumes()).map((v) => v.vid))
    for (const c of CONC_VOLUMES) if (!listed.has(c.vid)) violations.push(`${c.vid}: not listed`)
    const files = poolImageFiles(poolDir)
    for (const f of files) {
      if (f.kind === 'temp' || f.kind === 'import') violations.push(`leftover ${f.kind} file: ${f.rel}`)
      if (['clean', 'dirty', 'precache', 'revision'].includes(f.kind)) {
        const t = readTag(`${poolDir}/${f.rel}`)
        if ('broken' in t) violations.push(`${f.rel}: ${t.broken}`)
        else if (!tags.has(t.tag)) violations.push(`${f.rel}: holds tag ${t.tag} that no import produced`)
      }
    }
    for (const c of CONC_VOLUMES) {
      if (!c.saveOnStop) continue
      if (!existsSync(cleanPath(poolDir, c.vid))) violations.push(`${c.vid}: clean image missing`)
      const revs = files.filter((f) => f.kind === 'revision' && f.volume === c.vid).map((f) => f.rev!).sort((a, b) => a - b)
      if (revs.length > Math.max(0, c.revisionsToKeep ?? 1)) violations.push(`${c.vid}: ${revs.length} revisions, revisionsToKeep ${c.revisionsToKeep}`)
      const listedRevs = Object.keys(await pool.getVolume(c.vid).revisions()).map(Number).sort((a, b) => a - b)
      if (listedRevs.join() !== revs.join()) violations.push(`${c.vid}: revisions listed [${listedRevs}] but files are [${revs}]`)
    }
    for (const c of CONC_VOLUMES) {
      const vol = pool.getVolume(c.vid)
      try {
        await vol.start()
        if (!existsSync(dirtyPath(poolDir, c.vid))) violations.push(`${c.vid}: started but no dirty image`)
        await vol.stop()
      } catch (e) {
        violations.push(`${c.vid}: start/stop after the run failed: ${codeOf(e)}: ${(e as Error).message}`)
      }
    }
  } finally {
    await pool.close()
  }
  return violations
}
