// The import graph of ts/ points down (docs/design.md §1):
//
//   cli  bench          (bench reached from the CLI only by `reflink-pool bench`)
//     \  /
//     index             (the package root)
//      |
//     pool              (policy: open, registry, adoption, recovery, batches)
//      |
//    volume             (one volume: lifecycle, revisions, data in and out, send)
//      |
//    store              (records, locks, states, names, the file boundary)
//      |
//   root modules        (ts/*.ts: native primitives, errors, validation)
//      |
//     util              (neutral helpers: units, colour, stats, scratch filesystems)
//
// Every static import, dynamic import() and require() of a relative path in
// ts/** and __test__/helpers/** is parsed and checked against these rules; a
// type import counts like any other (it is what ties files into a circle).
// Inside a folder, no import circle spans more than two files.
import test from 'ava'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { execFileSync } from 'node:child_process'

const REPO = join(__dirname, '..')
const TS = join(REPO, 'ts')

type Layer = 'cli' | 'bench' | 'index' | 'pool' | 'volume' | 'store' | 'root' | 'util' | 'test-helper'

const FOLDERS = ['cli', 'bench', 'pool', 'volume', 'store', 'util'] as const

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  )
}

function layerOf(file: string): Layer {
  const rel = relative(TS, file)
  if (rel.startsWith('..')) return 'test-helper'
  const top = rel.split('/')[0]
  if ((FOLDERS as readonly string[]).includes(top) && rel !== top) return top as Layer
  if (rel === 'index.ts') return 'index'
  return 'root'
}

/** Which layers each layer may import (besides itself). */
const ALLOWED: Record<Layer, Layer[]> = {
  util: [],
  root: ['util'],
  store: ['root', 'util'],
  volume: ['store', 'root', 'util'],
  pool: ['volume', 'store', 'root', 'util'],
  index: ['pool', 'volume', 'store', 'root', 'util'],
  cli: ['index', 'pool', 'volume', 'store', 'root', 'util'],
  bench: ['index', 'pool', 'volume', 'store', 'root', 'util'],
  'test-helper': ['cli', 'index', 'pool', 'volume', 'store', 'root', 'util'],
}

/** The one module allowed to reach the bench from the product: the `reflink-pool bench` command. */
const BENCH_ENTRY = join(TS, 'cli', 'commands', 'bench.ts')

const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]*)['"]/gm

function resolveTs(from: string, spec: string): string {
  const base = resolve(dirname(from), spec)
  for (const candidate of [`${base}.ts`, join(base, 'index.ts'), base]) {
    try {
      readFileSync(candidate)
      return candidate
    } catch {}
  }
  return base
}

export interface Edge {
  from: string
  to: string
}

function edges(): Edge[] {
  const sources = [...files(TS), ...files(join(REPO, '__test__', 'helpers'))]
  const out: Edge[] = []
  for (const file of sources) {
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const target = resolveTs(file, m[1])
      if (!target.startsWith(TS + '/')) continue // package.json, native/, other helpers
      out.push({ from: file, to: target })
    }
  }
  return out
}

test('every import between the layers of ts/ points down', (t) => {
  const all = edges()
  t.true(all.length > 100, `parsed the imports (${all.length} edges)`)
  const wrong = all.filter(({ from, to }) => {
    const a = layerOf(from)
    const b = layerOf(to)
    if (a === b) return false
    if (b === 'bench') return from !== BENCH_ENTRY
    return !ALLOWED[a].includes(b)
  })
  t.deepEqual(
    wrong.map(({ from, to }) => `${relative(REPO, from)} (${layerOf(from)}) -> ${relative(REPO, to)} (${layerOf(to)})`),
    [],
  )
})

/** The import circles (strongly connected sets of files, Tarjan) among `nodes` along `all`. */
export function circles(nodes: string[], all: Edge[]): string[][] {
  const next = new Map(nodes.map((n) => [n, [] as string[]]))
  for (const { from, to } of all) if (from !== to && next.has(from) && next.has(to)) next.get(from)!.push(to)
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const out: string[][] = []
  const visit = (v: string) => {
    index.set(v, index.size)
    low.set(v, index.get(v)!)
    stack.push(v)
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = []
      for (let w = stack.pop()!; ; w = stack.pop()!) {
        c.push(w)
        if (w === v) break
      }
      if (c.length > 1) out.push(c.sort())
    }
  }
  for (const n of nodes) if (!index.has(n)) visit(n)
  return out
}

test('the circle finder finds a planted circle of three and none in a chain', (t) => {
  const e = (from: string, to: string): Edge => ({ from, to })
  t.deepEqual(circles(['a', 'b', 'c', 'd'], [e('a', 'b'), e('b', 'c'), e('c', 'a'), e('c', 'd')]), [['a', 'b', 'c']])
  t.deepEqual(circles(['a', 'b', 'c'], [e('a', 'b'), e('b', 'c')]), [])
})

