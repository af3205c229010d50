// The demo's main job: a template with real data, N clones of it, each VM
// started, written to and stopped (a commit), one reverted, and the numbers:
// strategy, time per clone, space shared versus exclusive.
//
// Where images can be attached to loop devices (root, e2fsprogs), the template
// holds a real ext4 filesystem (mkfs.ext4 in its image, files written through a
// loop mount) and one VM is used as a VM host uses it: a file written through
// its mount survives stop/start, vanishes at revert, and no other volume sees
// it. The other VMs rewrite 1 MiB of the template's data file in place, at the
// image offsets debugfs reports, so every filesystem stays consistent. Without
// root the template is a raw image (a stream import) and the VMs write raw blocks.
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createWriteStream } from 'node:fs'
import { clientUnavailableReason, ext4FileRuns, mkfsImage, withAttachedImage } from '../../util/loopfs'
import { cloneVolumes } from '../clone-runner'
import { forEachBounded } from '../../bounded'
import { humanDuration, humanSize, percent } from '../format'
import type { Output } from '../output'
import type { Pool, Volume } from '../pool-access'
import { volumeUsageRows, sumUsage, type UsageRow } from '../volume-view'

const MiB = 1024 * 1024

export interface DemoOptions {
  clones: number
  /** MiB of data in the template; the image is four times larger, the rest holes. */
  dataMiB: number
  concurrency: number
  signal: AbortSignal
}

export interface DemoReport {
  /** The copy method the library reported for the clones ('reflink', 'copy-range', 'read-write'), or 'mixed'. */
  strategy: string
  methods: Record<string, number>
  template: { vid: string; size: number; dataBytes: number; allocated: number; importMs: number }
  /** The clones are made in one batch (docs/design.md §7): perCloneMs is totalMs / count. */
  clones: { count: number; totalMs: number; perCloneMs: number }
  run: { startMs: number; writeBytesPerVm: number; stopMs: number }
  revert: { vid: string; restored: boolean; ms: number }
  /** The VM used through its mounted filesystem (null without root or e2fsprogs: `why`). */
  client: { vid: string; file: string; survivedRestart: boolean; goneAfterRevert: boolean; otherSaw: boolean; templateSaw: boolean } | { why: string }
  space: {
    logicalBytes: number
    /** FIEMAP of the running VMs' dirty images, summed. */
    running: Omit<UsageRow, 'vid'>
    filesystem: { beforeTemplate: number | null; afterTemplate: number | null; afterClones: number | null; afterRun: number | null }
  }
  totalMs: number
}

/** Template data: the first half of the chunks in one run (like an installed OS), the rest scattered. */
function templateLayout(dataMiB: number): { imageMiB: number; chunks: Set<number> } {
  const imageMiB = dataMiB * 4
  const head = Math.ceil(dataMiB / 2)
  const chunks = new Set<number>()
  for (let i = 0; i < head; i++) chunks.add(i)
  const rest = dataMiB - head
  const step = rest > 0 ? Math.floor((imageMiB - head) / rest) : 1
  for (let k = 0; k < rest; k++) chunks.add(head + k * step)
  return { imageMiB, chunks }
}

/** A stream of the template image: 1 MiB chunks of pseudo-random data (each one distinct) or zeros. */
function templateStream(imageMiB: number, chunks: Set<number>): Readable {
  const seed = randomBytes(MiB)
  const zero = Buffer.alloc(MiB)
  return Readable.from(
    (function* () {
      for (let i = 0; i < imageMiB; i++) {
        if (!chunks.has(i)) {
          yield zero
          continue
        }
        const chunk = Buffer.from(seed)
        for (let off = 0; off < MiB; off += 4096) chunk.writeUInt32LE(i, off) // every block differs
        yield chunk
      }
    })(),
    { objectMode: false },
  )
}

/** Offset (in MiB) where VM `i` writes while running: spread over the image (or the data file), inside a data run or a hole. */
function writeOffsetMiB(i: number, imageMiB: number): number {
  return (i * 37) % imageMiB
}

