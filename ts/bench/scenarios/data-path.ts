// Scenario 7: data in and out of volumes (docs/design.md §6), the image of
// scenario 3 (4 GiB, 10% data in scattered 1 MiB runs; 0.5 GiB with --quick),
// page cache dropped before every timed step. Each row times the library call
// in this process and the CLI command as a whole process (Node start, pool
// open, lock, copy, commit), against the peer a user would otherwise run,
// followed by `sync FILE` where the peer does not make its result durable:
// - import of a file on the pool's filesystem (XFS, btrfs) vs cp --reflink=always (<= 1.2);
// - import of a file on ext4 and from another filesystem vs qemu-img convert -O raw (<= 1.0);
// - import of a 1 GiB file with 100 MiB data and 100 MiB written zeros on ext4 vs
//   cp --sparse=always (<= 1.1), allocated bytes vs the data (<= 1.02);
// - export to a file on ext4 vs qemu-img convert -O raw (<= 1.0);
// - export to a pipe (`| cat > /dev/null`) vs `cat image` into the same pipe (<= 1.0);
// - import from a pipe vs cp --sparse=always /dev/stdin (<= 1.0), both on XFS;
// and, for each CLI row, the CLI's fixed cost (start-up floor: `volume info`), itself
// against `node -e 0` (<= 1.5);
// plus allocated bytes after each import vs the source's (<= 1.02) and the peak
// RSS of each library call (child process) and CLI command (GNU time) (<= 100 MiB).
import { execFile, spawn } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fsName, type BenchContext, type BenchFs, type Scenario } from '../context'
import { sparseImage, zeroedImage } from '../fixtures'
import { timeInterleaved, type TimedPeer } from '../interleave'
import { FLOOR_SYSCALLS, REPO_ROOT, copyPeer, qemuImgConvert, type FloorCopyMode, type Peer } from '../peers'
import { need, type PoolApi, type VolumeApi } from '../product'
import { absoluteCheck, measurement, ratioCheck, type ScenarioResult } from '../results'
import { allocatedBytes, dropCaches, hasCommand, run } from '../system'
import { rssChild } from './memory'

const execFileP = promisify(execFile)
const MiB = 1024 * 1024
const BIN = join(REPO_ROOT, 'bin', 'reflink-pool.js')
const VID = 'vm-templates/bench/root'
const GNU_TIME = '/usr/bin/time'

/** A shell command; resolves when it exits 0. */
const sh = (script: string, env: Record<string, string> = {}) =>
  execFileP('sh', ['-c', script], { env: { ...process.env, ...env }, maxBuffer: 1 << 20 })

/** Quote a path for sh. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/** The CLI invocation, optionally under GNU time writing its peak RSS (KiB) to `rssFile`. */
function cli(args: string, rssFile?: string): string {
  const node = `${q(process.execPath)} ${q(BIN)} ${args}`
  return rssFile ? `${GNU_TIME} -f %M -o ${q(rssFile)} ${node}` : node
}

interface Pools {
  /** A pool per filesystem with the bench volume in it. */
  on(fs: BenchFs): Promise<{ pool: PoolApi; v: VolumeApi }>
  closeAll(): Promise<void>
}

function pools(ctx: BenchContext): Pools {
  const open = new Map<string, { pool: PoolApi; v: VolumeApi }>()
  return {
    async on(fs) {
      const have = open.get(fs.dir)
      if (have) return have
      const ReflinkPool = need(ctx.product, 'ReflinkPool')
      const pool = await ReflinkPool.open({ dirPath: join(fs.dir, 'bench-data-path-pool'), setupCheck: false })
      const v = await pool.createVolume({ vid: VID, name: 'root', size: MiB, saveOnStop: true })
      open.set(fs.dir, { pool, v })
      return { pool, v }
    },
    async closeAll() {
      for (const { pool } of open.values()) await pool.close()
    },
  }
}

const cpReflinkSync: Peer = {
  id: 'cp-reflink',
  label: 'cp --reflink=always + sync',
  durable: true,
  copy: async (src, dst) => {
    await run('cp', ['--reflink=always', src, dst])
    await run('sync', [dst])
  },
}

interface Row {
  id: string
  scenario: string
  setting: string
  /** The peer the target is against, and the limit. */
  peer: TimedPeer & { label: string }
  limit: number
  /** Product variants timed against the peer: the library call and the CLI. */
  subjects: (TimedPeer & { label: string })[]
  /** Informational peers (floor). */
  extra?: (TimedPeer & { label: string })[]
  /** Keep the page cache between runs, only waiting for writeback to end (default: dropped before each, as a data copy needs). */
  warm?: boolean
  /** Rounds, when not the data-path rounds (a row of short runs can afford many). */
  rounds?: number
}

