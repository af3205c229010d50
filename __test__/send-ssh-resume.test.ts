// Replication over a real link (docs/design.md §8, §8.9): `reflink-pool volume send |
// ssh host reflink-pool volume receive` through a real sshd on 127.0.0.1, between an XFS,
// a btrfs and an ext4 pool. The ssh client is killed part-way through the full send; the
// receiver kept what it verified, `volume resume-token` over ssh gives the token, `send
// --resume` sends the rest, and the image is byte for byte the sender's. Then three
// incrementals (--since the receiver's state), XFS -> btrfs -> ext4, each checked by
// sha256. The streams are compressed and keyed on the second hop.
import test from 'ava'
import { spawn, execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ReflinkPool, type ReflinkVolume } from '../ts/index'
import { fsSuite } from './helpers/scratch-fs'
import { MiB, writeAt } from './helpers/pool-fixture'
import { randomBytes } from 'node:crypto'
import { sha256 } from './helpers/send-suite'
import { BIN } from './helpers/cli-run'
import { startSshd, type Sshd } from './helpers/sshd'

const xfs = fsSuite(test, 'xfs')
const btrfs = fsSuite(test, 'btrfs')
const ext4 = fsSuite(test, 'ext4')
let sshd: Sshd | undefined
test.before(async () => {
  sshd = await startSshd()
})
test.after.always(async () => {
  await sshd?.stop()
})

const VID = 'vm-templates/t/root'
const SIZE = 48 * MiB
const cli = (pool: string, args: string) => `${process.execPath} ${BIN} --pool ${pool} ${args}`

/** Run `sh -c cmd`; resolves with its exit code and output. */
function sh(cmd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (out += d))
    p.on('close', (code) => resolve({ code, out }))
  })
}

/** `send` on this host piped through ssh into `receive` on the "remote" one; kill the ssh client after `cutAt` bytes. */
function pipeOverSsh(from: string, sendArgs: string, to: string, recvArgs: string, cutAt = Infinity): Promise<{ sent: number; code: number | null; err: string }> {
  return new Promise((resolve) => {
    const send = spawn(process.execPath, [BIN, '--pool', from, 'volume', 'send', VID, ...sendArgs.split(' ').filter(Boolean)], { stdio: ['ignore', 'pipe', 'pipe'] })
    const ssh = spawn(sshd!.ssh[0], [...sshd!.ssh.slice(1), `reflink-pool --pool ${to} volume receive ${VID} ${recvArgs}`], { stdio: ['pipe', 'pipe', 'pipe'] })
    let sent = 0
    let err = ''
    ssh.stderr.on('data', (d) => (err += d))
    ssh.stdout.on('data', (d) => (err += d))
    send.stdout.on('data', (d: Buffer) => {
      if (sent >= cutAt) return
      sent += d.length
      if (sent < cutAt) {
        ssh.stdin.write(d)
        return
      }
      send.stdout.pause()
      // The link drops once what was written is on its way: the ssh client dies with the stream part-way.
      ssh.stdin.write(d, () =>
        setTimeout(() => {
          ssh.kill('SIGKILL')
          send.kill('SIGTERM')
        }, 1000),
      )
    })
    send.stdout.on('end', () => ssh.stdin.end())
    ssh.stdin.on('error', () => {})
    ssh.on('close', (code) => {
      // A paused pipe from a killed sender would keep this process alive.
      send.stdout.destroy()
      if (send.exitCode === null) send.kill('SIGKILL')
      resolve({ sent, code, err })
    })
  })
}

async function remoteToken(pool: string): Promise<{ token: string | null; out: string }> {
  // The remote receive notices the dropped link a moment after the client dies.
  let out = ''
  for (let i = 0; i < 50; i++) {
    const r = await sh(`${sshd!.sshCommand} ${JSON.stringify(`reflink-pool --pool ${pool} volume resume-token ${VID}`)}`)
    if (r.code === 0) return { token: r.out.trim(), out }
    out = r.out
    await new Promise((res) => setTimeout(res, 200))
  }
  return { token: null, out }
}

xfs.test('ssh: a full send cut part-way resumes byte for byte; three incrementals XFS -> btrfs -> ext4', async (t) => {
  t.timeout(120_000)
  const pools = [join(xfs.fs().dir, 'a'), join(btrfs.fs().dir, 'b'), join(ext4.fs().dir, 'c')]
  const vols: ReflinkVolume[] = []
  for (const [i, dirPath] of pools.entries()) {
    const pool = await ReflinkPool.open({ dirPath, setupCheck: i < 2 })
    vols.push(await pool.createVolume({ vid: VID, name: 'root', size: SIZE, saveOnStop: true, revisionsToKeep: 1 }))
  }
  const [a] = vols
  const clean = (i: number) => join(pools[i], `${VID}.img`)
  const img = await a.start()
  writeAt(img, 0, randomBytes(40 * MiB))
  await a.stop()
  for (const v of vols) await v.pool.close()
  const keyFile = join(ext4.fs().dir, 'hop.key')
  writeFileSync(keyFile, Buffer.alloc(32, 0x42), { mode: 0o600 })

  const cut = await pipeOverSsh(pools[0], '', pools[1], '', 16 * MiB)
  t.not(cut.code, 0, 'the killed link fails the pipeline')
  const { token, out } = await remoteToken(pools[1])
  t.truthy(token, `the receiver kept the verified part and gives a token (${out}; receive: ${cut.err})`)
  const rest = await pipeOverSsh(pools[0], `--resume ${token}`, pools[1], '')
  t.is(rest.code, 0, rest.err)
  t.log(`full stream cut after ${cut.sent} bytes; the resumed stream carried ${rest.sent} bytes`)
  t.true(rest.sent < 40 * MiB - 8 * MiB, 'the resumed stream skips what was verified')
  t.is(sha256(clean(1)), sha256(clean(0)), 'XFS -> btrfs: the resumed image is the sender\'s')
  const hop2 = await pipeOverSsh(pools[1], `--compress --key-file ${keyFile}`, pools[2], `--key-file ${keyFile}`)
  t.is(hop2.code, 0, hop2.err)
  t.is(sha256(clean(2)), sha256(clean(0)), 'btrfs -> ext4 (compressed, keyed)')

  for (let step = 0; step < 3; step++) {
    const pa = await ReflinkPool.open({ dirPath: pools[0] })
    const va = pa.getVolume(VID)
    const running = await va.start()
    writeAt(running, (step * 11 + 3) * MiB, randomBytes(300 * 1024))
    execFileSync('fallocate', ['-p', '-o', String((step + 30) * MiB), '-l', String(MiB), running])
    await va.stop()
    await pa.close()
    for (const [from, to] of [[0, 1], [1, 2]]) {
      const since = (await sh(`${sshd!.sshCommand} ${JSON.stringify(`reflink-pool --pool ${pools[to]} volume state ${VID}`)}`)).out.trim()
      const r = await pipeOverSsh(pools[from], `--since ${since} --compress --key-file ${keyFile}`, pools[to], `--key-file ${keyFile}`)
      t.is(r.code, 0, r.err)
      t.true(r.sent < 4 * MiB, `incremental ${step + 1} hop ${from}->${to}: ${r.sent} bytes`)
    }
    t.is(sha256(clean(1)), sha256(clean(0)), `incremental ${step + 1}: btrfs equals XFS`)
    t.is(sha256(clean(2)), sha256(clean(0)), `incremental ${step + 1}: ext4 equals XFS`)
  }
  t.not((await sh(cli(pools[1], `volume resume-token ${VID}`))).code, 0, 'nothing left to resume')
})
