// Bad input through the command line: generated invalid vids,
// sizes and revisions given to every volume command. Each run must exit
// non-zero with one error line `reflink-pool: <message> (<CODE>)` and leave the
// pool byte-for-byte unchanged (manifest before and after). Each case spawns
// the CLI, so the count is small here (RELIABILITY_CLI_RUNS; the full run uses more).
import test from 'ava'
import fc from 'fast-check'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fsSuite } from './helpers/scratch-fs'
import { loadApi } from './helpers/reliability-api'
import { diffManifest, manifest } from './helpers/reliability-files'
import { goodComponent, invalidVid } from './helpers/reliability-badinput'
import { envCount, logFigures } from './helpers/reliability-report'

const RUNS = envCount('RELIABILITY_CLI_RUNS', 8)
const SEED = Number(process.env.RELIABILITY_SEED ?? 99)
const ENTRY = join(__dirname, 'helpers', 'reliability-cli-entry.ts')
const xfs = fsSuite(test, 'xfs', { sizeMiB: 320 })

function cli(pool: string, args: string[]): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', ENTRY, '--pool', pool, ...args], { encoding: 'utf8' }, (err, _stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr })
    })
  })
}

const textVid = invalidVid.filter((v): v is string => typeof v === 'string' && v.length > 0 && !v.startsWith('-') && !v.includes('\0'))
const badSizeText = fc.oneof(fc.constantFrom('-1', '1.5', 'NaN', 'abc', '', '9007199254740993', '1e400', '-0.5', '0x', 'Infinity', '4096.5'), fc.string().filter((s) => !/^\s*\d+\s*[kmgtpe]?i?b?\s*$/i.test(s) && !s.startsWith('-')))
const badRevText = fc.oneof(fc.constantFrom('0', '-1', '1.5', 'abc', '999999', '9007199254740993', 'NaN'), fc.integer({ min: 100, max: 1e9 }).map(String))

xfs.test.serial('every volume command refuses invalid vids, sizes and revisions with one coded error line and changes nothing', async (t) => {
  const dir = join(xfs.fs().dir, 'pool')
  const pool = await loadApi().ReflinkPool.open({ dirPath: dir, setupCheck: true })
  await pool.createVolume({ vid: 'appvms/vm/private', name: 'private', size: 65536, saveOnStop: true, rw: true })
  await pool.close()
  // Start from a settled pool: any open (the CLI opens per command, good or bad) writes the derived
  // record cache .reflink-pool/volumes.cache.json once the record directory is 2 s old. One valid
  // command after that writes it, so the manifests below compare what the bad commands do.
  await new Promise((r) => setTimeout(r, 2100))
  t.is((await cli(dir, ['volume', 'list'])).status, 0, 'a valid command works')
  const figures = { runs: 0, violations: [] as string[] }
  const cases = fc.oneof(
    fc.tuple(fc.constantFrom('create', 'start', 'stop', 'info', 'revisions', 'verify', 'remove', 'revert', 'resize'), textVid).map(([cmd, vid]) =>
      cmd === 'create' ? ['volume', 'create', vid, '--size', '4096'] : cmd === 'resize' ? ['volume', 'resize', vid, '8192'] : ['volume', cmd, vid]),
    badSizeText.map((s) => ['volume', 'create', 'appvms/new/private', `--size=${s}`]),
    badSizeText.map((s) => ['volume', 'resize', 'appvms/vm/private', `--`, s]),
    badRevText.map((r) => ['volume', 'revert', 'appvms/vm/private', r]),
    goodComponent.map((c) => ['volume', 'start', `appvms/unknown${c}/private`]),
    fc.constant<string[]>(['volume', 'import', 'appvms/vm/private', join(dir, 'does-not-exist.raw')]),
  )
  await fc.assert(fc.asyncProperty(cases, async (args) => {
    const before = manifest(dir)
    const { status, stderr } = await cli(dir, args)
    figures.runs++
    const problems: string[] = []
    if (status === 0) problems.push('exit status 0')
    if (!/^reflink-pool: .+ \((ERR_[A-Z_]+|E[A-Z]+)\)\n$/.test(stderr)) problems.push(`stderr is not one coded line: ${JSON.stringify(stderr.slice(0, 200))}`)
    const diff = diffManifest(before, manifest(dir))
    if (diff.length) problems.push(`changed the pool: ${diff.slice(0, 3).join('; ')}`)
    if (problems.length) figures.violations.push(`reflink-pool ${args.map((a) => JSON.stringify(a)).join(' ')}: ${problems.join('; ')}`)
    return problems.length === 0
  }), { numRuns: RUNS, seed: SEED, endOnFailure: true }).catch(() => {})
  logFigures(t, 'bad input/CLI', { runs: figures.runs, violations: figures.violations.length })
  t.deepEqual(figures.violations, [])
})
