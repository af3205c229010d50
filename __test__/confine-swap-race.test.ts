// A local attacker swaps a VM directory with a symlink to a directory outside
// the pool (renameat2 RENAME_EXCHANGE, in a tight loop, in another process)
// while start/stop/revert/import run: the pool must create or modify nothing
// outside its directory (docs/design.md §5). Every operation either succeeds
// or fails with a typed error. XFS, btrfs and ext4.
import test from 'ava'
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync, symlinkSync, existsSync, lstatSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { fsSuite, type FsKind } from './helpers/scratch-fs'
import { manifest, diffManifest } from './helpers/reliability-files'
import { ReflinkPool, type ReflinkVolume } from '../ts/index'

const OPS = Number(process.env.CONFINE_SWAP_OPS ?? 2000)
const KiB = 1024

/**
 * Codes an operation may fail with: the directory swapped away under it (a
 * symlink refused, images missing from the directory that is now elsewhere),
 * or the state it found (running or not, no revision yet, a volatile volume
 * that has no import or revisions).
 */
const EXPECTED = new Set(['ERR_UNSAFE_PATH', 'ENOENT', 'ERR_MISSING_IMAGE', 'ERR_VOLUME_DIRTY', 'ERR_REVISION_NOT_FOUND', 'ERR_NOT_SAVE_ON_STOP'])

for (const kind of ['xfs', 'btrfs', 'ext4'] as FsKind[]) {
  const suite = fsSuite(test, kind, { sizeMiB: 320 })
  suite.test.serial(`${kind}: a VM directory swapped with a symlink to outside (RENAME_EXCHANGE loop) never makes the pool write outside`, async (t) => {
    const root = suite.fs().dir
    const dir = join(root, 'pool')
    const outside = join(root, 'outside')
    mkdirSync(outside)
    writeFileSync(join(outside, 'keep.txt'), 'outside file\n')
    const before = manifest(outside)
    const pool = await ReflinkPool.open({ dirPath: dir, setupCheck: kind !== 'ext4', revisionsToKeep: 2 })
    const vols: ReflinkVolume[] = []
    for (const name of ['private', 'data']) vols.push(await pool.createVolume({ vid: `appvms/vm/${name}`, name, size: 64 * KiB, saveOnStop: true, rw: true }))
    vols.push(await pool.createVolume({ vid: 'appvms/vm/volatile', name: 'volatile', kind: 'volatile', size: 64 * KiB, rw: true }))
    const vmDir = join(dir, 'appvms', 'vm')
    const bait = join(dir, 'appvms', 'bait')
    symlinkSync(outside, bait)
    const stop = join(root, 'stop-swapping')
    const swapper = spawn('python3', [join(__dirname, 'helpers', 'swap-loop.py'), vmDir, bait, stop], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    swapper.stdout.on('data', (d: Buffer) => (out += d.toString()))
    await new Promise<void>((res) => swapper.stdout.once('data', () => res()))

    const codes = new Map<string, number>()
    const untyped: string[] = []
    let ok = 0
    const ops: Array<(v: ReflinkVolume) => Promise<unknown>> = [
      (v) => v.start(),
      (v) => v.stop(),
      (v) => v.revert(),
      (v) => v.importStream(Readable.from([Buffer.alloc(64 * KiB, 7)]), 64 * KiB),
      (v) => v.resize(64 * KiB),
    ]
    for (let i = 0; i < OPS; i++) {
      const v = vols[i % vols.length]
      try {
        await ops[(i >> 1) % ops.length](v)
        ok++
      } catch (e) {
        const code = (e as { code?: string }).code
        if (typeof code !== 'string') untyped.push(String(e))
        else codes.set(code, (codes.get(code) ?? 0) + 1)
      }
    }
    writeFileSync(stop, '')
    await new Promise<void>((res) => swapper.on('exit', () => res()))
    const swaps = Number(out.trim().split('\n').pop())
    t.true(lstatSync(vmDir).isDirectory() && !lstatSync(vmDir).isSymbolicLink(), 'the swapper left the VM directory in place')
    await pool.close()

    t.deepEqual(diffManifest(before, manifest(outside)), [], 'nothing was created or changed outside the pool')
    t.true(existsSync(join(outside, 'keep.txt')))
    t.deepEqual(untyped, [], 'every failure is a typed error')
    const unexpected = [...codes.keys()].filter((c) => !EXPECTED.has(c))
    t.deepEqual(unexpected, [], `failure codes: ${JSON.stringify(Object.fromEntries(codes))}`)
    t.true(swaps > 100, `the swapper raced the operations (${swaps} swaps)`)
    t.true(ok > 0, 'some operations got through between swaps (the race reached their file steps)')
    t.log(`${kind}: ${OPS} operations (${ok} succeeded, failures ${JSON.stringify(Object.fromEntries(codes))}) against ${swaps} swaps`)
  })
}