test('inside a folder of ts/, no import circle spans more than two files (type imports count)', (t) => {
  const all = edges()
  const dirs = [TS, ...FOLDERS.map((f) => join(TS, f))]
  for (const dir of dirs) {
    const nodes = files(dir).filter((f) => dirname(f) === dir)
    const big = circles(nodes, all).filter((c) => c.length > 2)
    t.deepEqual(big.map((c) => c.map((f) => relative(REPO, f))), [], relative(REPO, dir) || 'ts')
  }
})

test('the policy layer (ts/pool, ts/volume, ts/store) has no import circle at all, across its folders too (type imports count)', (t) => {
  // The public `volume.pool` is a ReflinkPool by a declaration merge from pool.ts, not an import up.
  const nodes = ['pool', 'volume', 'store'].flatMap((f) => files(join(TS, f)))
  t.deepEqual(circles(nodes, edges()).map((c) => c.map((f) => relative(REPO, f))), [])
})

test('one file boundary: below the package root, only ts/store/files.ts imports the binding, its task wiring or the internal natives', (t) => {
  const natives = ['binding.ts', 'native-control.ts', 'internal.ts'].map((f) => join(TS, f))
  const policy: Layer[] = ['pool', 'volume', 'store']
  const boundary = join(TS, 'store', 'files.ts')
  const reaching = edges().filter((e) => natives.includes(e.to) && policy.includes(layerOf(e.from)))
  t.deepEqual([...new Set(reaching.map((e) => relative(REPO, e.from)))], [relative(REPO, boundary)])
})

test('nothing but the bench command imports ts/bench; the bench reaches the CLI nowhere', (t) => {
  const all = edges()
  const intoBench = all.filter((e) => layerOf(e.to) === 'bench' && layerOf(e.from) !== 'bench').map((e) => relative(REPO, e.from))
  t.deepEqual([...new Set(intoBench)], ['ts/cli/commands/bench.ts'])
  t.deepEqual(all.filter((e) => layerOf(e.from) === 'bench' && layerOf(e.to) === 'cli').map((e) => relative(REPO, e.from)), [])
})

test('loading the CLI loads no native code (--help and --version work before the addon is built)', (t) => {
  const script = "require('./ts/cli/main'); console.log(JSON.stringify(Object.keys(require.cache).filter((k) => /[\\\\/](native|binding)[\\\\/.]/.test(k))))"
  const out = execFileSync(process.execPath, ['--import=tsx', '-e', script], { cwd: REPO, encoding: 'utf8' })
  t.deepEqual(JSON.parse(out.trim()), [])
})

test('the CLI bundle that bin/reflink-pool.js loads keeps the native binding outside it and loads it only for a pool', (t) => {
  // Built by npm run build (scripts/bundle-cli.mjs), as the CLI tests need dist/.
  const bundle = join(REPO, 'dist', 'cli', 'main.bundle.js')
  const script = `const m = require(${JSON.stringify(bundle)}); m.buildProgram(); console.log(JSON.stringify(Object.keys(require.cache).map((k) => require('path').relative(${JSON.stringify(REPO)}, k))))`
  const loaded = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: REPO, encoding: 'utf8' }).trim()) as string[]
  t.deepEqual(loaded, ['dist/cli/main.bundle.js'], 'one file, no native code')
  t.regex(readFileSync(bundle, 'utf8'), /require\("\.\/\.\.\/\.\.\/native\/index\.js"\)/, 'the binding is required from native/, not inlined')
})

test('the CLI bundle has a V8 code cache made after real commands, which this Node accepts', (t) => {
  // scripts/cli-code-cache.cjs, run by the build: bin/reflink-pool.js compiles the bundle with it.
  const bundle = join(REPO, 'dist', 'cli', 'main.bundle.js')
  const cache = join(REPO, 'dist', 'cli', 'main.bundle.cache')
  t.true(statSync(cache).mtimeMs >= statSync(bundle).mtimeMs, 'made after the bundle')
  // Compiled as the bin compiles it (bin/bundle.js).
  const script = `const fs = require('fs'); const { compileBundle } = require(${JSON.stringify(join(REPO, 'bin', 'bundle.js'))});
    const { script } = compileBundle(${JSON.stringify(bundle)}, fs.readFileSync(${JSON.stringify(cache)}));
    console.log(JSON.stringify({ rejected: script.cachedDataRejected, bytes: fs.statSync(${JSON.stringify(cache)}).size }))`
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: REPO, encoding: 'utf8' }).trim()) as { rejected: boolean; bytes: number }
  t.false(out.rejected, 'V8 accepts it')
  // Made after commands ran, it holds their functions: more than the top level alone.
  t.true(out.bytes > 100_000, `${out.bytes} bytes`)
})
