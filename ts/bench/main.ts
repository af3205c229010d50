// The benchmark harness (`npm run bench`, `reflink-pool bench`): sets up its
// own XFS, btrfs and ext4 loop filesystems when root (otherwise benchmarks a
// directory under the cwd and says so), builds the floor (from a checkout of
// the repository; from an npm install its rows are skipped), checks the peers
// (never installs them: it says what is missing and how to get it), runs the
// scenarios of docs/design.md §9, and writes a markdown table, a JSON file
// (schema in docs/bench-schema.md) and an SVG chart.
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { renderSvg } from './chart'
import { settingsFor, type BenchContext, type BenchFs, type ChildRunner, type Scenario } from './context'
import { mountScratch, unavailableReason, type FsKind, type ScratchFs } from '../util/loopfs'
import { renderMarkdown } from './markdown'
import { checkPeers, Floor, REPO_ROOT } from './peers'
import { loadProduct, Skip } from './product'
import { SCHEMA, tally, type BenchReport, type ScenarioResult } from './results'
import { batchScenario } from './scenarios/batch'
import { fleetScenario } from './scenarios/fleet'
import { cloneScenario } from './scenarios/clone'
import { dataPathScenario } from './scenarios/data-path'
import { fragmentedScenario } from './scenarios/fragmented'
import { eventLoopScenario } from './scenarios/event-loop'
import { massStartScenario } from './scenarios/mass-start'
import { memoryScenario } from './scenarios/memory'
import { scaleScenario } from './scenarios/scale'
import { sparseCopyScenario } from './scenarios/sparse-copy'
import { sendScenario } from './scenarios/send'
import { dropCaches, fsType, hasCommand, machine, run, settle } from './system'
import { painter } from '../util/style'

export const SCENARIOS: readonly Scenario[] = [
  cloneScenario, massStartScenario, sparseCopyScenario, memoryScenario, eventLoopScenario, scaleScenario, batchScenario, fleetScenario, sendScenario, dataPathScenario,
  fragmentedScenario,
]
/** Scenarios that measure in child processes (rss-child). */
const CHILD_SCENARIOS = [memoryScenario.id, dataPathScenario.id, fragmentedScenario.id]

const HELP = `Usage: npm run bench -- [--quick] [--only id,id] [--out DIR] [--strict]

Runs the reflink-pool benchmark scenarios against their peers and prints a
markdown table of ratios (medians of interleaved rounds, per-round min–max).

  --quick        fewer rounds and smaller sizes (same scenarios); under 3 minutes
  --only LIST    run only these scenarios: ${SCENARIOS.map((s) => s.id).join(', ')}
  --out DIR      where to write bench-<time>.{json,md,svg} (default: ./bench-results)
  --strict       exit 3 when a target is not met (default: exit 0; 1 when a scenario fails)

As root it builds its own XFS, btrfs and ext4 loop filesystems under /tmp;
otherwise everything runs in a temporary directory under the current one.
It installs nothing: a missing peer (qemu-img, @reflink/reflink) is reported
with how to get it, and its rows are skipped. The Rust floor is built with cargo
from a checkout of the repository; from an npm install its rows are skipped
unless REFLINK_POOL_FLOOR names a floor binary built there
(cargo build --release --example floor -p reflink-pool-core).
The JSON schema is documented in docs/bench-schema.md.`

interface Args {
  quick: boolean
  only: string[] | null
  out: string
  strict: boolean
  help: boolean
}

export function parseArgs(argv: readonly string[]): Args {
  const args: Args = { quick: false, only: null, out: 'bench-results', strict: false, help: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--quick') args.quick = true
    else if (a === '--strict') args.strict = true
    else if (a === '--help' || a === '-h') args.help = true
    else if (a === '--out') args.out = value()
    else if (a === '--only') args.only = value().split(',')
    else throw new Error(`unknown argument ${a} (see --help)`)
  }
  for (const id of args.only ?? []) {
    if (!SCENARIOS.some((s) => s.id === id)) throw new Error(`unknown scenario ${id}; known: ${SCENARIOS.map((s) => s.id).join(', ')}`)
  }
  return args
}

const T0 = Date.now()
const log = (msg: string) => process.stderr.write(`[bench +${((Date.now() - T0) / 1000).toFixed(1)}s] ${msg}\n`)
/** A log line about something missing or skipped: yellow on a terminal (ts/util/style.ts rules). */
const warn = (msg: string) => log(painter(process.stderr)('warning', msg))

