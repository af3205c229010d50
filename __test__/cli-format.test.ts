// The CLI's output helpers in-process: sizes, tables, error lines, and the
// progress bar that draws only on a terminal.
import test from 'ava'
import { Writable } from 'node:stream'
import { humanSize, humanDuration, parseSize, table, wrap } from '../ts/cli/format'
import { createProgress } from '../ts/cli/progress'
import { errorLine, exitStatusOf, UsageError, EXIT } from '../ts/cli/errors'
import { CloneIncompleteError, expandTargets } from '../ts/cli/clone-runner'

test('human sizes and durations', (t) => {
  t.is(humanSize(0), '0 B')
  t.is(humanSize(1023), '1023 B')
  t.is(humanSize(1536), '1.50 KiB')
  t.is(humanSize(256 * 1024 * 1024), '256 MiB')
  t.is(humanSize(25 * 1024 ** 3), '25.0 GiB')
  t.is(humanSize(null), '-')
  t.is(humanDuration(0.5), '500 µs')
  t.is(humanDuration(12.34), '12.3 ms')
  t.is(humanDuration(4200), '4.20 s')
})

test('size arguments follow GNU truncate -s: K/KiB binary, KB decimal, junk refused', (t) => {
  t.is(parseSize('4096'), 4096)
  t.is(parseSize('512M'), 512 * 1024 ** 2)
  t.is(parseSize('10G'), 10 * 1024 ** 3)
  t.is(parseSize('10g'), 10 * 1024 ** 3)
  t.is(parseSize('10GiB'), 10 * 1024 ** 3)
  t.is(parseSize('10GB'), 10 * 1000 ** 3)
  t.is(parseSize('4k'), 4096)
  t.is(parseSize('4KB'), 4000)
  t.is(parseSize('2T'), 2 * 1024 ** 4)
  t.is(parseSize('2TB'), 2 * 1000 ** 4)
  for (const bad of ['', '-1', 'abc', '1e3', '0x10', '12Q', '1.5.5', '1.5k', '10gb', '10gib', '10 G', 'G']) t.is(parseSize(bad), null, bad)
  for (const big of ['9007199254740993', '100P', '100000T']) t.is(parseSize(big), Infinity, `${big}: a size, too large`)
  // What is printed can be typed back.
  t.is(parseSize(humanSize(256 * 1024 ** 2).replace(' ', '')), 256 * 1024 ** 2)
})

test('tables align columns, numbers to the right', (t) => {
  const out = table(
    [
      { a: 'appvms/x/root', n: '1.00 MiB' },
      { a: 'b', n: '256 MiB' },
    ],
    [
      { header: 'VID', value: (r) => r.a },
      { header: 'SIZE', value: (r) => r.n, align: 'right' },
    ],
  )
  t.is(out, ['VID                SIZE', 'appvms/x/root  1.00 MiB', 'b               256 MiB'].join('\n'))
})

test('error line and exit status: usage errors differ from failures', (t) => {
  const lib = Object.assign(new Error('ERR_VOLUME_DIRTY: appvms/a/b is running'), { code: 'ERR_VOLUME_DIRTY' })
  t.is(errorLine(lib), 'reflink-pool: appvms/a/b is running (ERR_VOLUME_DIRTY)')
  t.is(exitStatusOf(lib), EXIT.failure)
  t.is(errorLine(new UsageError('no pool given')), 'reflink-pool: no pool given (ERR_USAGE)')
  t.is(exitStatusOf(new UsageError('x')), EXIT.usage)
  t.is(errorLine(new Error('first\nsecond')), 'reflink-pool: first (ERR_INTERNAL)')
})

