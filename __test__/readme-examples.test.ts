// The README's API examples run as written, in order, on one pool on a
// loop-mounted XFS: each ```ts block under "### Examples" becomes a program whose
// `reflink-pool` import points at the package root (ts/index.ts), whose pool
// directory is the scratch one, and whose body (top-level await, as a user's
// ES module would have) is wrapped in an async function so that the CommonJS
// package root loads through require; then the results are checked.
import anyTest, { type TestFn } from 'ava'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { ReflinkPool } from '../ts/index'
import { fsSuite } from './helpers/scratch-fs'

const REPO = join(__dirname, '..')
const { test, fs } = fsSuite(anyTest as TestFn, 'xfs')
const run = promisify(execFile)
/** tsx by absolute URL: the examples run in a directory outside the repository. */
const TSX = pathToFileURL(require.resolve('tsx')).href

function examples(): string[] {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8')
  const start = readme.indexOf('\n### Examples')
  const section = readme.slice(start, readme.indexOf('\n### ', start + 1))
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])
}

test('the README has the four API examples: clone a template, run a VM, revert, export', (t) => {
  const blocks = examples()
  t.is(blocks.length, 4)
  t.regex(blocks[0], /importVolume\(template\)/)
  t.regex(blocks[1], /vm\.start\(\)[\s\S]*vm\.stop\(\)/)
  t.regex(blocks[2], /vm\.revert\(\)/)
  t.regex(blocks[3], /exportStream\(\)/)
})

test('the README examples run as written and do what they say', async (t) => {
  const work = mkdtempSync(join(fs().dir, 'readme-'))
  const dirPath = join(work, 'vms')
  const image = Buffer.alloc(8 << 20)
  image.write('debian root filesystem', 4096)
  image.fill(7, 4 << 20, 5 << 20)
  writeFileSync(join(work, 'debian.raw'), image)
  const outputs: string[] = []
  for (const [i, block] of examples().entries()) {
    const lines = block
      .replaceAll("from 'reflink-pool'", `from ${JSON.stringify(join(REPO, 'ts', 'index.ts'))}`)
      .replaceAll("'/var/lib/vms'", JSON.stringify(dirPath))
      .split('\n')
    const imports = lines.filter((l) => l.startsWith('import '))
    const body = lines.filter((l) => !l.startsWith('import '))
    const source = [...imports, 'async function main() {', ...body, '}', 'main().catch((e) => { console.error(e); process.exit(1) })', ''].join('\n')
    const file = join(work, `example-${i + 1}.ts`)
    writeFileSync(file, source)
    const r = await run(process.execPath, [`--import=${TSX}`, file], { cwd: work }).catch((e) => {
      t.fail(`example ${i + 1} failed:\n${source}\n${e.stderr ?? e}`)
      throw e
    })
    outputs.push(r.stdout)
  }
  // 1: twenty clones, each a reflink of the template.
  t.is(outputs[0].trim().split('\n').length, 20)
  t.regex(outputs[0], /^appvms\/web-1\/root reflink$/m)
  t.notRegex(outputs[0], / (copy-range|read-write)$/m)
  // 2: the run was committed; the state before it is revision 2 (the import's revision 1 was pruned).
  t.regex(outputs[1], /^\{ '2': '\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ' \}$/m)
  // 3 and 4: after the revert the export is the template's data again.
  t.deepEqual(readFileSync(join(work, 'web-1.raw')), image)
  const pool = await ReflinkPool.open({ dirPath })
  try {
    t.is((await pool.listVolumes()).length, 21)
    const web1 = await pool.loadVolume('appvms/web-1/root')
    t.deepEqual(Object.keys(await web1.revisions()), ['3'], 'revert consumed revision 2 and kept the run as revision 3')
    const web2 = await pool.loadVolume('appvms/web-2/root')
    t.true((await web2.usage()).shared > 0, 'clones share extents with the template')
  } finally {
    await pool.close()
  }
})
