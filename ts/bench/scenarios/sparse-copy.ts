// Scenario 3: sparse copy without reflink (ext4 → ext4) of an image with 10%
// data in scattered 1 MiB runs, page cache dropped before every run. The
// product against qemu-img convert (≤ 1.0), GNU cp (≤ 0.8) and fs.copyFile
// (≤ 0.2), each peer followed by an fsync of its result so every row compares
// durable copies; allocated bytes of the result ≤ 1.02 × the source's.
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fsName, type Scenario } from '../context'
import { sparseImage } from '../fixtures'
import { timeInterleaved } from '../interleave'
import { copyPeer, cpDefault, cpSparseAlways, nodeCopyFile, qemuImgConvert, type Peer } from '../peers'
import { need } from '../product'
import { absoluteCheck, measurement, ratioCheck } from '../results'
import { allocatedBytes, dropCaches } from '../system'

const TARGETS: Record<string, number> = { 'qemu-img': 1.0, cp: 0.8, 'fs.copyFile': 0.2 }

export const sparseCopyScenario: Scenario = {
  id: 'sparse-copy',
  title: '3. Sparse copy without reflink (ext4)',
  description:
    'Copy an image with 10% data in scattered 1 MiB runs on ext4 (no reflink), page cache dropped before every run: ' +
    'reflink-pool `copyFile` (SEEK_DATA/SEEK_HOLE + copy_file_range, fsync, rename, directory fsync) against qemu-img convert -O raw, ' +
    'GNU cp, cp --sparse=always and fs.copyFile, each followed by `sync FILE` (fsync) so all results are durable; and the allocated bytes of each result.',
  async run(ctx, result) {
    const copyFile = need(ctx.product, 'copyFile')
    const fs = ctx.fs.ext4
    const size = ctx.settings.sparseImageBytes
    const dir = join(fs.dir, 'bench-sparse')
    const out = join(dir, 'out')
    mkdirSync(out, { recursive: true })
    ctx.log(`sparse copy: writing a ${size / 1024 ** 3} GiB image with ${ctx.settings.sparseDataFraction * 100}% data on ${fs.label}`)
    const src = sparseImage(dir, size, ctx.settings.sparseDataFraction)
    const srcAllocated = allocatedBytes(src)
    await ctx.settle()
    if (!ctx.canDropCaches) result.skipped = [...(result.skipped ?? []), 'page cache not dropped between runs (needs root): reads may come from memory']

    const methods = new Set<string>()
    // On a filesystem that can clone (the cwd fallback), force the copy path this scenario is about.
    const reflink = fs.kind === 'ext4' ? 'auto' : 'never'
    const product: Peer = {
      id: 'copyFile',
      label: `reflink-pool copyFile (reflink: ${reflink})`,
      durable: true,
      copy: async (s, d) => void methods.add((await copyFile(s, d, { reflink })).method),
    }
    const peers: Peer[] = [product, qemuImgConvert, cpDefault, cpSparseAlways, nodeCopyFile]
    if (ctx.floor) peers.push(ctx.floor.peer('sparse'))
    const missing = ctx.missingPeers.filter((m) => m.startsWith('qemu-img'))
    const active = peers.filter((p) => !(p.id === 'qemu-img' && missing.length))
    if (missing.length) result.skipped = [...(result.skipped ?? []), ...missing]

    const allocated = new Map<string, number[]>(active.map((p) => [p.id, []]))
    const samples = await timeInterleaved(
      active.map((p) => copyPeer(p, src, out, (dst) => allocated.get(p.id)!.push(allocatedBytes(dst)))),
      { rounds: ctx.settings.sparseRounds, between: async () => void (await dropCaches()), onSample: (id, r, ms) => ctx.log(`  sparse copy round ${r + 1}: ${id} ${ms.toFixed(0)} ms`) },
    )
    const setting = `${fsName(fs)}, ${size / 1024 ** 3} GiB, ${ctx.settings.sparseDataFraction * 100}% data`
    for (const p of active) {
      const alloc = allocated.get(p.id)!
      result.measurements.push(
        measurement(`sparse-copy/${p.id}`, p.label, 'ms', samples.get(p.id)!, {
          durable: p.durable,
          detail: { allocatedBytes: alloc[0] ?? null, allocatedVsSource: alloc.length ? Number((alloc[0] / srcAllocated).toFixed(3)) : null, ...(p === product ? { method: [...methods].join('+') } : {}) },
        }),
      )
    }
    const subject = samples.get('copyFile')!
    for (const p of active.slice(1)) {
      const limit = TARGETS[p.id]
      result.checks.push(
        ratioCheck(
          { id: `sparse-copy/${p.id}`, scenario: 'Sparse copy', setting, what: `copyFile / ${p.label}`, note: p === active[1] ? `method: ${[...methods].join('+')}` : undefined },
          subject,
          samples.get(p.id)!,
          limit === undefined ? null : { comparison: '<=', limit },
        ),
      )
    }
    result.checks.push(
      absoluteCheck(
        { id: 'sparse-copy/allocated', scenario: 'Sparse copy', setting, what: 'allocated bytes: copyFile result / source' },
        allocated.get('copyFile')!.map((a) => a / srcAllocated),
        'ratio',
        { comparison: '<=', limit: 1.02 },
      ),
    )
    rmSync(out, { recursive: true, force: true })
  },
}
