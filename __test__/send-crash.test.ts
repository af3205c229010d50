// A receive cut by SIGKILL or by a power cut (XFS shutdown, then remount and log
// recovery) leaves the volume with its old state or the new one, never a mix, and
// nothing half-made after the pool is opened again; the stream then applies.
import test from 'ava'
import { spawn } from 'node:child_process'
import { writeFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { ReflinkPool } from '../ts/index'
import { fsSuite } from './helpers/scratch-fs'
import { powerCut, remount } from './helpers/reliability-trials'
import { apply, collect, sha256 } from './helpers/send-suite'
import { MiB } from './helpers/pool-fixture'

const { test: fsTest, fs } = fsSuite(test, 'xfs', { sizeMiB: 2048 })
const SIZE = 256 * MiB
const CHILD = join(__dirname, 'helpers', 'send-child.ts')

for (const mode of ['sigkill', 'powercut'] as const) {
  fsTest.serial(`xfs: a receive cut by ${mode} leaves the old or the new state; the stream applies afterwards`, async (t) => {
    const dir = fs().dir
    const a = await (await ReflinkPool.open({ dirPath: join(dir, `a-${mode}`), revisionsToKeep: 2 })).createVolume({ vid: 'vm-templates/v/root', size: SIZE, saveOnStop: true })
    const bDir = join(dir, `b-${mode}`)
    const b = await (await ReflinkPool.open({ dirPath: bDir })).createVolume({ vid: 'vm-templates/v/root', size: SIZE, saveOnStop: true })
    const clean = (p: string) => join(p, 'vm-templates/v/root.img')
    apply(await a.start(), [{ kind: 'write', offset: 0, length: 16 * MiB, seed: 1 }])
    await a.stop()
    await b.receive(Readable.from([await collect(a.send())]))
    const old = sha256(clean(bDir))
    apply(await a.start(), [{ kind: 'write', offset: 8 * MiB, length: 96 * MiB, seed: 2 }])
    await a.stop()
    const stream = await collect(a.send({ base: Object.keys(await a.revisions()).at(-1)! }))
    const fresh = sha256(clean(a.pool.dirPath))
    const file = join(dir, `${mode}.stream`)
    writeFileSync(file, stream)
    // Pools hold their directory open: close them, or the power cut's remount finds the mount busy.
    await a.pool.close()
    await b.pool.close()

    const child = spawn(process.execPath, ['--import=tsx', CHILD, 'receive', bDir, 'vm-templates/v/root', file], { stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('progress') && resolve())
      exited.then((code) => reject(new Error(`child exited (${code}) before it made progress`)))
    })
    if (mode === 'powercut') powerCut(fs())
    else child.kill('SIGKILL')
    if (mode === 'powercut') setTimeout(() => child.kill('SIGKILL'), 1500)
    await exited
    if (mode === 'powercut') remount(fs())

    const pool = await ReflinkPool.open({ dirPath: bDir })
    const v = pool.getVolume('vm-templates/v/root')
    const now = sha256(clean(bDir))
    t.true(now === old || now === fresh, 'the clean image is the old state or the new one')
    t.false(await v.isDirty())
    t.deepEqual(readdirSync(join(bDir, 'vm-templates/v')).filter((n) => n.includes('~') || n.includes('-import')), [], 'nothing half-made after open')
    t.log(`${mode}: the volume held the ${now === old ? 'old' : 'new'} state`)
    if (now === old) await v.receive(Readable.from([stream]))
    t.is(sha256(clean(bDir)), fresh)
    // The new state's identity was recorded with its commit: the next incremental finds its base.
    const a2 = (await ReflinkPool.open({ dirPath: a.pool.dirPath })).getVolume('vm-templates/v/root')
    apply(await a2.start(), [{ kind: 'write', offset: 4 * MiB, length: MiB, seed: 3 }])
    await a2.stop()
    const next = await collect(a2.send({ base: Object.keys(await a2.revisions()).at(-1)! }))
    await v.receive(Readable.from([next]))
    t.is(sha256(clean(bDir)), sha256(clean(a.pool.dirPath)))
    await a2.pool.close()
    await pool.close()
  })
}
