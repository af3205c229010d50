// Child processes of the send tests (run with tsx):
//   receive DIR VID STREAMFILE   receive STREAMFILE into VID, slowly (64 KiB every 2 ms),
//                                printing "progress" once the first records are applied
//   import-writer DIR VID SIZE   print "ready", importData(SIZE) into VID (waiting for the
//                                volume's lock), print "path <path>", then write
//                                4 KiB of 0x41 at offset 0 into that path (by name, as a
//                                caller of importData does) every 2 ms; on "end" on stdin
//                                commit it (importDataEnd(true)) and print "committed"
//   die-keeping DIR VID FILE     open the pool, write FILE (the temp file of a kept base that
//                                a send was making) and die by SIGKILL, as a crash mid-send
import { createReadStream, openSync, writeSync, closeSync, writeFileSync } from 'node:fs'
import { ReflinkPool } from '../../ts/index'

const [cmd, dir, vid, arg] = process.argv.slice(2)

async function* slowly(path: string): AsyncGenerator<Buffer> {
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) {
    await new Promise((r) => setTimeout(r, 2))
    yield chunk as Buffer
  }
}

async function receive(): Promise<void> {
  const pool = await ReflinkPool.open({ dirPath: dir })
  let told = false
  await pool.getVolume(vid).receive(slowly(arg), {
    onProgress: (done) => {
      if (!told && done > 0) {
        told = true
        process.stdout.write('progress\n')
      }
    },
  })
  process.stdout.write('done\n')
}

/** Write 0x41 at offset 0 of `path`, opened by name without creating it. */
function scribble(path: string): void {
  try {
    const fd = openSync(path, 'r+')
    try {
      writeSync(fd, Buffer.alloc(4096, 0x41), 0, 4096, 0)
    } finally {
      closeSync(fd)
    }
  } catch {
    // Not there (yet, or any more): nothing to write into.
  }
}

async function importWriter(): Promise<void> {
  const pool = await ReflinkPool.open({ dirPath: dir })
  const v = pool.getVolume(vid)
  process.stdout.write('ready\n')
  const path = await v.importData(Number(arg))
  process.stdout.write(`path ${path}\n`)
  const timer = setInterval(() => scribble(path), 2)
  await new Promise<void>((resolve) => process.stdin.on('data', (d) => d.toString().includes('end') && resolve()))
  clearInterval(timer)
  scribble(path)
  await v.importDataEnd(true)
  process.stdout.write('committed\n')
  await pool.close()
  process.stdin.destroy()
}

async function dieKeeping(): Promise<void> {
  await ReflinkPool.open({ dirPath: dir })
  writeFileSync(arg, 'half-made kept base')
  process.kill(process.pid, 'SIGKILL')
}

const commands: Record<string, () => Promise<void>> = { receive, 'import-writer': importWriter, 'die-keeping': dieKeeping }

;(commands[cmd] ?? (() => Promise.reject(new Error(`unknown command ${cmd}`))))().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`)
  process.exit(1)
})