/**
 * The fixed cost of any CLI row: `volume info` starts Node, loads the CLI and the
 * library, opens the pool and reads one record, and does nothing else.
 */
function cliStart(poolDir: string): TimedPeer & { label: string } {
  // Spawned as node -e 0 is (no shell in between), so the two differ only in what Node runs.
  const env = { ...process.env, REFLINK_POOL_DIR: poolDir }
  return { id: 'cli-start', label: 'CLI start-up floor (volume info)', run: async () => void (await execFileP(process.execPath, [BIN, 'volume', 'info', VID], { env })) }
}

async function timeRow(ctx: BenchContext, result: ScenarioResult, row: Row): Promise<void> {
  const peers = [row.peer, ...row.subjects, ...(row.extra ?? [])]
  const samples = await timeInterleaved(peers, {
    rounds: row.rounds ?? ctx.settings.dataPathRounds,
    between: row.warm ? () => ctx.settle() : async () => void (await dropCaches()),
    onSample: (id, r, ms) => ctx.log(`  ${row.id} round ${r + 1}: ${id} ${ms.toFixed(0)} ms`),
  })
  for (const p of peers) result.measurements.push(measurement(`${row.id}/${p.id}`, p.label, 'ms', samples.get(p.id)!))
  const base = samples.get(row.peer.id)!
  for (const s of row.subjects) {
    result.checks.push(
      ratioCheck({ id: `${row.id}/${s.id}`, scenario: row.scenario, setting: row.setting, what: `${s.label} / ${row.peer.label}` }, samples.get(s.id)!, base, {
        comparison: '<=',
        limit: row.limit,
      }),
    )
  }
  for (const e of row.extra ?? []) {
    result.checks.push(ratioCheck({ id: `${row.id}/${e.id}`, scenario: row.scenario, setting: row.setting, what: `${e.label} / ${row.peer.label}` }, samples.get(e.id)!, base, null))
  }
}

