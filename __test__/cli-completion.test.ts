// Shell completion and the man page come from the command definitions:
// bash completes commands, options, option values and the pool's vids (run in
// a real bash against a pool on XFS); the man page lists every command and
// option of the tree and is shipped with the package.
import anyTest, { type TestFn } from 'ava'
import { execFile } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fsSuite } from './helpers/scratch-fs'
import { BIN, REPO, runCli } from './helpers/cli-run'
import { buildProgram } from '../ts/cli/main'
import { allCommands, commandTree } from '../ts/cli/command-tree'

const { test, fs } = fsSuite(anyTest as TestFn, 'xfs')
const run = promisify(execFile)

test('bash completion: commands, options, choices and the vids of the pool', async (t) => {
  const work = mkdtempSync(join(fs().dir, 'completion-'))
  const pool = join(work, 'pool')
  const env = { REFLINK_POOL_DIR: pool }
  t.is((await runCli(['init'], { env })).status, 0)
  for (const vid of ['appvms/web-1/root', 'appvms/web-2/root', 'vm-templates/debian/root']) {
    t.is((await runCli(['volume', 'create', vid, '--size', '1M'], { env })).status, 0)
  }
  const bin = join(work, 'bin')
  mkdirSync(bin)
  writeFileSync(join(bin, 'reflink-pool'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"\n`)
  chmodSync(join(bin, 'reflink-pool'), 0o755)
  const script = (await runCli(['completion', 'bash'])).stdout
  writeFileSync(join(work, 'completion.bash'), script)
  /** COMPREPLY for a command line whose last word is being completed. */
  const reply = async (line: string[], extraEnv: Record<string, string> = {}) => {
    const words = ['reflink-pool', ...line].map((w) => `'${w}'`).join(' ')
    const r = await run('bash', ['-c', `source completion.bash; COMP_WORDS=(${words}); COMP_CWORD=${line.length}; _reflink_pool; printf '%s\\n' "\${COMPREPLY[@]}"`], {
      cwd: work,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, ...extraEnv },
    })
    return r.stdout.split('\n').filter(Boolean)
  }
  t.deepEqual(await reply(['vol']), ['volume'])
  const re = await reply(['volume', 're'])
  for (const c of ['revert', 'revisions', 'resize', 'remove', 'receive']) t.true(re.includes(c), `volume ${c}`)
  t.true(re.every((c) => c.startsWith('re')))
  t.deepEqual(await reply(['volume', 'list', '--st']), ['--state'])
  t.deepEqual(await reply(['volume', 'list', '--state', '']), ['running', 'stopped', 'outdated', 'broken'])
  t.true((await reply(['volume', 'create', 'x', '--'])).includes('--read-only'), 'own options')
  t.true((await reply(['volume', 'create', 'x', '--'])).includes('--pool'), 'and the global ones')
  // A planted record name with an escape sequence is never offered (it would reach the terminal).
  writeFileSync(join(pool, '.reflink-pool', 'volumes', encodeURIComponent('appvms/x\x1b[2J/root') + '.json'), '{}')
  t.deepEqual(await reply(['volume', 'start', 'appvms/'], { REFLINK_POOL_DIR: pool }), ['appvms/web-1/root', 'appvms/web-2/root'])
  t.deepEqual(await reply(['--pool', pool, 'volume', 'info', 'vm']), ['vm-templates/debian/root'], '--pool on the line names the pool')
  t.false((await reply(['volume', 'start', ''])).some((c) => c.startsWith('appvms/')), 'no pool: no vids (and no error)')
  writeFileSync(join(work, 'debian.raw'), 'x')
  t.deepEqual(await reply(['volume', 'import', 'vm-templates/debian/root', 'deb'], { REFLINK_POOL_DIR: pool }), ['debian.raw'], 'files where a file goes')
  t.false((await runCli(['--help'])).stdout.includes('__complete'), 'the helper is hidden')
  for (const shell of ['zsh', 'fish']) t.regex((await runCli(['completion', shell])).stdout, /reflink-pool __complete -- /)
  t.is((await runCli(['completion', 'tcsh'])).status, 2)
})

anyTest('the man page is built from the command tree and shipped', async (t) => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'))
  t.is(pkg.man, './man/reflink-pool.1')
  t.true(pkg.files.includes('man'))
  const page = join(REPO, 'man', 'reflink-pool.1')
  t.true(existsSync(page), 'npm run build:ts writes it')
  const roff = readFileSync(page, 'utf8')
  const tree = commandTree(buildProgram())
  for (const node of allCommands(tree).slice(1)) {
    t.true(roff.includes(`.SS reflink\\-pool ${node.path.join(' ')}`.replace(/-/g, '\\-').replace(/\\\\-/g, '\\-')), `${node.path.join(' ')} has a section`)
    for (const o of node.options) if (!o.names.includes('--help')) t.true(roff.includes(`.B ${o.flags.replace(/-/g, '\\-')}`), `${node.path.join(' ')} ${o.flags}`)
  }
  t.false(roff.includes('__complete'))
  const rendered = await run('groff', ['-man', '-Tutf8', '-ww', page])
  t.is(rendered.stderr, '', 'groff renders it without warnings')
  t.regex(rendered.stdout.replace(new RegExp('.' + String.fromCharCode(8), 'g'), ''), /EXIT STATUS\n +0 success, 1 the operation was refused or failed, 2 +usage/)
})
