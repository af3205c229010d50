// The benchmark harness's writers on synthetic data: how a target is judged,
// the markdown table, the SVG chart and the JSON file (schema
// reflink-pool-bench/1, docs/bench-schema.md). No timing happens here.
import test from 'ava'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { budgetShare, renderSvg } from '../ts/bench/chart'
import { timeInterleaved } from '../ts/bench/interleave'
import { parseArgs, SCENARIOS, writeReport } from '../ts/bench/main'
import { checksTable, renderMarkdown } from '../ts/bench/markdown'
import { absoluteCheck, measurement, ratioCheck, SCHEMA, tally, type BenchReport } from '../ts/bench/results'
import { summarize } from '../ts/util/stats'

const base = { scenario: 'Clone', setting: 'xfs, 1000 extents', what: 'copyFile / floor' }

function syntheticReport(): BenchReport {
  const subject = [11, 10.5, 30, 10.2, 10.8]
  const floor = [10, 10, 10, 10, 10]
  return {
    schema: SCHEMA,
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:01:00.000Z',
    quick: true,
    command: 'npm run bench -- --quick',
    machine: { kernel: '6.1', cpus: 2, cpuModel: 'test cpu', memoryMiB: 1024, node: 'v20', root: true, uvThreadpoolSize: null, loadAverage: { start: [0.5, 0.4, 0.3], end: [0.6, 0.4, 0.3] } },
    filesystems: { xfs: 'xfs on /dev/loop9', btrfs: 'btrfs on /dev/loop10', ext4: 'ext4 on /dev/loop11' },
    settings: { rounds: 5 },
    notes: ['synthetic'],
    scenarios: [
      {
        id: 'clone',
        title: '1. Clone',
        description: 'synthetic',
        measurements: [measurement('clone/xfs/1000-extents/copyFile', 'copyFile', 'ms', subject, { durable: true, detail: { method: 'reflink', extents: 1000 } })],
        checks: [
          ratioCheck({ id: 'clone/xfs/1000/floor', ...base }, subject, floor, { comparison: '<=', limit: 1.1 }),
          ratioCheck({ id: 'clone/xfs/1000/cp', ...base, what: 'copyFile / cp | tee', note: 'peer does not fsync' }, subject, floor, null),
          absoluteCheck({ id: 'memory/4GiB', scenario: 'Memory', setting: '4 GiB', what: 'peak RSS' }, [120, 130, 125], 'MiB', { comparison: '<=', limit: 100 }),
          ratioCheck({ id: 'mass-start/speedup', scenario: 'Mass start', setting: 'xfs', what: 'parallel / serial' }, [30, 32], [10, 20], { comparison: '>=', limit: 1.5 }),
        ],
      },
      { id: 'scale', title: '6. Scale', description: 'synthetic', measurements: [], checks: [], skipped: ['ReflinkPool unavailable'] },
    ],
  }
}

test('a ratio row is the ratio of the medians, with the min–max of per-round ratios, judged against the target', (t) => {
  const c = ratioCheck({ id: 'x', ...base }, [11, 10.5, 30, 10.2, 10.8], [10, 10, 10, 10, 10], { comparison: '<=', limit: 1.1 })
  t.is(c.unit, 'ratio')
  t.is(c.measured, 1.08)
  t.deepEqual(c.range, [1.02, 3])
  t.true(c.met)
  const over = ratioCheck({ id: 'x', ...base }, [12, 12, 12], [10, 10, 10], { comparison: '<=', limit: 1.1 })
  t.false(over.met)
  const faster = ratioCheck({ id: 'y', ...base }, [30, 32], [10, 20], { comparison: '>=', limit: 1.5 })
  t.is(faster.measured, 31 / 15)
  t.true(faster.met)
  t.is(ratioCheck({ id: 'z', ...base }, [1], [1], null).met, null)
  t.false(absoluteCheck({ id: 'n', ...base }, [], 'ms', { comparison: '<=', limit: 1 }).met, 'no samples is never met')
})

