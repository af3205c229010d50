#!/usr/bin/env node
// `npm test`: runs the Rust core tests and the ava suites, shows their output,
// and ends with one line `N passed, N failed` summing both (CI reads that line).
// A skipped test counts as neither; suites that must not skip turn skips into
// failures themselves (REFLINK_POOL_REQUIRE_FS=1).
import { spawn } from 'node:child_process'

function runTee(cmd, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d) })
    child.stderr.on('data', (d) => { out += d; process.stderr.write(d) })
    child.on('close', (code) => resolve({ code: code ?? 1, out }))
  })
}

const strip = (s) => s.replace(new RegExp(String.fromCharCode(27) + '\\[[0-9;]*m', 'g'), '') // ANSI colours
let passed = 0
let failed = 0

// Root-only core tests are #[ignore]d (reported as ignored elsewhere) and included here as root.
// `child_holds_lock` is also #[ignore]d: it is the body of a child process that a lock test spawns.
const rootOnly = process.getuid?.() === 0 ? ['--', '--include-ignored', '--skip', 'child_holds_lock'] : []
const cargo = await runTee('cargo', ['test', '--workspace', '--exclude', 'reflink-pool-node', '--color', 'never', ...rootOnly])
let cargoCounted = false
for (const m of strip(cargo.out).matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
  passed += Number(m[1]); failed += Number(m[2]); cargoCounted = true
}
if (cargo.code !== 0 && (!cargoCounted || failed === 0)) failed += 1 // build failure counts as a failure

const extra = process.argv.slice(2)
const ava = await runTee('npx', ['ava', ...extra], { FORCE_COLOR: '0' })
const text = strip(ava.out)
const count = (re) => { const m = text.match(re); return m ? Number(m[1]) : 0 }
// ava prints "N tests passed" only when nothing failed; otherwise count the ✔ lines.
const avaPassed = count(/^\s*(\d+) tests? passed/m) || (text.match(/^\s*✔ (?!\[expected fail\])/gm) ?? []).length
const avaFailed = count(/^\s*(\d+) tests? failed/m) + count(/^\s*(\d+) uncaught exceptions?/m) +
  count(/^\s*(\d+) unhandled rejections?/m) + count(/^\s*(\d+) tests? remained pending/m)
passed += avaPassed
failed += avaFailed
if (ava.code !== 0 && avaFailed === 0) failed += 1 // ava failed without a countable test (crash, timeout)
const skipped = count(/^\s*(\d+) tests? skipped/m) + count(/^\s*(\d+) tests? todo/m)

console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
process.exit(failed > 0 ? 1 : 0)
