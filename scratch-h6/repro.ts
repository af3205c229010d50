import fc from 'fast-check'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { ReflinkPool } from '/work/wt/h6-send/ts/index'
import { chainArb, apply, sha256, collect, chunks } from '/work/wt/h6-send/__test__/helpers/send-suite'
import { mountScratch } from '/work/wt/h6-send/ts/bench/loopfs'
const [steps] = fc.sample(chainArb, { seed: Number(process.argv[2]), numRuns: 1 })
const fs = mountScratch('xfs')
async function main() {
  const a = await (await ReflinkPool.open({ dirPath: join(fs.dir, 'a'), revisionsToKeep: 2 })).createVolume({ vid: 'vm-templates/v/root', name: 'v', size: 16 << 20, saveOnStop: true })
  const b = await (await ReflinkPool.open({ dirPath: join(fs.dir, 'b') })).createVolume({ vid: 'vm-templates/v/root', name: 'v', size: 16 << 20, saveOnStop: true })
  const clean = (v: any) => join(v.pool.dirPath, `${v.vid}.img`)
  for (let i = 0; i < steps.length; i++) {
    console.log('step', i, JSON.stringify(steps[i]))
    apply(await a.start(), steps[i]); await a.stop()
    console.log(' committed')
    const revs = Object.keys(await a.revisions())
    const s = await collect(a.send(i === 0 ? {} : { base: revs.at(-1) }))
    console.log(' sent', s.length)
    const r = await b.receive(Readable.from(chunks(s)))
    console.log(' received', JSON.stringify(r), sha256(clean(a)) === sha256(clean(b)))
  }
}
main().catch((e) => console.log('ERR', e)).finally(() => fs.unmount())