export const dataPathScenario: Scenario = {
  id: 'data-path',
  title: '7. Data in and out of volumes',
  description:
    'A raw image (10% data in scattered 1 MiB runs) imported into and exported out of a save-on-stop volume, page cache dropped before each step: ' +
    'the library call (importFile / exportToFile / exportStream / importStream) and the CLI command as a whole process against ' +
    'cp --reflink=always, qemu-img convert -O raw, cat and cp --sparse=always /dev/stdin, each followed by sync FILE; allocated bytes and peak RSS.',
  async run(ctx, result) {
    need(ctx.product, 'ReflinkPool')
    const size = ctx.settings.sparseImageBytes
    const gib = size / 1024 ** 3
    const fraction = ctx.settings.sparseDataFraction
    const desc = `${gib} GiB, ${fraction * 100}% data`
    if (!ctx.canDropCaches) result.skipped = [...(result.skipped ?? []), 'page cache not dropped between runs (needs root)']
    const qemu = !ctx.missingPeers.some((m) => m.startsWith('qemu-img'))
    if (!qemu) result.skipped = [...(result.skipped ?? []), 'qemu-img missing: the rows against it were not run']
    const time = hasCommand(GNU_TIME)
    if (!time) result.skipped = [...(result.skipped ?? []), `${GNU_TIME} missing (apt-get install time): no peak RSS of the CLI commands`]
    const ps = pools(ctx)
    const images = new Map<string, string>()
    const source = (fs: BenchFs) => {
      let img = images.get(fs.dir)
      if (!img) {
        const dir = join(fs.dir, 'bench-sparse')
        mkdirSync(dir, { recursive: true })
        ctx.log(`data path: ${desc} image on ${fs.label}`)
        img = sparseImage(dir, size, fraction)
        images.set(fs.dir, img)
      }
      return img
    }
    const out = (fs: BenchFs) => {
      const d = join(fs.dir, 'bench-data-path-out')
      mkdirSync(d, { recursive: true })
      return d
    }
    const allocated: { what: string; setting: string; ratios: number[] }[] = []
    const rss: { what: string; setting: string; mib: number[] }[] = []
    try {
      /** Library importFile and CLI `volume import FILE`, with allocated bytes after each. */
      const importSubjects = async (fs: BenchFs, src: string, setting: string) => {
        const { pool, v } = await ps.on(fs)
        const srcAlloc = allocatedBytes(src)
        const ratios: number[] = []
        const inspect = () => void ratios.push(allocatedBytes(join(pool.dirPath, `${VID}.img`)) / srcAlloc)
        const methods = new Set<string>()
        allocated.push({ what: 'allocated after importFile / source', setting, ratios })
        const lib: TimedPeer & { label: string } = {
          id: 'importFile',
          label: 'importFile',
          run: async () => void methods.add((await v.importFile(src)).method),
          cleanup: inspect,
        }
        const cmd: TimedPeer & { label: string } = {
          id: 'cli',
          label: 'CLI volume import FILE',
          run: async () => void (await sh(cli(`volume import ${VID} ${q(src)}`), { REFLINK_POOL_DIR: pool.dirPath })),
        }
        return { subjects: [lib, cmd], methods, start: cliStart(pool.dirPath) }
      }

      // Import of a file on the pool's filesystem (reflink).
      for (const fs of ctx.fs.xfs.kind === 'cwd' ? [] : [ctx.fs.xfs, ctx.fs.btrfs]) {
        const src = source(fs)
        const setting = `${fsName(fs)}, ${desc}`
        const { subjects, methods, start } = await importSubjects(fs, src, setting)
        const extra = [start, ...(ctx.floor ? [{ ...copyPeer(ctx.floor.peer('clone'), src, out(fs)), label: 'floor (FICLONE + fsync + rename)' }] : [])]
        await timeRow(ctx, result, {
          id: `data-path/import-file/${fs.kind}`,
          scenario: 'Import a file, same filesystem',
          setting,
          peer: { ...copyPeer(cpReflinkSync, src, out(fs)), label: cpReflinkSync.label },
          limit: 1.2,
          subjects,
          extra,
        })
        result.checks.at(-1 - extra.length - 1)!.note = `method: ${[...methods].join('+')}`
      }

      // Import of a file on ext4 (copy) and from another filesystem (ext4 source, XFS pool).
      const ext4 = ctx.fs.ext4
      if (qemu) {
        const cases: [BenchFs, BenchFs, string][] = [[ext4, ext4, `ext4, ${desc}`]]
        if (ctx.fs.xfs.kind !== 'cwd') cases.push([ext4, ctx.fs.xfs, `ext4 -> xfs, ${desc}`])
        for (const [from, to, setting] of cases) {
          const src = source(from)
          const { subjects, methods, start } = await importSubjects(to, src, setting)
          // Across filesystems copy_file_range is refused (EXDEV): the floor is pread/pwrite.
          const mode: FloorCopyMode = from === to ? 'sparse' : 'readwrite'
          const extra = [start, ...(ctx.floor ? [{ ...copyPeer(ctx.floor.peer(mode), src, out(to)), label: `floor (${FLOOR_SYSCALLS[mode]})` }] : [])]
          await timeRow(ctx, result, {
            id: `data-path/import-file/${from === to ? 'ext4' : 'ext4-to-xfs'}`,
            scenario: from === to ? 'Import a file, no reflink' : 'Import a file, across filesystems',
            setting,
            peer: { ...copyPeer(qemuImgConvert, src, out(to)), label: qemuImgConvert.label },
            limit: 1.0,
            subjects,
            extra,
          })
          result.checks.at(-1 - extra.length - 1)!.note = `method: ${[...methods].join('+')}`
        }

        // Import of an image with written zeros on ext4 (no clone): zero blocks become holes,
        // as upstream's cp --sparse=always makes them; 1 GiB, 100 MiB data + 100 MiB zeros.
        {
          const zeroed = zeroedImage(join(ext4.dir, 'bench-sparse'), 1024 * MiB, 100)
          const { pool, v } = await ps.on(ext4)
          const ratios: number[] = []
          const setting = 'ext4, 1 GiB, 100 MiB data + 100 MiB zeros'
          allocated.push({ what: 'allocated after importFile / data (zeros as holes)', setting, ratios })
          const methods = new Set<string>()
          const cpSparse: Peer = {
            id: 'cp-sparse',
            label: 'cp --sparse=always + sync',
            durable: true,
            copy: async (s, d) => {
              await run('cp', ['--sparse=always', s, d])
              await run('sync', [d])
            },
          }
          await timeRow(ctx, result, {
            id: 'data-path/import-zeros/ext4',
            scenario: 'Import a file with zeros, no reflink',
            setting,
            peer: { ...copyPeer(cpSparse, zeroed.path, out(ext4)), label: cpSparse.label },
            limit: 1.1,
            subjects: [
              {
                id: 'importFile',
                label: 'importFile',
                run: async () => void methods.add((await v.importFile(zeroed.path)).method),
                cleanup: () => void ratios.push(allocatedBytes(join(pool.dirPath, `${VID}.img`)) / zeroed.data),
              },
            ],
          })
          result.checks.at(-1)!.note = `method: ${[...methods].join('+')}`
        }

        // Export to a file on ext4.
        const src = source(ext4)
        const { pool, v } = await ps.on(ext4)
        await v.importFile(src)
        const image = join(pool.dirPath, `${VID}.img`)
        const dst = (id: string, round: number) => join(out(ext4), `${id}-${round}`)
        const methods = new Set<string>()
        await timeRow(ctx, result, {
          id: 'data-path/export-file/ext4',
          scenario: 'Export to a file',
          setting: `ext4, ${desc}`,
          peer: { ...copyPeer(qemuImgConvert, image, out(ext4)), label: qemuImgConvert.label },
          limit: 1.0,
          subjects: [
            {
              id: 'exportToFile',
              label: 'exportToFile',
              run: async (r) => void methods.add((await v.exportToFile(dst('lib', r))).method),
              cleanup: (r) => rmSync(dst('lib', r), { force: true }),
            },
            {
              id: 'cli',
              label: 'CLI volume export FILE',
              run: async (r) => void (await sh(cli(`volume export ${VID} ${q(dst('cli', r))}`), { REFLINK_POOL_DIR: pool.dirPath })),
              cleanup: (r) => rmSync(dst('cli', r), { force: true }),
            },
          ],
          extra: [cliStart(pool.dirPath)],
        })
        result.checks.at(-3)!.note = `method: ${[...methods].join('+')}`
      }

      // Export to a pipe, and import from a pipe: on XFS, the pool's own kind of filesystem,
      // where a commit reflinks (on ext4 it also copies the data into the revision and the
      // precache); the image and the peer's result are on XFS too.
      {
        const pipeFs = ctx.fs.xfs
        const src = source(pipeFs)
        const { pool, v } = await ps.on(pipeFs)
        await v.importFile(src)
        const image = join(pool.dirPath, `${VID}.img`)
        const env = { REFLINK_POOL_DIR: pool.dirPath }
        const setting = `${fsName(pipeFs)}, ${desc}`
        // The fixed cost itself, against the least any Node program pays: warm, as when a
        // script or an orchestrator runs one command after another; and, for information,
        // with the page cache dropped before each run, as the first command after a boot
        // (then reading Node, the bundle and the addon from disk is most of it).
        const nodeE0 = { id: 'node', label: 'node -e 0', run: async () => void (await execFileP(process.execPath, ['-e', '0'])) }
        await timeRow(ctx, result, { id: 'data-path/cli-start', scenario: 'CLI start-up', setting: `${fsName(pipeFs)}, page cache warm`, peer: nodeE0, limit: 1.5, subjects: [cliStart(pool.dirPath)], warm: true, rounds: 15 })
        await timeRow(ctx, result, { id: 'data-path/cli-start-cold', scenario: 'CLI start-up', setting: `${fsName(pipeFs)}, page cache dropped`, peer: nodeE0, limit: 1.5, subjects: [], extra: [cliStart(pool.dirPath)], rounds: 7 })
        await timeRow(ctx, result, {
          id: 'data-path/export-pipe',
          scenario: 'Export to a pipe',
          setting,
          peer: { id: 'cat', label: 'cat image | cat > /dev/null', run: async () => void (await sh(`cat ${q(image)} | cat > /dev/null`)) },
          limit: 1.0,
          subjects: [
            {
              id: 'exportStream',
              label: 'exportStream | cat > /dev/null',
              run: async () => {
                const cat = spawn('sh', ['-c', 'cat > /dev/null'], { stdio: ['pipe', 'ignore', 'inherit'] })
                const done = new Promise((resolve, reject) => cat.on('close', (c) => (c === 0 ? resolve(null) : reject(new Error(`cat exited ${c}`)))))
                const { pipeline } = await import('node:stream/promises')
                await pipeline(v.exportStream(), cat.stdin)
                await done
              },
            },
            { id: 'cli', label: 'CLI volume export - | cat > /dev/null', run: async () => void (await sh(`${cli(`volume export ${VID} -`)} | cat > /dev/null`, env)) },
          ],
          extra: [cliStart(pool.dirPath)],
        })
        const srcAlloc = allocatedBytes(src)
        const inspect = (ratios: number[]) => () => void ratios.push(allocatedBytes(image) / srcAlloc)
        const libAlloc: number[] = []
        const pipeAlloc: number[] = []
        const fifo = join(out(pipeFs), 'fifo')
        rmSync(fifo, { force: true })
        await run('mkfifo', [fifo])
        allocated.push({ what: 'allocated after importPipe / source', setting, ratios: pipeAlloc })
        const cliAlloc: number[] = []
        allocated.push({ what: 'allocated after importStream / source', setting, ratios: libAlloc })
        allocated.push({ what: 'allocated after CLI import - / source', setting, ratios: cliAlloc })
        await timeRow(ctx, result, {
          id: 'data-path/import-pipe',
          scenario: 'Import from a pipe',
          setting,
          peer: {
            ...copyPeer(
              { id: 'cp-sparse-stdin', label: 'cp --sparse=always /dev/stdin + sync', durable: true, copy: async (s, d) => void (await sh(`cat ${q(s)} | cp --sparse=always /dev/stdin ${q(d)} && sync ${q(d)}`)) },
              src,
              out(pipeFs),
            ),
            label: 'cat image | cp --sparse=always /dev/stdin + sync',
          },
          limit: 1.0,
          subjects: [
            {
              id: 'importPipe',
              label: 'cat image > FIFO | importPipe',
              run: async () => {
                const cat = spawn('sh', ['-c', `cat ${q(src)} > ${q(fifo)}`], { stdio: 'ignore' })
                const fed = new Promise((resolve) => cat.on('close', resolve))
                await v.importPipe(fifo, size)
                await fed
              },
              cleanup: inspect(pipeAlloc),
            },
            {
              id: 'importStream',
              label: 'cat image | importStream',
              run: async () => {
                const cat = spawn('cat', [src], { stdio: ['ignore', 'pipe', 'inherit'] })
                await v.importStream(cat.stdout, size)
              },
              cleanup: inspect(libAlloc),
            },
            {
              id: 'cli',
              label: 'cat image | CLI volume import -',
              run: async () => void (await sh(`cat ${q(src)} | ${cli(`volume import ${VID} - --size ${size}`)}`, env)),
              cleanup: inspect(cliAlloc),
            },
          ],
          extra: [cliStart(pool.dirPath)],
        })

        // Peak RSS: each library call in a child process, each CLI command under GNU time.
        const setting2 = `${fsName(pipeFs)}, ${desc}`
        const outFile = join(out(pipeFs), 'rss-export.raw')
        const lib: [string, string[]][] = [
          ['importFile', ['import-file', pool.dirPath, VID, src]],
          ['exportToFile', ['export-file', pool.dirPath, VID, outFile]],
          ['exportStream', ['export-stream', pool.dirPath, VID]],
          ['importStream', ['import-stream', pool.dirPath, VID, src]],
        ]
        for (const [what, args] of lib) {
          await dropCaches()
          const r = await rssChild(ctx, args)
          rss.push({ what: `peak RSS of ${what} (child process)`, setting: setting2, mib: [r.peakRssBytes / MiB] })
          ctx.log(`  peak RSS of ${what}: ${(r.peakRssBytes / MiB).toFixed(1)} MiB`)
        }
        rmSync(outFile, { force: true })
        if (time) {
          const rssFile = join(out(pipeFs), 'rss.txt')
          const cmds: [string, string][] = [
            ['CLI volume import FILE', cli(`volume import ${VID} ${q(src)}`, rssFile)],
            ['CLI volume export FILE', cli(`volume export ${VID} ${q(outFile)}`, rssFile)],
            ['CLI volume export -', `${cli(`volume export ${VID} -`, rssFile)} > /dev/null`],
            ['CLI volume import -', `cat ${q(src)} | ${cli(`volume import ${VID} - --size ${size}`, rssFile)}`],
          ]
          for (const [what, script] of cmds) {
            await dropCaches()
            await sh(script, env)
            const kib = Number((await run('cat', [rssFile])).trim().split('\n').pop())
            rss.push({ what: `peak RSS of ${what}`, setting: setting2, mib: [kib / 1024] })
            ctx.log(`  peak RSS of ${what}: ${(kib / 1024).toFixed(1)} MiB`)
          }
          rmSync(outFile, { force: true })
        }
      }
    } finally {
      await ps.closeAll()
    }
    for (const a of allocated) {
      ctx.log(`  ${a.what} (${a.setting}): ${a.ratios.map((r) => r.toFixed(3)).join(', ')}`)
      result.checks.push(absoluteCheck({ id: `data-path/allocated/${a.what}/${a.setting}`, scenario: 'Data path: allocated bytes', setting: a.setting, what: a.what }, a.ratios, 'ratio', { comparison: '<=', limit: 1.02 }))
    }
    for (const r of rss) {
      result.checks.push(absoluteCheck({ id: `data-path/rss/${r.what}`, scenario: 'Data path: memory', setting: r.setting, what: r.what }, r.mib, 'MiB', { comparison: '<=', limit: 100 }))
    }
  },
}
