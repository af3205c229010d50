// Child process of the memory scenarios: loads the package root, does one
// operation, then prints its own peak resident set (VmHWM) as JSON. Run with
// plain node on the compiled file where possible, so no TypeScript loader
// inflates the figure. Modes:
//   idle                           only load the package
//   copy SRC DST [auto|never]      copyFile (reflink mode, default auto)
//   usage PATH                     fileUsage
//   import-file POOL VID SRC       volume.importFile
//   export-file POOL VID DST       volume.exportToFile
//   export-stream POOL VID         volume.exportStream into a sink that drops the bytes
//   import-stream POOL VID SRC     volume.importStream of a read stream of SRC
import { createReadStream, readFileSync, statSync } from 'node:fs'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { loadProduct, need, type Product } from './product'
import { peakRss } from './system'

async function volume(product: Product, dirPath: string, vid: string) {
  const pool = await need(product, 'ReflinkPool').open({ dirPath, setupCheck: false })
  return { pool, v: await pool.getVolume(vid) }
}

async function operate(product: Product, mode: string, args: string[]): Promise<{ method: string | null; bytes: number | null }> {
  const [a, b, c] = args
  switch (mode) {
    case 'idle':
      return { method: null, bytes: null }
    case 'copy': {
      const r = await need(product, 'copyFile')(a, b, { reflink: c === 'never' ? 'never' : 'auto' })
      return { method: r.method, bytes: r.bytes }
    }
    case 'usage': {
      const u = await need(product, 'fileUsage')(a)
      return { method: null, bytes: u.extents }
    }
    case 'import-file':
    case 'export-file': {
      const { pool, v } = await volume(product, a, b)
      const r = mode === 'import-file' ? await v.importFile(c) : await v.exportToFile(c)
      await pool.close()
      return { method: r.method, bytes: r.bytes }
    }
    case 'export-stream': {
      const { pool, v } = await volume(product, a, b)
      let bytes = 0
      const sink = new Writable({
        highWaterMark: 4 << 20,
        write(chunk: Buffer, _enc, cb) {
          bytes += chunk.length
          cb()
        },
      })
      await pipeline(v.exportStream(), sink)
      await pool.close()
      return { method: 'stream', bytes }
    }
    case 'import-stream': {
      const { pool, v } = await volume(product, a, b)
      const size = statSync(c).size
      await v.importStream(createReadStream(c, { highWaterMark: 1 << 20 }), size)
      await pool.close()
      return { method: 'stream', bytes: size }
    }
    default:
      throw new Error(`rss-child: unknown mode ${mode}`)
  }
}

async function main(): Promise<void> {
  const [mode, ...args] = process.argv.slice(2)
  const product = loadProduct()
  const r = await operate(product, mode, args)
  const peak = peakRss(readFileSync('/proc/self/status', 'utf8'))
  process.stdout.write(JSON.stringify({ peakRssBytes: peak, ...r }) + '\n')
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`)
  process.exit(1)
})
