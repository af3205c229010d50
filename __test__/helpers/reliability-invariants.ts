// The oracle run after every crash trial: reopen the pool and check SPEC §6's
// promises against the journal kept outside the filesystem.
//
// 1. `ReflinkPool.open` succeeds, lists every volume, and leaves no temp file
//    (`*~*`) or half-written import behind (SPEC §3.1), after a SIGKILL and
//    after a power cut alike; none appears after the next operation either.
// 2. Each save-on-stop volume's clean image holds exactly its committed
//    content, or, if an operation was in flight, one of the contents that
//    operation may leave (old or new).
// 3. Revisions have valid names, at most revisionsToKeep of them (one more
//    while a commit was interrupted), and each holds a content that volume's
//    clean image once had. The API lists the same ones. (Numbers need not be
//    consecutive: revert(rev) consumes the chosen revision and leaves a gap.)
// 4. A snapshot's own clean image, if present, is a past content of its source.
// 5. Every volume can be started and stopped again; a dirty survivor is
//    committed as it is; a fresh write is committed exactly.
// 6. A volume created by the workload is, after the crash, either listed with
//    its clean image, or not listed and without any file (an unfinished
//    create is undone by open).
import { existsSync } from 'node:fs'
import { Prng } from './reliability-prng'
import { hashFile, poolImageFiles, tempFiles } from './reliability-files'
import { replayJournal, type Replay } from './reliability-journal'
import { codeOf, type PoolApi } from './reliability-api'
import { CRASH_VOLUMES, NEW_VOLUME_PREFIX, POOL_REVISIONS, cleanPath, dirtyPath, openCrashPool, scribble } from './reliability-workload'

export interface CheckResult {
  violations: string[]
  replay: Replay
  /** Volumes found dirty after the crash (committed by the liveness step). */
  dirtyAfterCrash: number
  /** Temp and import files still there right after open (each one is also a violation). */
  leftoversAfterOpen: number
}

const short = (h: string | null | undefined) => (h ? h.slice(0, 12) : String(h))

/** Temp and import files anywhere in the pool (image folders and metadata). */
function leftovers(poolDir: string): string[] {
  const images = poolImageFiles(poolDir).filter((f) => f.kind === 'import').map((f) => `half-written import ${f.rel}`)
  return [...images, ...tempFiles(poolDir).map((p) => `temp file ${p}`)]
}

/** Checks 2-4 on the files only (no API calls): usable right after open and after the liveness step. */
function checkFiles(poolDir: string, replay: Replay, afterCrash: boolean, violations: string[]): void {
  const files = poolImageFiles(poolDir)
  for (const cfg of CRASH_VOLUMES) {
    const led = replay.volumes.get(cfg.vid)
    if (!cfg.saveOnStop || !led) continue
    const cp = cleanPath(poolDir, cfg.vid)
    const allowed = led.inflight ? led.inflight.accept : [led.committed]
    const got = existsSync(cp) ? hashFile(cp) : null
    if (!got || !allowed.includes(got)) {
      violations.push(`${cfg.vid}: clean image ${got ? `holds ${short(got)}` : 'is missing'}, expected ${allowed.map(short).join(' or ')}` +
        (led.inflight ? ` (${led.inflight.op} in flight)` : ''))
    }
    const revs = files.filter((f) => f.kind === 'revision' && f.volume === cfg.vid).map((f) => ({ rev: f.rev!, rel: f.rel })).sort((a, b) => a.rev - b.rev)
    const keep = Math.max(cfg.revisionsToKeep ?? POOL_REVISIONS, 0)
    const limit = keep + (afterCrash && led.inflight ? 1 : 0)
    if (revs.length > limit) violations.push(`${cfg.vid}: ${revs.length} revisions kept, revisionsToKeep is ${keep}`)
    for (const r of revs) {
      const h = hashFile(`${poolDir}/${r.rel}`)
      if (!led.history.has(h)) violations.push(`${cfg.vid}: revision ${r.rel} holds ${short(h)}, never a content of this volume`)
    }
  }
  for (const cfg of CRASH_VOLUMES) {
    if (!cfg.snapOnStart) continue
    const src = replay.volumes.get(String(cfg.source))
    const own = cleanPath(poolDir, cfg.vid)
    if (src && existsSync(own)) {
      const h = hashFile(own)
      if (!src.history.has(h)) violations.push(`${cfg.vid}: snapshot clean image holds ${short(h)}, never a content of ${cfg.source}`)
    }
  }
}

