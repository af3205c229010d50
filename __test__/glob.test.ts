// The `--match` pattern language (ts/util/glob.ts): path globs over vids.
import test from 'ava'
import { GlobSyntaxError, globMatcher, matchGlob } from '../ts/util/glob'

const VIDS = [
  'appvms/web-1/root',
  'appvms/web-1/private',
  'appvms/web-2/root',
  'appvms/db/root',
  'appvms/nested/deep/root',
  'vm-templates/debian/root',
]

const CASES: Array<[string, string[]]> = [
  ['appvms/*/root', ['appvms/web-1/root', 'appvms/web-2/root', 'appvms/db/root']],
  ['appvms/web-?/*', ['appvms/web-1/root', 'appvms/web-1/private', 'appvms/web-2/root']],
  ['*/root', []],
  ['**/root', ['appvms/web-1/root', 'appvms/web-2/root', 'appvms/db/root', 'appvms/nested/deep/root', 'vm-templates/debian/root']],
  ['appvms/**/root', ['appvms/web-1/root', 'appvms/web-2/root', 'appvms/db/root', 'appvms/nested/deep/root']],
  ['appvms/**', VIDS.slice(0, 5)],
  ['appvms/web-[12]/root', ['appvms/web-1/root', 'appvms/web-2/root']],
  ['appvms/web-[!1]/root', ['appvms/web-2/root']],
  ['appvms/web-[0-1]/*', ['appvms/web-1/root', 'appvms/web-1/private']],
  ['appvms/db/root', ['appvms/db/root']],
  ['appvms/d?/root', ['appvms/db/root']],
  ['appvms/nested?deep/root', []],
  ['appvms/nested[/]deep/root', []],
  ['appvms/nested[!a]deep/root', []],
]

for (const [pattern, want] of CASES) {
  test(`${pattern} selects ${want.length} vids`, (t) => {
    t.deepEqual(matchGlob(pattern, VIDS), want)
  })
}

test('regex metacharacters and escapes are literal', (t) => {
  t.true(globMatcher('a.b')('a.b'))
  t.false(globMatcher('a.b')('axb'))
  t.true(globMatcher('a\\*b')('a*b'))
  t.false(globMatcher('a\\*b')('axb'))
  t.true(globMatcher('x(1)+$')('x(1)+$'))
  // An unclosed class is a literal `[`, as in the shell.
  t.true(globMatcher('web[1')('web[1'))
  // A `]` first in a class is a member.
  t.true(globMatcher('[]a]')(']'))
})

test('a reversed range is a GlobSyntaxError naming the pattern', (t) => {
  const err = t.throws(() => globMatcher('web-[9-1]'), { instanceOf: GlobSyntaxError })
  t.regex(err!.message, /web-\[9-1\]/)
})
