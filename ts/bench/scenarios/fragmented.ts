// Scenario 8: memory under fragmentation. A VM controls its image's layout; an
// image of 1 000 000 extents (4 KiB of data every other 4 KiB block, on XFS)
// must not make the pool's memory grow with it. Peak RSS (VmHWM) of a child
// process that copies it (copyFile to the ext4 filesystem, reflink: 'never', so
// the data runs are walked), exports it as a stream from a volume (exportStream into a sink), and
// measures its usage (fileUsage: FIEMAP): each <= 150 MiB. The times are shown
// for information.
import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { Scenario } from '../context'
import { need } from '../product'
import { absoluteCheck, measurement } from '../results'
import { dropCaches } from '../system'
import { rssChild } from './memory'

const MiB = 1024 * 1024
const BLOCK = 4096

/** `extents` blocks of data, each followed by a hole of one block; returns the path. */
function fragmentedImage(dir: string, extents: number): string {
  const path = join(dir, `fragmented-${extents}.img`)
  if (existsSync(path)) return path
  const fd = openSync(`${path}.tmp`, 'w', 0o600)
  try {
    // Full size first: appending past EOF makes XFS preallocate speculatively beyond it,
    // and those blocks, kept as the file grows over them, fill the holes (8 GiB allocated
    // for 4 GiB of data: ENOSPC on the bench's XFS). Writes inside the size never do.
    ftruncateSync(fd, extents * 2 * BLOCK)
    const block = Buffer.alloc(BLOCK, 0x5a)
    for (let i = 0; i < extents; i++) writeSync(fd, block, 0, BLOCK, i * 2 * BLOCK)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  rmSync(path, { force: true })
  renameSync(`${path}.tmp`, path)
  return path
}

export const fragmentedScenario: Scenario = {
  id: 'fragmented',
  title: '8. Memory under fragmentation',
  description:
    'Peak RSS of a child process that copies (copyFile, reflink: never), stream-exports (volume exportStream) and measures the usage (fileUsage) ' +
    'of an XFS image with 1 000 000 extents (4 KiB of data every other 4 KiB block); the run map is walked in bounded batches.',
  async run(ctx, result) {
    const ReflinkPool = need(ctx.product, 'ReflinkPool')
    const fileUsage = need(ctx.product, 'fileUsage')
    const fs = ctx.fs.xfs
    const extents = ctx.settings.fragmentedExtents
    const dir = join(fs.dir, 'bench-fragmented')
    mkdirSync(dir, { recursive: true })
    ctx.log(`fragmented: writing ${extents} extents (${(extents * BLOCK) / 1024 ** 3} GiB of data) on ${fs.label}`)
    const t0 = performance.now()
    const image = fragmentedImage(dir, extents)
    ctx.log(`fragmented: written in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    const usage = await fileUsage(image)
    const setting = `${fs.kind}, ${usage.extents} extents, ${((extents * 2 * BLOCK) / 1024 ** 3).toFixed(1)} GiB`
    const pool = await ReflinkPool.open({ dirPath: join(dir, 'pool'), setupCheck: false })
    const vid = 'vm-templates/fragmented/root'
    const v = await pool.createVolume({ vid, name: 'root', size: MiB, saveOnStop: true })
    const imported = await v.importFile(image)
    await pool.close()
    // The copy holds as much data as the image (4 GiB): on the ext4 scratch filesystem,
    // which has room for it (the walk of the runs is the same; the data moves by pread/pwrite).
    const copyDir = join(ctx.fs.ext4.dir, 'bench-fragmented-copy')
    mkdirSync(copyDir, { recursive: true })
    const copy = join(copyDir, 'copy.img')
    const steps: [string, string, string[]][] = [
      ['copy', 'copyFile (reflink: never)', ['copy', image, copy, 'never']],
      ['export-stream', 'volume exportStream', ['export-stream', join(dir, 'pool'), vid]],
      ['usage', 'fileUsage', ['usage', image]],
    ]
    for (const [id, label, args] of steps) {
      await dropCaches()
      const t = performance.now()
      const r = await rssChild(ctx, args)
      const ms = performance.now() - t
      rmSync(copy, { force: true })
      const mib = r.peakRssBytes / MiB
      ctx.log(`  fragmented ${id}: ${mib.toFixed(1)} MiB peak, ${(ms / 1000).toFixed(1)} s`)
      result.measurements.push(
        measurement(`fragmented/${id}`, label, 'MiB', [mib], { detail: { seconds: Number((ms / 1000).toFixed(2)), method: r.method, bytes: r.bytes, importMethod: imported.method } }),
      )
      result.checks.push(
        absoluteCheck({ id: `fragmented/${id}`, scenario: 'Memory under fragmentation', setting, what: `peak RSS of ${label}`, note: `${(ms / 1000).toFixed(1)} s` }, [mib], 'MiB', {
          comparison: '<=',
          limit: 150,
        }),
      )
    }
  },
}