test('clone targets: {n} expands without padding, {n:W} to width W, whatever the count; --count needs a pattern', (t) => {
  t.deepEqual(expandTargets(['appvms/vm-{n}/root'], 10).slice(0, 2), ['appvms/vm-1/root', 'appvms/vm-2/root'])
  t.deepEqual(expandTargets(['appvms/vm-{n}/root'], 9), expandTargets(['appvms/vm-{n}/root'], 12).slice(0, 9), 'the names never depend on the count')
  t.deepEqual(expandTargets(['appvms/vm-{n:3}/root'], 1000).slice(0, 2), ['appvms/vm-001/root', 'appvms/vm-002/root'])
  t.is(expandTargets(['appvms/vm-{n:3}/root'], 1000)[999], 'appvms/vm-1000/root')
  t.deepEqual(expandTargets(['appvms/{n}-{n:2}/root'], 1), ['appvms/1-01/root'])
  for (const bad of ['appvms/vm-{m}/root', 'appvms/vm-{n:0}/root', 'appvms/vm-{n:x}/root', 'appvms/vm-{n/root', 'appvms/vm-{n}}/root']) {
    t.throws(() => expandTargets([bad], 3), { instanceOf: UsageError }, bad)
  }
  t.throws(() => expandTargets(['appvms/vm-{n}/root'], undefined), { instanceOf: UsageError, message: /--count/ }, '{n} without --count')
  t.throws(() => expandTargets(['appvms/ok/root', 'appvms/bad/root/'], undefined), { instanceOf: UsageError, code: 'ERR_INVALID_VID' }, 'every target is a vid, checked first')
  t.deepEqual(expandTargets(['appvms/a/root', 'appvms/b/root'], undefined), ['appvms/a/root', 'appvms/b/root'])
  t.throws(() => expandTargets(['appvms/a/root'], 3), { instanceOf: UsageError })
})

test('a clone run that stopped advises --skip-existing only when it made volumes (and to free space first on ENOSPC)', (t) => {
  const enospc = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
  const none = new CloneIncompleteError(enospc, [], ['appvms/a/root'], [])
  t.notRegex(none.message, /skip-existing/)
  t.regex(none.message, /nothing was cloned: free space/)
  t.is(none.code, 'ENOSPC')
  const some = new CloneIncompleteError(enospc, ['appvms/a/root'], ['appvms/b/root'], [])
  t.regex(some.message, /made 1 of 2 volumes.*free space on the pool's filesystem, then re-run with --skip-existing/)
  const interrupted = new CloneIncompleteError(Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ABORT_ERR' }), [], ['appvms/a/root'], [])
  t.notRegex(interrupted.message, /skip-existing/)
  t.is(interrupted.name, 'AbortError')
})

function sink(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let text = ''
  const w = new Writable({
    write(chunk, _enc, cb) {
      text += chunk
      cb()
    },
  }) as unknown as NodeJS.WriteStream
  Object.assign(w, { isTTY, columns: 100 })
  return { stream: w, text: () => text }
}

test('progress bar: drawn on a terminal, erased when done; silent when not a terminal', (t) => {
  const tty = sink(true)
  const bar = createProgress({ label: 'import', unit: 'bytes', total: 4 * 1024 * 1024, stream: tty.stream })
  bar.update(4 * 1024 * 1024)
  bar.done()
  t.regex(tty.text(), /import \[#+\] 100% {2}4\.00 MiB\/4\.00 MiB/)
  t.true(tty.text().endsWith('\r\x1b[2K'), 'the line is cleared at the end')

  const pipe = sink(false)
  const quiet = createProgress({ label: 'import', unit: 'bytes', total: 10, stream: pipe.stream })
  quiet.update(10)
  quiet.done()
  t.is(pipe.text(), '')
})

test('progress bar: shows the rate over the recent window and an ETA', (t) => {
  const tty = sink(true)
  let clock = 0
  const MiB = 1024 * 1024
  const bar = createProgress({ label: 'import', unit: 'bytes', total: 100 * MiB, stream: tty.stream, now: () => clock })
  for (let s = 0; s <= 4; s++) {
    clock = s * 1000
    bar.update(s * 10 * MiB) // 10 MiB/s
  }
  t.regex(tty.text(), /40\.0 MiB\/100 MiB {2}10\.0 MiB\/s {2}ETA 6s/)
})

test('tables fit a width by cutting the shrinkable columns with an ellipsis', (t) => {
  const rows = [{ a: 'appvms/a-very-long-vm-name/private', n: '1.00 MiB' }]
  const cols = [
    { header: 'VID', value: (r: (typeof rows)[0]) => r.a, shrink: true },
    { header: 'SIZE', value: (r: (typeof rows)[0]) => r.n, align: 'right' as const },
  ]
  const out = table(rows, cols, { width: 24 })
  for (const line of out.split('\n')) t.true(line.length <= 24, line)
  t.regex(out, /^appvms\/…rivate {2}1\.00 MiB$/m)
  t.is(table(rows, cols).split('\n')[1], 'appvms/a-very-long-vm-name/private  1.00 MiB')
})

test('wrap breaks a paragraph at spaces within the width', (t) => {
  t.is(wrap('aa bb cc dd', 5), 'aa bb\ncc dd')
  t.is(wrap('aa bb cc dd', undefined), 'aa bb cc dd')
  t.is(wrap('averylongword x', 4), 'averylongword\nx')
})
