// The README's CLI walkthrough runs as written: the first ```sh block under
// "## CLI walkthrough" is run by bash (errexit, pipefail) on a loop-mounted
// XFS, with `reflink-pool` on PATH as this checkout's bin and `ssh backup`
// reaching a second pool on the same filesystem. A command the CLI no longer
// accepts, or an output the next command cannot use, fails this test.
import anyTest, { type TestFn } from 'ava'
import { execFile } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fsSuite } from './helpers/scratch-fs'
import { BIN, REPO, runJson } from './helpers/cli-run'

const { test, fs } = fsSuite(anyTest as TestFn, 'xfs')
const run = promisify(execFile)

function walkthrough(): string {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8')
  const start = readme.indexOf('\n## CLI walkthrough')
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1))
  const block = /```sh\n([\s\S]*?)```/.exec(section)
  if (!block) throw new Error('no ```sh block under "## CLI walkthrough"')
  return block[1]
}

anyTest('the walkthrough goes template -> import -> clone 100 -> start/stop -> usage -> send -> tear down', (t) => {
  const steps = walkthrough()
  const order = [/volume import /, /clone .* -n 100/, /volume start /, /volume stop /, /^reflink-pool usage/m, /volume send .*\| ssh backup .*volume receive/, /volume remove/]
  let at = 0
  for (const step of order) {
    const found = steps.slice(at).search(step)
    t.true(found >= 0, `${step} after the step before`)
    at += Math.max(found, 0)
  }
})

test('every command of the README walkthrough runs as written', async (t) => {
  const work = mkdtempSync(join(fs().dir, 'walkthrough-'))
  const pool = join(work, 'vms')
  const backup = join(work, 'backup-vms')
  const bin = join(work, 'bin')
  mkdirSync(bin)
  writeFileSync(join(bin, 'reflink-pool'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"\n`)
  // `ssh HOST CMD...`: CMD runs here, on the backup pool, with stdin passed through, as ssh would.
  writeFileSync(join(bin, 'ssh'), `#!/bin/sh\nshift\nREFLINK_POOL_DIR=${JSON.stringify(backup)} exec sh -c "$*"\n`)
  for (const f of ['reflink-pool', 'ssh']) chmodSync(join(bin, f), 0o755)
  const image = Buffer.alloc(16 << 20)
  image.write('debian root filesystem', 4096)
  image.fill(7, 8 << 20, 9 << 20)
  writeFileSync(join(work, 'debian.raw'), image)

  const script = walkthrough().replaceAll('/var/lib/vms', pool)
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, FORCE_COLOR: '0', COLUMNS: '80' }
  delete (env as Record<string, string | undefined>).REFLINK_POOL_DIR
  const r = await run('bash', ['-euo', 'pipefail', '-x', '-c', script], { cwd: work, env, maxBuffer: 64 << 20 }).catch((e) => {
    const trace = String(e.stderr ?? '').split('\n').filter((l) => l.startsWith('+ ')).pop()
    t.fail(`the walkthrough failed at: ${trace}\n${e.stderr ?? e}`)
    throw e
  })
  t.regex(r.stdout, /^cloned: +100 × vm-templates\/debian\/root/m)
  t.regex(r.stdout, /: committed \(revision \d+ holds the state before it\)$/m)
  t.regex(r.stdout, /^VID +.*ALLOCATED +EXCLUSIVE$/m, 'usage printed its table')
  const usage = r.stdout.slice(r.stdout.search(/^VID +.*ALLOCATED/m)).split('\n\n')[0]
  for (const line of usage.split('\n')) t.true(line.length <= 80, `usage fits 80 columns: ${line}`)
  t.deepEqual((await runJson(['--pool', pool, 'volume', 'list'])).json, [], 'the tear-down removed everything')
  const received = (await runJson(['--pool', backup, 'volume', 'info', 'vm-templates/debian/root'])).json
  t.is(received.size, image.length, 'the other host holds the template')
})
