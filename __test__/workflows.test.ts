// The GitHub workflows: each file passes action-validator (the workflow schema),
// and ci.yml keeps its release gates. A deliberately broken copy
// must fail validation, so the validator is known to be checking.
import test from 'ava'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { repoRoot, run } from './helpers/pack-install'

const workflowsDir = join(repoRoot, '.github', 'workflows')
const validator = join(repoRoot, 'node_modules', '@action-validator', 'cli', 'cli.mjs')
const workflowFiles = readdirSync(workflowsDir).filter((f) => /\.ya?ml$/.test(f))

interface Job {
  needs?: string | string[]
  permissions?: Record<string, string>
  strategy?: { matrix?: { include?: Array<Record<string, string>> } }
  steps?: Array<{ run?: string; uses?: string; with?: Record<string, unknown> }>
  if?: string
}
interface Workflow {
  permissions?: Record<string, string>
  concurrency?: { group?: string; 'cancel-in-progress'?: boolean }
  jobs: Record<string, Job>
}

const ci = parse(readFileSync(join(workflowsDir, 'ci.yml'), 'utf8')) as Workflow
const runs = (job: Job) => (job.steps ?? []).map((s) => s.run ?? '').join('\n')

test('there are workflow files', (t) => {
  t.true(workflowFiles.includes('ci.yml'), workflowFiles.join(', '))
})

for (const file of workflowFiles) {
  test(`action-validator accepts ${file}`, async (t) => {
    const r = await run(process.execPath, [validator, join(workflowsDir, file)])
    t.is(r.code, 0, r.stdout + r.stderr)
  })
}

test('action-validator rejects a broken workflow (control)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'workflow-'))
  try {
    const broken = readFileSync(join(workflowsDir, 'ci.yml'), 'utf8').replace('runs-on: ubuntu-latest', 'runs-onn: ubuntu-latest')
    writeFileSync(join(dir, 'ci.yml'), broken)
    const r = await run(process.execPath, [validator, join(dir, 'ci.yml')])
    t.not(r.code, 0)
    t.regex(r.stdout + r.stderr, /runs-onn/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('ci.yml: read-only token by default, cancel-in-progress concurrency', (t) => {
  t.deepEqual(ci.permissions, { contents: 'read' })
  t.true(ci.concurrency?.['cancel-in-progress'])
  for (const [name, job] of Object.entries(ci.jobs)) {
    if (name !== 'publish') t.is(job.permissions, undefined, `${name} widens permissions`)
  }
})

test('ci.yml: lint runs cargo fmt, clippy -D warnings, the TS linter and type-check', (t) => {
  const lint = runs(ci.jobs.lint)
  t.regex(lint, /cargo fmt --all --check/)
  t.regex(lint, /cargo clippy .*-D warnings/)
  t.regex(lint, /npm run lint/)
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  t.regex(pkg.scripts.lint, /eslint .*tsc .*--noEmit/)
})

test('ci.yml: builds the four Linux targets with napi -x (cargo-zigbuild), glibc 2.17 floor for gnu', (t) => {
  const matrix = ci.jobs.build.strategy?.matrix?.include ?? []
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { napi: { targets: string[] } }
  t.deepEqual(matrix.map((m) => m.target).sort(), [...pkg.napi.targets].sort())
  for (const m of matrix) t.is(m['zig-target'], m.target.endsWith('-gnu') ? `${m.target}.2.17` : m.target)
  t.regex(runs(ci.jobs.build), /npm run build:native -- --target \$\{\{ matrix.zig-target \}\} -x/)
  t.regex(runs(ci.jobs.build), /pip" install .*cargo-zigbuild==.* ziglang==/)
})

test('ci.yml: test jobs use the built artifacts; the filesystem job runs npm test as root with REFLINK_POOL_REQUIRE_FS=1', (t) => {
  for (const name of ['test-gnu', 'test-musl', 'filesystem']) {
    const job = ci.jobs[name]
    t.is(job.needs, 'build', name)
    t.true((job.steps ?? []).some((s) => s.uses?.startsWith('actions/download-artifact@')), name)
    t.notRegex(runs(job), /build:native|napi build/, `${name} rebuilds the addon`)
  }
  t.regex(runs(ci.jobs.filesystem), /sudo .*REFLINK_POOL_REQUIRE_FS=1 npm test/)
})

test('ci.yml: publish is gated on every other job, only on tags, with provenance', (t) => {
  const publish = ci.jobs.publish
  const others = Object.keys(ci.jobs).filter((n) => n !== 'publish' && n !== 'build') // build is implied by the test jobs
  t.deepEqual([...(publish.needs as string[])].sort(), others.sort())
  t.regex(publish.if ?? '', /refs\/tags\/v/)
  t.deepEqual(publish.permissions, { contents: 'read', 'id-token': 'write' })
  t.regex(runs(publish), /npm publish --provenance/)
})
