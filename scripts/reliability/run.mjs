#!/usr/bin/env node
// The full reliability run: the same ava suites `npm test` runs, with
// the full counts, and their figures collected into reliability-results.json.
//
//   npm run test:crash         >= 200 power-cut trials and >= 200 SIGKILL trials,
//                              and 100 of each on the batch path
//   npm run test:reliability   the above, plus 4 processes x 500 operations on
//                              8 volumes, 100 concurrent operations on one
//                              volume, the fault cases, the API bad-input
//                              properties with 200 runs each and 60 CLI runs
//
// Counts can be changed through the environment (RELIABILITY_POWERCUT_TRIALS,
// RELIABILITY_SIGKILL_TRIALS, RELIABILITY_BATCH_POWERCUT_TRIALS,
// RELIABILITY_BATCH_SIGKILL_TRIALS, RELIABILITY_EXT4_POWERCUT_TRIALS, RELIABILITY_EXT4_SIGKILL_TRIALS, RELIABILITY_CONC_OPS, RELIABILITY_PROP_RUNS,
// RELIABILITY_CLI_RUNS);
// RELIABILITY_SEED=<seed> replays one trial. Needs root (loop mounts).
import { spawn, execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { release } from 'node:os'

const which = process.argv[2] ?? 'all'
const SUITES = {
  crash: ['__test__/reliability-crash.test.ts', '__test__/reliability-kill.test.ts', '__test__/reliability-crash-ext4.test.ts'],
  all: ['__test__/reliability-crash.test.ts', '__test__/reliability-kill.test.ts', '__test__/reliability-crash-ext4.test.ts', '__test__/reliability-concurrency.test.ts',
    '__test__/reliability-faults.test.ts', '__test__/reliability-bad-input.test.ts', '__test__/reliability-cli-bad-input.test.ts'],
}
if (!SUITES[which]) {
  console.error(`usage: run.mjs crash|all`)
  process.exit(2)
}
const counts = {
  RELIABILITY_POWERCUT_TRIALS: '200',
  RELIABILITY_SIGKILL_TRIALS: '200',
  RELIABILITY_BATCH_POWERCUT_TRIALS: '100',
  RELIABILITY_BATCH_SIGKILL_TRIALS: '100',
  RELIABILITY_EXT4_POWERCUT_TRIALS: '100',
  RELIABILITY_EXT4_SIGKILL_TRIALS: '100',
  RELIABILITY_CONC_OPS: '500',
  RELIABILITY_PROP_RUNS: '200',
  RELIABILITY_CLI_RUNS: '60',
}
const env = { ...process.env, FORCE_COLOR: '0', REFLINK_POOL_REQUIRE_FS: '1' }
for (const [k, v] of Object.entries(counts)) env[k] ??= v

const git = (...a) => { try { return execFileSync('git', a, { encoding: 'utf8' }).trim() } catch { return null } }
const started = Date.now()
const commit = git('rev-parse', '--short', 'HEAD')
// One suite file at a time (--concurrency=1): the trials time the faults, so they should not fight for the 2 cores.
const args = ['ava', '--verbose', '--concurrency=1', '--timeout=3h', ...SUITES[which]]
const out = await new Promise((resolve) => {
  let text = ''
  const child = spawn('npx', args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.on('data', (d) => { text += d; process.stdout.write(d) })
  child.stderr.on('data', (d) => { text += d; process.stderr.write(d) })
  child.on('close', (code) => resolve({ code, text }))
})

const suites = {}
for (const m of out.text.matchAll(/ℹ ([^:\n]+): (\{.*\})$/gm)) suites[m[1].trim()] = JSON.parse(m[2])
const count = (re) => (out.text.match(re) ?? []).length
const result = {
  command: `npm run ${which === 'crash' ? 'test:crash' : 'test:reliability'}`,
  date: new Date(started).toISOString(),
  durationSeconds: Math.round((Date.now() - started) / 1000),
  commit,
  kernel: release(),
  counts: Object.fromEntries(Object.keys(counts).map((k) => [k, Number(env[k])])),
  // Verbose ava marks each test: ✔ passed, ✘ [fail], - skipped.
  tests: { passed: count(/^\s*✔ /gm), failed: count(/^\s*✘ \[fail\]/gm), skipped: count(/^\s*- .*\[skip/gm) },
  suites,
  violations: Object.values(suites).reduce((s, f) => s + (typeof f.violations === 'number' ? f.violations : 0), 0),
}
const file = process.env.RELIABILITY_RESULTS ?? 'reliability-results.json'
writeFileSync(file, JSON.stringify(result, null, 2) + '\n')
console.log(`\nfigures written to ${file}: ${result.tests.passed} passed, ${result.tests.failed} failed, ${result.violations} violations`)
process.exit(out.code === 0 && result.tests.failed === 0 ? 0 : 1)