/** Scratch filesystems sized for the run, or one directory under the cwd when they cannot be built. */
function setupFilesystems(quick: boolean, notes: string[], mounted: ScratchFs[]): BenchContext['fs'] {
  const kinds: FsKind[] = ['xfs', 'btrfs', 'ext4']
  const reason = kinds.map(unavailableReason).find((r) => r !== null)
  if (reason) {
    const dir = mkdtempSync(join(process.cwd(), '.reflink-pool-bench-'))
    const fs: BenchFs = { kind: 'cwd', dir, label: `cwd ${process.cwd()} (${fsType(dir)})` }
    notes.push(`No scratch filesystems (${reason}): every scenario ran in ${fs.label}, not on XFS/btrfs/ext4 loop devices.`)
    return { xfs: fs, btrfs: fs, ext4: fs }
  }
  const sizeMiB: Record<FsKind, number> = { xfs: 8192, btrfs: 4096, ext4: quick ? 8192 : 16384 }
  const out = {} as Record<FsKind, BenchFs>
  for (const kind of kinds) {
    log(`mkfs + mount ${kind} (${sizeMiB[kind]} MiB sparse loop image)`)
    const s = mountScratch(kind, { sizeMiB: sizeMiB[kind] })
    mounted.push(s)
    out[kind] = { kind, dir: s.dir, label: `${kind} on ${s.device}`, device: s.device }
  }
  return out
}

/**
 * How to run a harness module in a child process: plain node on compiled JS
 * (dist/, refreshed with tsc when running from source), because a TypeScript
 * loader adds tens of MiB to the child's RSS.
 */
function childRunner(notes: string[]): ChildRunner {
  if (__filename.endsWith('.js')) return { loader: 'node', argv: (m, a) => [process.execPath, join(__dirname, `${m}.js`), ...a] }
  const dist = join(REPO_ROOT, 'dist', 'bench')
  try {
    log('compiling ts/ to dist/ (tsc) so child processes run plain JS')
    execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO_ROOT, 'tsconfig.build.json')], { stdio: 'pipe' })
    // The CLI rows run bin/reflink-pool.js, which loads the bundle of these files when it is fresh.
    execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'bundle-cli.mjs')], { stdio: 'pipe' })
  } catch (e) {
    const out = String((e as { stdout?: Buffer }).stdout ?? '').split('\n')[0]
    notes.push(`tsc reported errors (${out}); child processes use the emitted dist/ files anyway.`)
  }
  if (existsSync(join(dist, 'rss-child.js'))) return { loader: 'node', argv: (m, a) => [process.execPath, join(dist, `${m}.js`), ...a] }
  notes.push('dist/ could not be built: child processes run through the tsx loader, which inflates their RSS (see the idle figure).')
  return { loader: 'tsx', argv: (m, a) => [process.execPath, ...process.execArgv, join(__dirname, `${m}.ts`), ...a] }
}

/**
 * Benchmark a release build of the addon from the current sources whatever
 * native/ holds (it may be a debug or stale build): cargo builds it (a no-op
 * when up to date) and the generated loader is pointed at it through
 * NAPI_RS_NATIVE_LIBRARY_PATH, which child processes inherit.
 */
async function useReleaseAddon(notes: string[]): Promise<void> {
  if (require.cache[join(REPO_ROOT, 'native', 'index.js')]) {
    notes.push('the addon was loaded before the harness started (CLI): measuring native/ as built, not a fresh release build')
    return
  }
  if (!existsSync(join(REPO_ROOT, 'Cargo.toml'))) {
    notes.push('measuring the installed native addon (an npm install has no sources to build a release addon from)')
    return
  }
  if (!hasCommand('cargo')) {
    notes.push('cargo is not installed: measuring native/ as built, not a fresh release build (rustup: https://rustup.rs)')
    return
  }
  try {
    log('building the release addon (cargo build --release -p reflink-pool-node)')
    await run('cargo', ['build', '--quiet', '--release', '-p', 'reflink-pool-node', '--manifest-path', join(REPO_ROOT, 'Cargo.toml')])
    const dir = join(REPO_ROOT, 'target', 'bench-native')
    mkdirSync(dir, { recursive: true })
    const addon = join(dir, 'reflink-pool.node')
    copyFileSync(join(REPO_ROOT, 'target', 'release', 'libreflink_pool_node.so'), addon)
    process.env.NAPI_RS_NATIVE_LIBRARY_PATH = addon
  } catch (e) {
    notes.push(`could not build the release addon (${(e as Error).message.split('\n')[0]}); using native/ as built`)
  }
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[:.]/g, '-')
}