/** The file of the template's filesystem that holds its data, and the one a VM writes through its mount. */
const DATA_FILE = 'data.bin'
const VM_FILE = 'hello-from-the-vm.txt'

/** Byte ranges `[offset, offset + length)` of a file, as ranges of the image that holds it (runs in the file's order). */
function imageRanges(runs: Array<{ offset: number; length: number }>, offset: number, length: number): Array<{ at: number; length: number }> {
  const out: Array<{ at: number; length: number }> = []
  let pos = 0
  for (const r of runs) {
    const from = Math.max(offset, pos)
    const to = Math.min(offset + length, pos + r.length)
    if (from < to) out.push({ at: r.offset + (from - pos), length: to - from })
    pos += r.length
  }
  return out
}

async function readAt(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.alloc(length)
    await fh.read(buf, 0, length, offset)
    return buf
  } finally {
    await fh.close()
  }
}

/** Bytes of the committed image of an save-on-stop volume at [offset, offset+length). */
async function committedBytes(v: Volume, offset: number, length: number): Promise<Buffer> {
  const path = await v.export()
  try {
    return await readAt(path, offset, length)
  } finally {
    await v.exportEnd(path)
  }
}

function strategyText(strategy: string): string {
  if (strategy === 'reflink') return 'reflink (FICLONE): each clone shares its extents with the template'
  if (strategy === 'mixed') return 'mixed: some clones were reflinked, others copied'
  return `${strategy}: no reflinks here, each clone is a full sparse copy`
}

