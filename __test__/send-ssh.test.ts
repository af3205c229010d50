// Replication over a real link (docs/design.md §8): a real sshd on 127.0.0.1 (helpers/sshd.ts)
// and the CLI at both ends, as an admin runs it:
//   reflink-pool volume send V [--since "$(ssh host reflink-pool volume state V)"] | ssh host reflink-pool volume receive V
// From XFS to btrfs, btrfs to ext4 and ext4 to XFS: a full send that creates the volume on the
// far side, then three incrementals from the state the far side reports, each after two
// commits on a sender that keeps one revision (so only its kept base, §8.6, still holds the
// receiver's state). Both images are compared by sha256 after each step.
import test from 'ava'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { ReflinkPool, type ReflinkVolume } from '../ts/index'
import { fsSuite, requireFs, unavailableReason, type FsKind } from './helpers/scratch-fs'
import { apply, sha256 } from './helpers/send-suite'
import { MiB } from './helpers/pool-fixture'
import { sshdUnavailable, startSshd, type Sshd } from './helpers/sshd'

const VID = 'vm-templates/t/root'
/** As the send suite's write patterns assume. */
const SIZE = 16 * MiB
const suites = Object.fromEntries((['xfs', 'btrfs', 'ext4'] as const).map((k) => [k, fsSuite(test, k)])) as Record<FsKind, ReturnType<typeof fsSuite>>
const why = sshdUnavailable()
let sshd: Sshd | undefined

// CI (REFLINK_POOL_REQUIRE_FS=1) runs setup.sh, which installs openssh-server: a missing sshd fails there.
if (why && requireFs) test('replication over ssh is required (REFLINK_POOL_REQUIRE_FS=1) but cannot run', (t) => t.fail(why))

test.before(async () => {
  if (!why) sshd = await startSshd()
})
test.after.always(async () => {
  await sshd?.stop()
})

/** Run `script` in bash with pipefail and the CLI on PATH; resolves with its status and output. */
function bash(script: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('bash', ['-c', `set -o pipefail; ${script}`], { env: { ...process.env, PATH: `${sshd!.bin}:${process.env.PATH}`, REFLINK_POOL_DIR: '' } })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d))
    p.stderr.on('data', (d: Buffer) => (stderr += d))
    p.on('close', (status) => resolve({ status, stdout, stderr }))
  })
}

for (const [from, to] of [['xfs', 'btrfs'], ['btrfs', 'ext4'], ['ext4', 'xfs']] as const) {
  // An unavailable filesystem is reported (or failed, under REFLINK_POOL_REQUIRE_FS) by its fsSuite.
  const skip = why ?? unavailableReason(from) ?? unavailableReason(to)
  const run = skip ? test.skip : test.serial
  run(`${from} -> ${to} over ssh: a full send creates the volume, three incrementals --since the far side's state after pruned commits; byte for byte${skip ? ` [skipped: ${skip}]` : ''}`, async (t) => {
    const a = await ReflinkPool.open({ dirPath: join(suites[from].fs().dir, `ssh-to-${to}`), revisionsToKeep: 1, setupCheck: from !== 'ext4' })
    const bDir = join(suites[to].fs().dir, `ssh-from-${from}`)
    try {
      const v: ReflinkVolume = await a.createVolume({ vid: VID, name: 'root', size: SIZE, saveOnStop: true })
      const ssh = sshd!.sshCommand
      const remote = (args: string) => `${ssh} 'reflink-pool --pool ${bDir} ${args}'`
      const commit = async (seed: number) => {
        apply(await v.start(), [{ kind: 'write', offset: (seed * 3 * MiB) % (SIZE - MiB), length: 256 * 1024 + seed * 4096, seed }])
        await v.stop()
      }
      await commit(1)
      // The far side has no pool yet: init it over the same link.
      const init = await bash(remote(`init${to === 'ext4' ? ' --no-setup-check' : ''}`))
      t.is(init.status, 0, init.stderr)
      let held: string | null = null
      for (let step = 0; step < 4; step++) {
        if (step > 0) {
          await commit(2 * step)
          await commit(2 * step + 1)
          held = (await bash(remote(`volume state ${VID}`))).stdout.trim()
          t.regex(held, /^[0-9a-f]{32}$/, 'volume state prints the id alone')
        }
        const since = step > 0 ? ` --since "$(${remote(`volume state ${VID}`)})"` : ''
        const r = await bash(`reflink-pool --pool ${a.dirPath} volume send ${VID}${since} | ${remote(`--json volume receive ${VID}`)}`)
        t.is(r.status, 0, r.stderr)
        const report = JSON.parse(r.stdout) as { id: string; baseId: string | null; created: boolean }
        t.is(report.created, step === 0, 'only the full send creates the volume')
        t.is(report.baseId, held, step ? 'an incremental from the state the far side held' : 'a full stream')
        t.is(report.id, (await v.state()).id)
        t.is(sha256(join(bDir, `${VID}.img`)), sha256(join(a.dirPath, `${VID}.img`)), `step ${step}: byte for byte`)
        t.regex(r.stderr, /Sent /)
      }
      t.is(Object.keys(await v.revisions()).length, 1, 'the sender kept one revision: the bases it sent were kept apart')
    } finally {
      await a.close()
    }
  })
}