/** Write `report` as JSON, markdown and SVG into `outDir`; returns the paths. */
export function writeReport(report: BenchReport, outDir: string): { json: string; md: string; svg: string } {
  mkdirSync(outDir, { recursive: true })
  const base = join(outDir, `bench-${stamp(new Date(report.startedAt))}`)
  const paths = { json: `${base}.json`, md: `${base}.md`, svg: `${base}.svg` }
  writeFileSync(paths.json, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(paths.md, renderMarkdown(report))
  writeFileSync(paths.svg, renderSvg(report))
  return paths
}

export async function runBench(argv: string[]): Promise<number> {
  let args: Args
  try {
    args = parseArgs(argv)
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`)
    return 2
  }
  if (args.help) {
    process.stdout.write(HELP + '\n')
    return 0
  }
  const started = new Date()
  const loadAtStart = loadavg()
  const notes: string[] = []
  const mounted: ScratchFs[] = []
  const settings = settingsFor(args.quick)
  if (args.quick) notes.push('--quick: fewer rounds and smaller sizes than a full run (see `settings`); same scenarios and targets.')
  let floor: Floor | null = null
  let cwdDir: string | null = null
  const cleanup = () => {
    floor?.stop()
    for (const m of mounted.reverse()) {
      try {
        m.unmount()
      } catch (e) {
        log(`could not unmount ${m.dir}: ${(e as Error).message}`)
      }
    }
    if (cwdDir) rmSync(cwdDir, { recursive: true, force: true })
  }
  const onSignal = () => {
    cleanup()
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const scenarios: ScenarioResult[] = []
  let ctx: BenchContext | undefined
  try {
    const fs = setupFilesystems(args.quick, notes, mounted)
    if (fs.xfs.kind === 'cwd') cwdDir = fs.xfs.dir
    let floorProblem: string | null = null
    try {
      floor = await Floor.start(log)
    } catch (e) {
      floorProblem = (e as Error).message.split('\n')[0]
      notes.push(`floor unavailable: ${floorProblem}`)
      warn(`floor unavailable: ${floorProblem}`)
    }
    const needsChild = !args.only || args.only.some((id) => CHILD_SCENARIOS.includes(id))
    const child: ChildRunner = needsChild ? childRunner(notes) : { loader: 'node', argv: () => { throw new Error('no child runner: the memory scenario was not selected') } }
    const missingPeers = await checkPeers()
    for (const m of missingPeers) {
      notes.push(`peer unavailable: ${m}`)
      warn(`peer unavailable: ${m}`)
    }
    await useReleaseAddon(notes)
    const product = loadProduct()
    for (const p of product.problems) notes.push(p)
    const canDropCaches = await dropCaches()
    if (!canDropCaches) notes.push('page cache not dropped between runs (not root)')
    const all = [fs.xfs, fs.btrfs, fs.ext4]
    const settleAll = async () => {
      const ms = await settle([...new Set(all.map((f) => f.dir))], all.flatMap((f) => (f.device ? [f.device] : [])))
      if (ms > 1000) log(`waited ${(ms / 1000).toFixed(1)} s for the filesystems to go idle`)
    }
    ctx = { quick: args.quick, settings, fs, floor, floorProblem, product, missingPeers, canDropCaches, child, log, settle: settleAll }
    for (const s of SCENARIOS) {
      if (args.only && !args.only.includes(s.id)) continue
      const result: ScenarioResult = { id: s.id, title: s.title, description: s.description, measurements: [], checks: [] }
      scenarios.push(result)
      const t0 = Date.now()
      log(`scenario ${s.title}`)
      try {
        await s.run(ctx, result)
      } catch (e) {
        if (e instanceof Skip) result.skipped = [...(result.skipped ?? []), e.message]
        else {
          result.error = (e as Error).stack?.split('\n').slice(0, 3).join(' ') ?? String(e)
          log(`scenario ${s.id} failed: ${(e as Error).stack}`)
        }
      }
      log(`scenario ${s.id} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    cleanup()
  }
  const report: BenchReport = {
    schema: SCHEMA,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    quick: args.quick,
    command: `npm run bench --${argv.length ? ' ' + argv.join(' ') : ''}`,
    machine: machine(loadAtStart),
    filesystems: ctx ? { xfs: ctx.fs.xfs.label, btrfs: ctx.fs.btrfs.label, ext4: ctx.fs.ext4.label } : {},
    settings: { ...settings, cloneExtents: settings.cloneExtents.join(','), memoryImageBytes: settings.memoryImageBytes.join(','), dropCaches: ctx?.canDropCaches ?? false },
    notes,
    scenarios,
  }
  const paths = writeReport(report, resolve(args.out))
  // The files stay plain; on a terminal, targets not met stand out.
  const paint = painter(process.stdout)
  process.stdout.write(renderMarkdown(report).replace(/\*\*not met\*\*/g, (m) => paint('error', m)))
  log(`wrote ${paths.json}, ${paths.md}, ${paths.svg}`)
  const t = tally(report)
  if (scenarios.some((s) => s.error)) return 1
  return args.strict && t.notMet > 0 ? 3 : 0
}

if (require.main === module) {
  runBench(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`${e.stack ?? e.message}\n`)
      process.exit(1)
    },
  )
}
