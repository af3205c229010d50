// The README's error-code table is API documentation: one row per code in
// ERROR_CODES (none missing, none invented), and each file a row cites as its
// test really asserts that code. A code without a test must say **untested**.
import test from 'ava'
import { existsSync, readFileSync } from 'node:fs'
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
    const m = /^\| `([A-Z_]+)` \|.*\| (.+) \|$/.exec(line)
    if (m) rows.set(m[1], m[2])
  }
  return rows
}

const rows = errorCodeRows()

test('the README has an Error codes section with one row per library code', (t) => {
  t.true(rows.size > 0, 'no table rows found under "## Error codes"')
  t.deepEqual([...rows.keys()].sort(), Object.keys(ERROR_CODES).sort())
})

test('every test file the table cites exists and asserts its code', (t) => {
  for (const [code, testedBy] of rows) {
    const cited = [...testedBy.matchAll(/`((?:__test__|crates)\/[^`]+\.(?:ts|rs))`/g)].map((m) => m[1])
    if (cited.length === 0) {
      t.true(testedBy.includes('**untested**'), `${code}: cites no test and does not say **untested**`)
      continue
    }
    for (const file of cited) {
      const path = join(root, file)
      t.true(existsSync(path), `${code}: ${file} does not exist`)
      if (existsSync(path)) t.true(readFileSync(path, 'utf8').includes(code), `${code}: ${file} never mentions it`)
    }
  }
})
