// `volume import` and `volume export`: move a raw image between a file (or a
// pipe) and a volume through the library's stream API, with a progress bar.
// Import sparseness is the library's job (importStream leaves zero blocks as
// holes); export to a regular file skips zero blocks here so the copy stays sparse.
import { createReadStream, createWriteStream, fstatSync, openSync, statSync } from 'node:fs'
import { open, rename, unlink, type FileHandle } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { Transform, Writable, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ReflinkPoolError, type ErrorCode } from '../errors'
import { UsageError } from './errors'
import { interrupt } from './interrupt'
import type { Output } from './output'
import type { Volume } from './pool-access'

/** Read size for image files: the library stages 1 MiB writes, so read that much at a time. */
const READ_CHUNK = 1 << 20

export interface TransferResult {
  bytes: number
  seconds: number
}

/** Where an import reads from, checked before the pool is opened: a bad file changes nothing. */
export interface ImportSource {
  input: Readable
  /** Known for files (their size, or --size); undefined for stdin without --size (the volume's size is used). */
  size: number | undefined
  close(): void
}

export function openImportSource(file: string, size: number | undefined): ImportSource {
  if (file === '-') {
    if (process.stdin.isTTY) throw new UsageError('refusing to import from a terminal: pipe an image into stdin or give a file')
    return { input: process.stdin, size, close() {} }
  }
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (err) {
    const code = ((err as NodeJS.ErrnoException).code ?? 'ERR_INTERNAL') as ErrorCode
    throw new ReflinkPoolError(code, `cannot read the image to import: ${(err as Error).message}`, { syscall: 'open', path: file, cause: err })
  }
  const input = createReadStream(file, { fd, highWaterMark: READ_CHUNK })
  return { input, size: size ?? fstatSync(fd).size, close: () => input.destroy() }
}

export async function importVolume(v: Volume, source: ImportSource, opts: { output: Output }): Promise<TransferResult> {
  const size = source.size ?? await v.size()
  const bar = opts.output.progress({ label: `import ${v.vid}`, unit: 'bytes', total: size })
  const started = performance.now()
  try {
    await v.importStream(source.input, size, { signal: interrupt.signal, onProgress: (done: number) => bar.update(done, size) })
  } finally {
    bar.done()
    source.close()
  }
  return { bytes: size, seconds: (performance.now() - started) / 1000 }
}

export async function exportVolume(v: Volume, file: string, opts: { output: Output }): Promise<TransferResult> {
  const total = await v.size()
  const bar = opts.output.progress({ label: `export ${v.vid}`, unit: 'bytes', total })
  let bytes = 0
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length
      bar.update(bytes, total)
      cb(null, chunk)
    },
  })
  const started = performance.now()
  if (file === '-' && process.stdout.isTTY) throw new UsageError('refusing to write an image to a terminal: redirect stdout or give a file')
  const source = await v.exportStream()
  try {
    await pipeline(source, counter, file === '-' ? stdoutSink() : await fileSink(file), { signal: interrupt.signal })
  } finally {
    bar.done()
  }
  return { bytes, seconds: (performance.now() - started) / 1000 }
}

/** stdout without closing it; a reader that goes away early (`| head`) is not our failure. */
function stdoutSink(): Writable {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0)
  })
  return new Writable({
    write(chunk, _enc, cb) {
      process.stdout.write(chunk, cb)
    },
  })
}

/** Block size for hole detection; matches common filesystem block sizes (multiple of 4 KiB). */
const HOLE_BLOCK = 64 * 1024

/**
 * A regular file is written sparsely (all-zero blocks skipped) into a temp file
 * beside it, fsynced and renamed over it at the end: a failed or interrupted
 * export leaves an existing file untouched. Anything else (a FIFO, a device) is written plainly.
 */
async function fileSink(file: string): Promise<Writable> {
  let regular = true
  try {
    regular = statSync(file).isFile()
  } catch {}
  if (!regular) return createWriteStream(file, { flags: 'r+' })
  const temp = `${file}~${randomBytes(6).toString('hex')}`
  const fh: FileHandle = await open(temp, 'wx', 0o600)
  let position = 0
  let renamed = false
  return new Writable({
    async write(chunk: Buffer, _enc, cb) {
      try {
        for (let off = 0; off < chunk.length; off += HOLE_BLOCK) {
          const block = chunk.subarray(off, off + HOLE_BLOCK)
          if (!isZero(block)) await fh.write(block, 0, block.length, position)
          position += block.length
        }
        cb()
      } catch (err) {
        cb(err as Error)
      }
    },
    async final(cb) {
      try {
        await fh.truncate(position) // trailing holes
        await fh.sync()
        await fh.close()
        await rename(temp, file)
        renamed = true
        cb()
      } catch (err) {
        cb(err as Error)
      }
    },
    async destroy(err, cb) {
      await fh.close().catch(() => {})
      if (!renamed) await unlink(temp).catch(() => {})
      cb(err)
    },
  })
}

const ZERO = Buffer.alloc(HOLE_BLOCK)

function isZero(block: Buffer): boolean {
  return block.equals(block.length === ZERO.length ? ZERO : ZERO.subarray(0, block.length))
}