test('summaries: median of odd and even counts, empty is NaN', (t) => {
  t.deepEqual(summarize([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 })
  t.is(summarize([4, 1, 3, 2]).median, 2.5)
  t.true(Number.isNaN(summarize([]).median))
})

test('the markdown table has one row per check with target and result; skips and notes are listed', (t) => {
  const report = syntheticReport()
  const table = checksTable(report.scenarios[0].checks)
  const rows = table.split('\n')
  t.is(rows.length, 2 + 4)
  t.regex(rows[2], /\| Clone \| xfs, 1000 extents \| copyFile \/ floor \| 1\.08× \| 1\.02× – 3\.00× \| ≤ 1\.10× \| met \|/)
  t.regex(rows[3], /copyFile \/ cp \\\| tee \(peer does not fsync\) .*\| \(info\) \| – \|/, 'pipes are escaped, informational rows say so')
  t.regex(rows[4], /125\.0 MiB .*\| ≤ 100\.0 MiB \| \*\*not met\*\* \|/)
  const md = renderMarkdown(report)
  t.regex(md, /Targets: 2 met, 1 not met, 1 parts skipped\./)
  t.regex(md, /6\. Scale: skipped: ReflinkPool unavailable/)
  t.regex(md, /- synthetic/)
  t.deepEqual(tally(report), { met: 2, notMet: 1, skipped: 1 })
})

test('the SVG chart draws one bar per targeted row, coloured by the verdict', (t) => {
  const report = syntheticReport()
  const svg = renderSvg(report)
  t.true(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'))
  t.true(svg.trimEnd().endsWith('</svg>'))
  t.is((svg.match(/<rect x=/g) ?? []).length, 3, 'informational rows have no bar')
  t.is((svg.match(/<rect [^>]*fill="#c0392b"/g) ?? []).length, 1, 'one red bar: the unmet memory target')
  const mass = report.scenarios[0].checks[3]
  t.true(budgetShare(mass) < 1, 'a ≥ target met is left of the line')
})

test('the JSON file follows schema reflink-pool-bench/1 and the three files are written', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'))
  try {
    const paths = writeReport(syntheticReport(), dir)
    const json = JSON.parse(readFileSync(paths.json, 'utf8')) as BenchReport
    t.is(json.schema, 'reflink-pool-bench/1')
    for (const key of ['startedAt', 'finishedAt', 'quick', 'command', 'machine', 'filesystems', 'settings', 'notes', 'scenarios']) t.true(key in json, key)
    for (const s of json.scenarios) {
      t.true(SCENARIOS.some((known) => known.id === s.id), `scenario id ${s.id} is one the harness runs`)
      for (const m of s.measurements) {
        t.is(m.summary.n, m.samples.length)
        t.regex(m.id, /^[a-z-]+\//)
      }
      for (const c of s.checks) {
        t.is(c.range.length, 2)
        t.true(c.met === null || typeof c.met === 'boolean')
        if (c.target) t.true(c.target.comparison === '<=' || c.target.comparison === '>=')
      }
    }
    t.regex(readFileSync(paths.md, 'utf8'), /^# reflink-pool benchmark \(--quick/)
    t.regex(readFileSync(paths.svg, 'utf8'), /<\/svg>/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('arguments: --quick, --only, --out; unknown ones are refused', (t) => {
  t.deepEqual(parseArgs(['--quick', '--only', 'clone,scale', '--out', 'x']), { quick: true, only: ['clone', 'scale'], out: 'x', strict: false, help: false })
  t.throws(() => parseArgs(['--only', 'nope']), { message: /unknown scenario nope/ })
  t.throws(() => parseArgs(['--fast']), { message: /unknown argument --fast/ })
  t.throws(() => parseArgs(['--out']), { message: /--out needs a value/ })
})

test('interleaved rounds: every peer runs once a round and each runs first equally often (two peers alternate)', async (t) => {
  const firsts: string[] = []
  const ran: string[][] = []
  const peer = (id: string) => ({
    id,
    run: (round: number) => {
      ;(ran[round] ??= []).push(id)
      if (ran[round].length === 1) firsts.push(id)
      return 1
    },
  })
  const samples = await timeInterleaved([peer('a'), peer('b')], { rounds: 6 })
  t.deepEqual(samples.get('a'), [1, 1, 1, 1, 1, 1])
  t.true(ran.every((r) => [...r].sort().join() === 'a,b'))
  t.deepEqual(firsts, ['a', 'b', 'a', 'b', 'a', 'b'])
})
