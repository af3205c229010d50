// `volume remove|start|stop VID... --match GLOB` and dependents through the real
// binary on XFS, btrfs and ext4 (docs/design.md §3, §7): many volumes in one
// process and one batch, --json per vid, usage errors (exit 2) for a pattern that
// matches nothing, and a template with snapshot volumes never removed silently.
import anyTest, { type TestFn } from 'ava'
import { existsSync, mkdtempSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { fsSuite, type FsKind } from './helpers/scratch-fs'
import { runCli, runJson, sampleImage } from './helpers/cli-run'

const TPL = 'vm-templates/debian/root'
const SNAP = 'appvms/snap/root'

for (const kind of ['xfs', 'btrfs', 'ext4'] as FsKind[]) {
  const { test, fs } = fsSuite(anyTest as TestFn, kind)

  test(`${kind}: a template with snapshot volumes is refused naming them; --recursive removes them; many vids and --match in one batch`, async (t) => {
    const dir = join(mkdtempSync(join(fs().dir, 'fleet-')), 'pool')
    const env = { REFLINK_POOL_DIR: dir }
    const ok = async (args: string[]) => {
      const r = await runCli(args, { env })
      t.is(r.status, 0, `${args.join(' ')}: ${r.stderr}`)
      return r
    }
    await ok(['init', ...(kind === 'ext4' ? ['--no-setup-check'] : [])])
    await ok(['volume', 'create', TPL, '--size', '8M'])
    const imp = await runCli(['volume', 'import', TPL, '-'], { env, input: sampleImage() })
    t.is(imp.status, 0, imp.stderr)
    await ok(['volume', 'create', SNAP, '--kind', 'snapshot', '--source', TPL])

    // The report: `volume rm` of the template exited 0 and broke the snapshot.
    const rm = await runCli(['volume', 'rm', TPL], { env })
    t.is(rm.status, 1, rm.stderr)
    t.regex(rm.stderr, /appvms\/snap\/root/)
    t.regex(rm.stderr, /--recursive/)
    t.true(existsSync(join(dir, `${TPL}.img`)))
    const info = await runJson(['volume', 'info', TPL], { env })
    t.deepEqual(info.json.dependents, [SNAP])
    t.regex((await ok(['volume', 'info', TPL])).stdout, /dependents:\s+1 \(start from it: appvms\/snap\/root\)/)
    await ok(['volume', 'start', SNAP])
    await ok(['volume', 'stop', SNAP])

    await ok(['clone', TPL, 'appvms/ci-{n}/root', '-n', '9'])
    const started = await runJson(['volume', 'start', '--match', 'appvms/ci-*/root'], { env })
    t.is(started.result.status, 0, started.result.stderr)
    t.is(started.json.length, 9)
    for (const row of started.json as { vid: string; path: string }[]) t.true(existsSync(row.path), row.vid)
    // Running volumes: refused without --force, all of them kept.
    const refused = await runCli(['volume', 'remove', 'appvms/ci-1/root', 'appvms/ci-2/root'], { env })
    t.is(refused.status, 1)
    t.regex(refused.stderr, /--force/)
    const stopped = await runJson(['volume', 'stop', '--match', 'appvms/ci-[1-4]/root', '--match', 'appvms/ci-?/root'], { env })
    t.is(stopped.result.status, 0, stopped.result.stderr)
    t.is(stopped.json.length, 9, 'each volume once')
    t.false((stopped.json as { running: boolean }[]).some((v) => v.running))

    // Usage errors: exit 2, nothing removed.
    for (const args of [['volume', 'remove'], ['volume', 'remove', '--match', 'appvms/nope-*/root'], ['volume', 'remove', '--match', 'appvms/ci-[9-1]/root'], ['volume', 'stop', '--match', 'appvms/ci-*']]) {
      const r = await runCli(args, { env })
      t.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`)
    }
    // A pattern that stops short of whole vids names the one that reaches them.
    const short = await runCli(['volume', 'stop', '--match', 'appvms/ci-*'], { env })
    t.regex(short.stderr, /"appvms\/ci-\*\/\*\*" matches \d+ volumes/)
    t.is((await runJson(['volume', 'list'], { env })).json.length, 11)

    // An entry the pool did not make under an image's name (a planted symlink) refuses the batch,
    // naming it; nothing is removed, the link and its target stay.
    const planted = join(dir, 'appvms/ci-3/root.img.7@2026-01-01T00:00:00Z')
    symlinkSync('/etc/hostname', planted)
    const unsafe = await runCli(['volume', 'remove', '--match', 'appvms/ci-*/root'], { env })
    t.is(unsafe.status, 1, unsafe.stderr)
    t.is(unsafe.stderr, `reflink-pool: cannot remove these volumes: ${planted} has an image's name but is not a regular file, so the pool did not make it and never removes it; move it away and run the command again; nothing was removed (ERR_UNSAFE_PATH)\n`)
    t.is((await runJson(['volume', 'list'], { env })).json.length, 11)
    t.is(readlinkSync(planted), '/etc/hostname')
    unlinkSync(planted)

    const removed = await runJson(['volume', 'remove', 'appvms/ci-1/root', '--match', 'appvms/ci-*/root'], { env })
    t.is(removed.result.status, 0, removed.result.stderr)
    t.is(removed.json.length, 9)
    t.deepEqual(removed.json[0], { vid: 'appvms/ci-1/root', removed: true, kind: 'origin' })
    const all = await runJson(['volume', 'remove', '--recursive', TPL], { env })
    t.deepEqual((all.json as { vid: string }[]).map((r) => r.vid), [SNAP, TPL])
    t.deepEqual((await runJson(['volume', 'list'], { env })).json, [])
  })
}