export async function runDemoScenario(pool: Pool, opts: DemoOptions, out: Output, say: (line: string) => void): Promise<DemoReport> {
  const t0 = performance.now()
  const fsUsed = async () => (await pool.usageDetails()).dataUsage ?? null
  const beforeTemplate = await fsUsed()

  // 1. The template: a real ext4 filesystem with the data in a file, else a raw stream import (zero blocks become holes).
  const noClient = clientUnavailableReason()
  const { imageMiB, chunks } = noClient ? templateLayout(opts.dataMiB) : { imageMiB: opts.dataMiB * 4, chunks: new Set(Array.from({ length: opts.dataMiB }, (_, i) => i)) }
  const size = imageMiB * MiB
  const template = await pool.createVolume({ vid: 'vm-templates/demo-template/root', name: 'root', size, rw: true, saveOnStop: true, snapOnStart: false })
  const bar = out.progress({ label: 'template', unit: 'bytes', total: size })
  const tImport = performance.now()
  /** Where the data file's bytes are in the image (ext4 template only). */
  let dataRuns: Array<{ offset: number; length: number }> | null = null
  try {
    if (noClient) {
      await template.importStream(templateStream(imageMiB, chunks), size, { signal: opts.signal, onProgress: (done: number) => bar.update(done, size) })
    } else {
      const image = await template.start()
      mkfsImage('ext4', image, ['-b', '4096'])
      await withAttachedImage(image, async (dir) => {
        writeFileSync(join(dir, 'os-release'), 'NAME="reflink-pool demo"\n')
        await pipeline(templateStream(opts.dataMiB, chunks), createWriteStream(join(dir, DATA_FILE)), { signal: opts.signal })
      })
      dataRuns = ext4FileRuns(image, `/${DATA_FILE}`)
      await template.stop({ signal: opts.signal })
    }
  } finally {
    bar.done()
  }
  const importMs = performance.now() - tImport
  const templateUsage = await template.usage()
  const afterTemplate = await fsUsed()
  if (noClient) {
    say(`template   ${template.vid}: ${humanSize(size)} image, ${humanSize(chunks.size * MiB)} of data in ${chunks.size} × 1 MiB chunks (half in one run, half scattered)`)
    say(`           imported from a stream in ${humanDuration(importMs)}; zero blocks left as holes: ${humanSize(Number(templateUsage.allocated))} allocated`)
    say(`           (a raw image: no ext4 filesystem in it, because ${noClient})`)
  } else {
    say(`template   ${template.vid}: ${humanSize(size)} image holding an ext4 filesystem (mkfs.ext4 in the image, then files written through a loop mount, as in a VM)`)
    say(`           with ${humanSize(chunks.size * MiB)} of data in /${DATA_FILE}, built and committed in ${humanDuration(importMs)}; ${humanSize(Number(templateUsage.allocated))} allocated (free space left as holes)`)
  }

  // 2. The clones.
  const vids = Array.from({ length: opts.clones }, (_, i) => `appvms/demo-vm-${String(i + 1).padStart(3, '0')}/root`)
  const cloneBar = out.progress({ label: 'clone', unit: 'items', total: vids.length })
  let cloned
  try {
    cloned = await cloneVolumes(pool, template, vids, { mode: 'copy', batchSize: vids.length, signal: opts.signal, onCloned: (d, t) => cloneBar.update(d, t) })
  } finally {
    cloneBar.done()
  }
  const volumes: Volume[] = []
  for (const vid of vids) volumes.push(await pool.getVolume(vid))
  const afterClones = await fsUsed()
  const firstUsage = await volumes[0].usage()
  const methodNames = Object.keys(cloned.methods)
  const strategy = methodNames.length === 1 ? methodNames[0] : 'mixed'
  const perCloneMs = cloned.totalMs / vids.length
  say(
    `clones     ${vids.length} save-on-stop volumes (appvms/demo-vm-NNN/root) in one batch (reflinks, one flush, renames, records), in ${humanDuration(cloned.totalMs)}: ` +
      `${humanDuration(perCloneMs)} per clone`,
  )
  // What the library reported, and FIEMAP's view of the first clone as the proof.
  say(
    `strategy   ${strategyText(strategy)}` +
      ` [${Object.entries(cloned.methods).map(([m, n]) => `${m} ×${n}`).join(', ')}; FIEMAP of the first clone: ${humanSize(Number(firstUsage.shared))} shared, ${humanSize(Number(firstUsage.exclusive))} exclusive]`,
  )

  // 3. Run every VM: start (dirty image = reflink of the clean one), write 1 MiB, stop (commit + revision).
  const writeBytes = MiB
  const tStart = performance.now()
  await forEachBounded(volumes, opts.concurrency, async (v, i) => {
    const fh = await open(await v.start(), 'r+')
    try {
      // In the ext4 template the VM rewrites 1 MiB of the data file in place (where that file's blocks are in the image).
      const ranges = dataRuns ? imageRanges(dataRuns, writeOffsetMiB(i, opts.dataMiB) * MiB, writeBytes) : [{ at: writeOffsetMiB(i, imageMiB) * MiB, length: writeBytes }]
      for (const r of ranges) await fh.write(randomBytes(r.length), 0, r.length, r.at)
    } finally {
      await fh.close()
    }
  }, { signal: opts.signal })
  const startMs = performance.now() - tStart
  // While the VMs run, FIEMAP of their dirty images splits the data into extents still
  // shared with the template and the blocks each VM wrote (exclusive).
  const running = sumUsage(await volumeUsageRows(volumes))
  const tStop = performance.now()
  await forEachBounded(volumes, opts.concurrency, (v) => v.stop(), { signal: opts.signal })
  const stopMs = performance.now() - tStop
  const afterRun = await fsUsed()
  say(`run        started ${volumes.length} VMs and wrote ${humanSize(writeBytes)} into each in ${humanDuration(startMs)}; stopped (committed) them in ${humanDuration(stopMs)}`)

  // 4. Revert the first VM: its write is undone, the committed image equals the template again.
  const victim = volumes[0]
  const offset = dataRuns ? imageRanges(dataRuns, writeOffsetMiB(0, opts.dataMiB) * MiB, 1)[0].at : writeOffsetMiB(0, imageMiB) * MiB
  const original = await committedBytes(template, offset, writeBytes)
  const changed = !(await committedBytes(victim, offset, writeBytes)).equals(original)
  const tRevert = performance.now()
  await victim.revert()
  const revertMs = performance.now() - tRevert
  const restored = changed && (await committedBytes(victim, offset, writeBytes)).equals(original)
  say(`revert     ${victim.vid} to its newest revision in ${humanDuration(revertMs)}: its write is ${restored ? 'gone, the data equals the template again' : 'NOT undone (unexpected)'}`)

  // 5. One VM used as a VM host uses it: a file through its mounted filesystem (ext4 template only),
  // after the revert above (so the revision it reverts to is the template's state).
  const client = dataRuns ? await clientStory(template, volumes[0], volumes[1] ?? null, opts.signal) : { why: noClient! }
  if ('why' in client) {
    say(`vm file    skipped: ${client.why}`)
  } else {
    say(
      `vm file    ${client.vid}: attached to a loop device and mounted, /${client.file} written and committed by stop; ` +
        `${client.survivedRestart ? 'there again after the next start' : 'MISSING after the next start (unexpected)'}; ` +
        `${client.goneAfterRevert ? 'gone after revert' : 'STILL THERE after revert (unexpected)'}; ` +
        `${client.otherSaw || client.templateSaw ? 'SEEN by another volume (unexpected)' : 'never seen by the other VMs or the template'}`,
    )
  }

  // 6. Space.
  const logicalBytes = chunks.size * MiB * volumes.length
  say(
    `space      while running, ${volumes.length} VMs saw ${humanSize(running.allocated)} of data (full copies would take ${humanSize(logicalBytes + writeBytes * volumes.length)}): ` +
      `${humanSize(running.shared)} in shared extents (${percent(running.shared, running.allocated)}), ${humanSize(running.exclusive)} exclusive (${strategy === 'reflink' ? 'their own writes' : 'full copies'})`,
  )
  if (beforeTemplate !== null && afterTemplate !== null && afterClones !== null && afterRun !== null) {
    say(
      `           filesystem used grew by ${humanSize(afterTemplate - beforeTemplate)} for the template, ${humanSize(afterClones - afterTemplate)} for ${volumes.length} clones, ` +
        `${humanSize(afterRun - afterClones)} for running them`,
    )
  }
  return {
    strategy,
    methods: cloned.methods,
    template: { vid: template.vid, size, dataBytes: chunks.size * MiB, allocated: Number(templateUsage.allocated), importMs },
    clones: { count: volumes.length, totalMs: cloned.totalMs, perCloneMs },
    run: { startMs, writeBytesPerVm: writeBytes, stopMs },
    revert: { vid: victim.vid, restored, ms: revertMs },
    client,
    space: { logicalBytes, running, filesystem: { beforeTemplate, afterTemplate, afterClones, afterRun } },
    totalMs: performance.now() - t0,
  }
}