/**
 * Reopen the pool at `poolDir` and check every invariant, then prove it still
 * works. `afterCrash` allows the one extra revision of an interrupted commit.
 */
export async function checkCrashPool(api: PoolApi, poolDir: string, journalPath: string, seed: number): Promise<CheckResult> {
  const afterCrash = true
  const replay = replayJournal(journalPath)
  const violations: string[] = []
  let dirtyAfterCrash = 0
  let leftoversAfterOpen = 0
  let pool
  try {
    pool = await openCrashPool(api, poolDir)
  } catch (e) {
    violations.push(`ReflinkPool.open failed after the crash: ${codeOf(e)}: ${(e as Error).message}`)
    return { violations, replay, dirtyAfterCrash, leftoversAfterOpen }
  }
  try {
    const listed = new Set((await pool.listVolumes()).map((v) => v.vid))
    for (const cfg of CRASH_VOLUMES) if (!listed.has(cfg.vid)) violations.push(`${cfg.vid}: not listed after reopen`)
    for (const f of poolImageFiles(poolDir)) {
      if (f.volume?.startsWith(NEW_VOLUME_PREFIX) && !listed.has(f.volume)) violations.push(`${f.rel}: a file of ${f.volume}, which is not a volume (an unfinished create was not undone)`)
    }
    for (const vid of listed) {
      if (vid.startsWith(NEW_VOLUME_PREFIX) && !existsSync(cleanPath(poolDir, vid))) violations.push(`${vid}: created (listed) but its clean image is missing`)
    }
    const early = leftovers(poolDir)
    leftoversAfterOpen = early.length
    violations.push(...early.map((l) => `${l} survived ReflinkPool.open`))
    checkFiles(poolDir, replay, afterCrash, violations)
    if (violations.length) return { violations, replay, dirtyAfterCrash, leftoversAfterOpen }

    for (const cfg of CRASH_VOLUMES) {
      if (!cfg.saveOnStop) continue
      const vol = pool.getVolume(cfg.vid)
      const onDisk = Object.keys(await vol.revisions()).sort().join(',')
      const files = poolImageFiles(poolDir).filter((f) => f.kind === 'revision' && f.volume === cfg.vid).map((f) => String(f.rev)).sort().join(',')
      if (onDisk !== files) violations.push(`${cfg.vid}: revisions listed as [${onDisk}] but files are [${files}]`)
    }

    // Liveness: commit dirty survivors as they are, then a fresh start/write/stop.
    const g = new Prng(seed ^ 0x5eed)
    for (const cfg of CRASH_VOLUMES) {
      const vol = pool.getVolume(cfg.vid)
      const led = replay.volumes.get(cfg.vid)
      try {
        if (cfg.saveOnStop && led) {
          if (await vol.isDirty()) {
            dirtyAfterCrash++
            const h = hashFile(dirtyPath(poolDir, cfg.vid))
            await vol.stop()
            const got = hashFile(cleanPath(poolDir, cfg.vid))
            if (got !== h) violations.push(`${cfg.vid}: committing the surviving dirty image gave ${short(got)}, expected ${short(h)}`)
            led.committed = h
            led.history.add(h)
          } else {
            led.committed = hashFile(cleanPath(poolDir, cfg.vid))
          }
          led.inflight = null
          await vol.start()
          scribble(vol.path, g, 2, false)
          const h = hashFile(vol.path)
          await vol.stop()
          const got = hashFile(cleanPath(poolDir, cfg.vid))
          if (got !== h) violations.push(`${cfg.vid}: commit after recovery gave ${short(got)}, expected ${short(h)}`)
          led.history.add(led.committed)
          led.committed = h
          led.history.add(h)
        } else {
          await vol.start()
          await vol.stop()
        }
      } catch (e) {
        violations.push(`${cfg.vid}: start/stop after recovery failed: ${codeOf(e)}: ${(e as Error).message}`)
      }
    }
    checkFiles(poolDir, replay, false, violations)
    violations.push(...leftovers(poolDir).map((l) => `${l} survived the next operation on its volume`))
  } finally {
    await pool.close()
  }
  return { violations, replay, dirtyAfterCrash, leftoversAfterOpen }
}
