// The library walkthrough: every script in examples/ is shown in the README
// as it is in the file (the README's ```js blocks are the files, not copies
// that can drift), and `npm test` runs them, in order, as plain Node ES
// modules (the oldest Node that package.json allows: no `await using`) on one
// pool on a loop-mounted XFS, importing the package by its name (Node resolves
// 'reflink-pool' inside this package to its own dist/), then checks the pool.
import anyTest, { type TestFn } from 'ava'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ReflinkPool } from '../ts/index'
import { fsSuite } from './helpers/scratch-fs'

const REPO = join(__dirname, '..')
const EXAMPLES = join(REPO, 'examples')
const { test, fs } = fsSuite(anyTest as TestFn, 'xfs')
const run = promisify(execFile)

const scripts = readdirSync(EXAMPLES).filter((f) => f.endsWith('.mjs')).sort()

anyTest('the README shows every example script as it is in examples/', (t) => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8')
  t.deepEqual(scripts, ['1-template-and-clones.mjs', '2-run-and-commit.mjs', '3-revert.mjs', '4-export.mjs', '5-tear-down.mjs'])
  for (const name of scripts) {
    const source = readFileSync(join(EXAMPLES, name), 'utf8')
    t.true(readme.includes(`[examples/${name}](examples/${name})`), `${name} is linked`)
    t.true(readme.includes('```js\n' + source + '```'), `${name} is shown as it is in the file`)
    t.notRegex(source, /await using/, `${name}: Node 20 has no await using`)
  }
  t.regex(readFileSync(join(EXAMPLES, '1-template-and-clones.mjs'), 'utf8'), /pool\.cloneVolumes\(/)
  t.regex(readFileSync(join(EXAMPLES, '2-run-and-commit.mjs'), 'utf8'), /pool\.startVolumes\([\s\S]*pool\.stopVolumes\(/)
  t.regex(readFileSync(join(EXAMPLES, '5-tear-down.mjs'), 'utf8'), /pool\.removeVolumes\(/)
})

test('the examples run as written, with plain node, and do what they say', async (t) => {
  const work = mkdtempSync(join(fs().dir, 'examples-'))
  const dirPath = join(work, 'vms')
  const image = Buffer.alloc(8 << 20)
  image.write('debian root filesystem', 4096)
  image.fill(7, 4 << 20, 5 << 20)
  writeFileSync(join(work, 'debian.raw'), image)
  const outputs: string[] = []
  for (const name of scripts) {
    if (name.startsWith('5-')) {
      // Before the tear-down: what the first four did.
      t.deepEqual(readFileSync(join(work, 'web-1.raw')), image, 'after the revert, the export is the template data again')
      const pool = await ReflinkPool.open({ dirPath })
      try {
        t.is((await pool.listVolumes()).length, 101)
        const web2 = await pool.loadVolume('appvms/web-2/root')
        t.true((await web2.usage()).shared > 0, 'clones share extents with the template')
        t.is(Object.keys(await web2.revisions()).length, 1, 'the run of web-2 was committed')
      } finally {
        await pool.close()
      }
    }
    const r = await run(process.execPath, [join(EXAMPLES, name)], { cwd: work, env: { ...process.env, REFLINK_POOL_DIR: dirPath } }).catch((e) => {
      t.fail(`${name} failed:\n${e.stderr ?? e}`)
      throw e
    })
    outputs.push(r.stdout)
  }
  t.regex(outputs[0], /^template reflink$/m)
  t.regex(outputs[0], /^cloned 100 \{ reflink: 100 \}$/m)
  t.regex(outputs[1], /^appvms\/web-1\/root \{ '\d+': '\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ' \}$/m)
  t.regex(outputs[2], /^reverted appvms\/web-1\/root /m)
  t.regex(outputs[4], /^removed 101 volumes; left: 0$/m)
})