/**
 * The VM host's view: mount `vm`'s image, write a file, stop (commit); start and
 * find it; stop without committing, revert, start: it is gone. `other` (a clone
 * of the same template) and the template's committed images are mounted
 * read-only and must not have it. `vm` ends stopped, its write-file commit reverted.
 */
async function clientStory(template: Volume, vm: Volume, other: Volume | null, signal: AbortSignal) {
  const file = VM_FILE
  const has = (image: string, readOnly = false) => withAttachedImage(image, (dir) => existsSync(join(dir, file)), { readOnly })
  await withAttachedImage(await vm.start({ signal }), (dir) => writeFileSync(join(dir, file), `written in ${vm.vid}\n`))
  await vm.stop({ signal })
  const survivedRestart = await withAttachedImage(await vm.start({ signal }), (dir) => readFileSync(join(dir, file), 'utf8') === `written in ${vm.vid}\n`)
  await vm.stop({ discard: true, signal })
  const committed = async (v: Volume) => {
    const path = await v.export()
    try {
      return await has(path, true)
    } finally {
      await v.exportEnd(path)
    }
  }
  const otherSaw = other ? await committed(other) : false
  const templateSaw = await committed(template)
  await vm.revert(undefined, { signal })
  const goneAfterRevert = !(await has(await vm.start({ signal })))
  await vm.stop({ discard: true, signal })
  return { vid: vm.vid, file, survivedRestart, goneAfterRevert, otherSaw, templateSaw }
}
