// The README is the page a user reads first: at most 350 lines, and its
// error-code table is API documentation: one row per code in ERROR_CODES
// (none missing, none invented). Which test asserts a code is the test's own
// business (its title names the code); here: every code is asserted by at
// least one test, in TypeScript or in the Rust core.
import test from 'ava'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ERROR_CODES } from '../ts/errors'

const root = join(__dirname, '..')
const readme = readFileSync(join(root, 'README.md'), 'utf8')

function errorCodeRows(): Map<string, string> {
  const start = readme.indexOf('\n## Error codes')
  const end = readme.indexOf('\n## ', start + 1)
  const section = readme.slice(start, end === -1 ? undefined : end)
  const rows = new Map<string, string>()
  for (const line of section.split('\n')) {
    const m = /^\| `([A-Z_]+)` \| (.+) \|$/.exec(line)
    if (m) rows.set(m[1], m[2])
  }
  return rows
}

const rows = errorCodeRows()

test('the README is at most 350 lines, and the measurements, reliability and releasing live in docs/', (t) => {
  t.true(readme.split('\n').length <= 350, `${readme.split('\n').length} lines`)
  for (const doc of ['docs/benchmarks.md', 'docs/reliability.md', 'docs/releasing.md']) t.true(readme.includes(`](${doc})`), `links ${doc}`)
  const digest = readme.slice(readme.indexOf('\n## Performance'), readme.indexOf('\n## ', readme.indexOf('\n## Performance') + 1))
  t.true(digest.split('\n').filter((l) => l.startsWith('|')).length <= 10, 'the benchmark digest is at most 10 table lines')
})

test('the README has an Error codes section with one row per library code', (t) => {
  t.true(rows.size > 0, 'no table rows found under "## Error codes"')
  t.deepEqual([...rows.keys()].sort(), Object.keys(ERROR_CODES).sort())
  for (const [code, meaning] of rows) t.false(meaning.includes('__test__'), `${code}: the table cites no tests`)
})

test('every library code is asserted by at least one test', (t) => {
  const files = [
    ...readdirSync(join(root, '__test__'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => join(root, '__test__', f)),
    ...readdirSync(join(root, 'crates', 'core', 'tests')).filter((f) => f.endsWith('.rs')).map((f) => join(root, 'crates', 'core', 'tests', f)),
  ].filter((f) => !f.endsWith('readme.test.ts'))
  const text = files.map((f) => readFileSync(f, 'utf8')).join('\n')
  for (const code of Object.keys(ERROR_CODES)) t.true(text.includes(code), `${code} appears in no test`)
})
