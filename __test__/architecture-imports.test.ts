// The import graph of ts/ points down (docs/design.md §1):
//
//   cli  bench          (bench reached from the CLI only by `reflink-pool bench`)
//     \  /
//     index             (the package root)
//      |
//     pool              (policy)
//      |
//   root modules        (ts/*.ts: native primitives, errors, validation)
//      |
//     util              (neutral helpers: units, colour, stats, scratch filesystems)
//
// Every static import, dynamic import() and require() of a relative path in
// ts/** and __test__/helpers/** is parsed and checked against these rules.
import test from 'ava'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { execFileSync } from 'node:child_process'

const REPO = join(__dirname, '..')
const TS = join(REPO, 'ts')

type Layer = 'cli' | 'bench' | 'index' | 'pool' | 'root' | 'util' | 'test-helper'

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  )
}

function layerOf(file: string): Layer {
  const rel = relative(TS, file)
  if (rel.startsWith('..')) return 'test-helper'
  const top = rel.split('/')[0]
  if (top === 'cli' || top === 'bench' || top === 'pool' || top === 'util') return top
  if (rel === 'index.ts') return 'index'
  return 'root'
}

/** Which layers each layer may import (besides itself). */
const ALLOWED: Record<Layer, Layer[]> = {
  util: [],
  root: ['util'],
  pool: ['root', 'util'],
  index: ['pool', 'root', 'util'],
  cli: ['index', 'pool', 'root', 'util'],
  bench: ['index', 'pool', 'root', 'util'],
  'test-helper': ['cli', 'index', 'pool', 'root', 'util'],
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
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(IMPORT)) {
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
