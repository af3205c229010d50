// What every scenario gets: the sizes and round counts of this run (full or
// --quick), where each filesystem is mounted, the floor, the product, and the
// hooks that run between timed steps.
import type { Floor } from './peers'
import { Skip, type Product } from './product'
import type { ScenarioResult } from './results'
import { canReflink } from './system'

export interface Settings {
  /** Rounds of the sparse-copy scenario (each peer once per round); at least 5. */
  sparseRounds: number
  cloneExtents: number[]
  /** Rounds for the clone scenario's small templates (a few ms each, so noisy: more rounds). */
  cloneRounds: number
  /** Rounds for the 10 000-extent template. */
  cloneRoundsLarge: number
  sparseImageBytes: number
  sparseDataFraction: number
  memoryImageBytes: number[]
  memoryRuns: number
  eventLoopCopies: number
  eventLoopRounds: number
  massStartVolumes: number
  massStartInFlight: number
  massStartRounds: number
  scaleVolumes: number
  /** Rounds of open/listVolumes; createVolume (a few ms, noisy) gets `scaleCreateRounds`. */
  scaleRounds: number
  scaleCreateRounds: number
  /** Rounds of the data-path rows (each a whole image copy per peer). */
  dataPathRounds: number
  /** Extents of the fragmented image of the memory-under-fragmentation scenario. */
  fragmentedExtents: number
  /** Batch scenario: volumes per batch (1-extent template), per batch of the 1 000-extent template, per start/stop batch; rounds. */
  batchVolumes: number
  batchExtentVolumes: number
  batchStartVolumes: number
  batchRounds: number
}

const GiB = 1024 ** 3

/** A full run: the sizes of docs/design.md §9. */
const FULL: Settings = {
  sparseRounds: 9,
  cloneExtents: [1, 1000, 10000],
  cloneRounds: 31,
  cloneRoundsLarge: 15,
  sparseImageBytes: 4 * GiB,
  sparseDataFraction: 0.1,
  memoryImageBytes: [1 * GiB, 4 * GiB],
  memoryRuns: 3,
  eventLoopCopies: 16,
  eventLoopRounds: 5,
  massStartVolumes: 1000,
  massStartInFlight: 8,
  massStartRounds: 5,
  scaleVolumes: 10000,
  scaleRounds: 7,
  scaleCreateRounds: 41,
  dataPathRounds: 5,
  fragmentedExtents: 1_000_000,
  batchVolumes: 1000,
  batchExtentVolumes: 1000,
  batchStartVolumes: 1000,
  batchRounds: 5,
}

/** --quick: the same scenarios and targets with fewer rounds and smaller sizes (under 3 minutes here). */
const QUICK: Settings = {
  ...FULL,
  sparseRounds: 7,
  cloneRounds: 21,
  cloneRoundsLarge: 13,
  sparseImageBytes: 0.5 * GiB,
  memoryRuns: 1,
  eventLoopRounds: 3,
  massStartVolumes: 30,
  scaleVolumes: 10000,
  scaleRounds: 5,
  scaleCreateRounds: 21,
  dataPathRounds: 3,
  batchExtentVolumes: 100,
  batchStartVolumes: 200,
  batchRounds: 3,
}

export function settingsFor(quick: boolean): Settings {
  return { ...(quick ? QUICK : FULL) }
}

/** A directory a scenario works in, and what it is. */
export interface BenchFs {
  kind: 'xfs' | 'btrfs' | 'ext4' | 'cwd'
  dir: string
  /** For the table: `xfs (loop)` or `cwd: /home/x (ext2/ext3)`. */
  label: string
  /** The loop device (`/dev/loop3`) of a scratch filesystem. */
  device?: string
}

/** The filesystem's name for a table's setting column: its kind, or the cwd label. */
export function fsName(fs: BenchFs): string {
  return fs.kind === 'cwd' ? fs.label : fs.kind
}

/** XFS and btrfs, or the one cwd directory when there are no scratch filesystems. */
export function reflinkFilesystems(ctx: BenchContext): BenchFs[] {
  return ctx.fs.xfs.kind === 'cwd' ? [ctx.fs.xfs] : [ctx.fs.xfs, ctx.fs.btrfs]
}

export interface BenchContext {
  quick: boolean
  settings: Settings
  /** Filesystems by role; without root all point at one directory under the cwd. */
  fs: { xfs: BenchFs; btrfs: BenchFs; ext4: BenchFs }
  floor: Floor | null
  floorProblem: string | null
  product: Product
  /** Peers that could not be set up, with the reason. */
  missingPeers: string[]
  /** How to start a child process running a compiled harness module (`rss-child`). */
  child: ChildRunner
  /** Whether the page cache can be dropped (root). */
  canDropCaches: boolean
  log(msg: string): void
  /** Sync every filesystem and wait until their devices are idle (before a setting is timed). */
  settle(): Promise<void>
}

export interface Scenario {
  id: string
  title: string
  description: string
  run(ctx: BenchContext, result: ScenarioResult): Promise<void>
}

export interface ChildRunner {
  /** `node` on the compiled JS (dist/), or `node + tsx loader` when dist could not be built. */
  loader: 'node' | 'tsx'
  /** argv to spawn `module` (a harness module name such as `rss-child`) with `args`. */
  argv(module: string, args: string[]): string[]
}

/**
 * A scenario run on each reflink filesystem in turn (reflinkFilesystems): one
 * that cannot reflink, or whose run throws Skip, is listed as skipped under its
 * label and the next one still runs.
 */
export function reflinkScenario(
  scenario: Omit<Scenario, 'run'> & { runOn(ctx: BenchContext, fs: BenchFs, result: ScenarioResult): Promise<void> },
): Scenario {
  const { runOn, ...about } = scenario
  return {
    ...about,
    async run(ctx, result) {
      for (const fs of reflinkFilesystems(ctx)) {
        try {
          if (!canReflink(fs.dir)) throw new Skip('the filesystem cannot reflink')
          await runOn(ctx, fs, result)
        } catch (e) {
          if (!(e instanceof Skip)) throw e
          result.skipped = [...(result.skipped ?? []), `${fs.label}: ${e.message}`]
        }
      }
    },
  }
}
