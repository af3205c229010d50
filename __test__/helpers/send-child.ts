// Child process of the send crash tests (run with tsx):
//   receive DIR VID STREAMFILE   receive STREAMFILE into VID, slowly (64 KiB every 2 ms),
//                                printing "progress" once the first records are applied
import { createReadStream } from 'node:fs'
import { ReflinkPool } from '../../ts/index'

const [cmd, dir, vid, file] = process.argv.slice(2)

async function* slowly(path: string): AsyncGenerator<Buffer> {
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) {
    await new Promise((r) => setTimeout(r, 2))
    yield chunk as Buffer
  }
}

async function main() {
  if (cmd !== 'receive') throw new Error(`unknown command ${cmd}`)
  const pool = await ReflinkPool.open({ dirPath: dir })
  let told = false
  await pool.getVolume(vid).receive(slowly(file), {
    onProgress: (done) => {
      if (!told && done > 0) {
        told = true
        process.stdout.write('progress\n')
      }
    },
  })
  process.stdout.write('done\n')
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`)
  process.exit(1)
})
