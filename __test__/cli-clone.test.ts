// `reflink-pool clone` all or nothing per volume, through the real binary
// (docs/design.md §7): Ctrl-C mid-run on XFS and ENOSPC on a small ext4 leave
// only complete volumes, the run says which exist (--json too), and a re-run
// with --skip-existing finishes the job.
import anyTest, { type ExecutionContext, type TestFn } from 'ava'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fsSuite } from './helpers/scratch-fs'
import { runCli, runJson, spawnCli, sampleImage } from './helpers/cli-run'

const MiB = 1024 * 1024
const xfs = fsSuite(anyTest as TestFn, 'xfs')
const ext4 = fsSuite(anyTest as TestFn, 'ext4', { sizeMiB: 96 })
const TPL = 'vm-templates/base/root'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

async function poolWithTemplate(t: ExecutionContext, base: string, init: string[] = []): Promise<{ dir: string; env: Record<string, string> }> {
  const dir = join(mkdtempSync(join(base, 'clone-')), 'pool')
  const env = { REFLINK_POOL_DIR: dir }
  for (const args of [['init', ...init], ['volume', 'create', TPL, '--size', '8M']]) {
    const r = await runCli(args, { env })
    t.is(r.status, 0, r.stderr)
  }
  const imp = await runCli(['volume', 'import', TPL, '-'], { env, input: sampleImage() })
  t.is(imp.status, 0, imp.stderr)
  return { dir, env }
}

/** Every file under `dir` (relative), recursively. */
function walk(dir: string, rel = ''): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(dir, join(rel, e.name)) : [join(rel, e.name)],
  )
}

/**
 * The crash rule seen from outside: the listed clones are exactly `made`, each
 * holds the template's data (checked by sha256 for `sample` of them), no temp
 * file is left and no image exists for a vid that is not listed.
 */
async function checkOnlyComplete(t: ExecutionContext, dir: string, env: Record<string, string>, made: string[], sample: string[]) {
  const list = await runJson(['volume', 'list'], { env })
  const listed = (list.json as { vid: string }[]).map((v) => v.vid).filter((v) => v !== TPL).sort()
  t.deepEqual(listed, [...made].sort(), 'the listed clones are exactly the ones the run says it made')
  const want = sha(sampleImage())
  for (const vid of sample) {
    const out = await runCli(['volume', 'export', vid, '-'], { env })
    t.is(sha(out.stdoutBytes), want, `${vid} holds the template data`)
  }
  const files = walk(dir)
  t.deepEqual(files.filter((f) => f.includes('~')), [], 'no temp file left')
  t.deepEqual(files.filter((f) => f.endsWith('.batch')), [], 'no batch intent left')
  const listedSet = new Set(listed)
  const orphans = files.filter((f) => f.startsWith('appvms/') && !listedSet.has(f.replace(/(-dirty|-precache)?\.img$/, '')))
  t.deepEqual(orphans, [], 'no image of a volume that is not listed')
}

xfs.test('Ctrl-C mid-run: exit 130, only complete volumes, --json names them; --skip-existing finishes', async (t) => {
  const { dir, env } = await poolWithTemplate(t, xfs.fs().dir)
  const n = 3000
  const child = spawnCli(['clone', TPL, 'appvms/c-{n}/root', '-n', String(n), '--batch', '100', '--json'], { env })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  // Interrupt once the first batch is listed: the run is then between or inside batches.
  const records = join(dir, '.reflink-pool', 'volumes')
  let exited = false
  void closed.then(() => (exited = true))
  while (!exited && readdirSync(records).filter((f) => f.startsWith('appvms') && !f.includes('~')).length === 0) await new Promise((r) => setTimeout(r, 2))
  child.kill('SIGINT')
  const status = await closed
  t.is(status, 130, stderr)
  t.regex(stderr, /reflink-pool: interrupted \(ABORT_ERR\)/)
  const report = JSON.parse(stdout) as { error: { code: string }; made: string[]; missing: string[] }
  t.is(report.error.code, 'ABORT_ERR')
  t.true(report.made.length >= 100 && report.made.length < n, `made ${report.made.length}`)
  t.is(report.made.length % 100, 0, 'whole batches only')
  t.is(report.made.length + report.missing.length, n)
  await checkOnlyComplete(t, dir, env, report.made, [report.made[0], report.made.at(-1)!])

  const again = await runJson(['clone', TPL, 'appvms/c-{n}/root', '-n', String(n), '--batch', '1000', '--skip-existing'], { env })
  t.is(again.result.status, 0, again.result.stderr)
  t.is(again.json.skipped.length, report.made.length)
  t.deepEqual(again.json.made, report.missing)
  t.deepEqual(again.json.methods, { reflink: report.missing.length }, 'reflink on XFS')
  await checkOnlyComplete(t, dir, env, [...report.made, ...report.missing], [report.missing[0], report.missing.at(-1)!])
})

