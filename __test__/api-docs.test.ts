// The generated API reference (typedoc): its landing page is the README, and
// every exported member has documentation (typedoc.config.cjs turns a member
// without it, a broken link or an unexported referenced type into an error).
import test from 'ava'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'

const REPO = join(__dirname, '..')

test('typedoc: README as the landing page, every exported member documented', async (t) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const config = require(join(REPO, 'typedoc.config.cjs')) as Record<string, unknown>
  t.is(config.readme, 'README.md')
  t.like(config, { treatValidationWarningsAsErrors: true, validation: { notDocumented: true, notExported: true } })
  const r = await promisify(execFile)(process.execPath, [join(REPO, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--emit', 'none'], { cwd: REPO }).then(
    (o) => ({ code: 0, out: o.stdout + o.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
  )
  t.is(r.code, 0, r.out)
  t.notRegex(r.out, /warning|error/i, r.out)
})