xfs.test('existing targets are refused before anything is cloned, with the hint to --skip-existing', async (t) => {
  const { dir, env } = await poolWithTemplate(t, xfs.fs().dir)
  const first = await runJson(['clone', TPL, 'appvms/e-{n}/root', '-n', '3'], { env })
  t.is(first.result.status, 0, first.result.stderr)
  const r = await runCli(['clone', TPL, 'appvms/e-{n}/root', '-n', '5'], { env })
  t.is(r.status, 1)
  t.regex(r.stderr, /3 targets are volumes already \(appvms\/e-1\/root, appvms\/e-2\/root, appvms\/e-3\/root\); nothing was cloned: add --skip-existing .*\(ERR_VOLUME_EXISTS\)/)
  await checkOnlyComplete(t, dir, env, first.json.made, [])
  // A rerun with nothing left to make says so, not that snapshots come later.
  const rerun = await runCli(['clone', TPL, 'appvms/e-{n}/root', '-n', '3', '--skip-existing'], { env })
  t.is(rerun.status, 0, rerun.stderr)
  t.regex(rerun.stdout, /^cloned: +0 × /m)
  t.regex(rerun.stdout, /^skipped: +3 that existed already$/m)
  t.regex(rerun.stdout, /^copy method: +none \(nothing cloned\)$/m)
  t.notRegex(rerun.stdout, /per clone/)
})

ext4.test('ENOSPC on ext4 (copies, no reflink): exit 1, only complete volumes, --skip-existing finishes once there is room', async (t) => {
  const base = ext4.fs().dir
  const { dir, env } = await poolWithTemplate(t, base, ['--no-setup-check'])
  // Leave room for about 6 clones (2.5 MiB of data each) of the 20 asked for.
  const filler = join(base, 'filler')
  const free = statfsSync(base).bavail * statfsSync(base).bsize
  writeFileSync(filler, Buffer.alloc(Math.max(0, free - 16 * MiB), 1))
  const r = await runJson(['clone', TPL, 'appvms/f-{n}/root', '-n', '20', '--batch', '2'], { env })
  t.is(r.result.status, 1, r.result.stderr)
  t.regex(r.result.stderr, /no space left on device.*made \d+ of 20 volumes.*--skip-existing.*\(ENOSPC\)/)
  const report = r.json as { error: { code: string }; made: string[]; missing: string[] }
  t.is(report.error.code, 'ENOSPC')
  t.true(report.made.length > 0 && report.made.length < 20, `made ${report.made.length}`)
  await checkOnlyComplete(t, dir, env, report.made, report.made)

  rmSync(filler)
  const again = await runJson(['clone', TPL, 'appvms/f-{n}/root', '-n', '20', '--skip-existing'], { env })
  t.is(again.result.status, 0, again.result.stderr)
  t.deepEqual(again.json.made, report.missing)
  t.deepEqual(Object.keys(again.json.methods), ['copy-range'], 'ext4 cannot reflink: the data is copied')
  await checkOnlyComplete(t, dir, env, [...report.made, ...report.missing], report.missing)
})
