// `volume import` and `volume export`: move a raw image between a file (or a
// pipe) and a volume, with a progress bar (docs/design.md §6). Regular files go
// through the library's durable copy (importFile / exportToFile: reflink, else
// sparse copy; holes never read); only `-` and FIFOs stream (importPipe, which
// reads the stream natively / exportPipe, which writes stdout or the FIFO natively),
// and the stream paths leave zero blocks as holes / never read holes.
import { closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readFileSync, statSync, type Stats } from 'node:fs'
import { isatty } from 'node:tty'
import { setTimeout as sleep } from 'node:timers/promises'
import { dirname, resolve } from 'node:path'
import { humanSize } from './format'
import { ReflinkPoolError, type ErrorCode } from '../errors'
import { CLI_CODES, CliError, UsageError } from './errors'
import { fileContainerFormat } from './image-format'
import { interrupt } from './interrupt'
import type { Output } from './output'
import type { Volume } from './pool-access'
import { entryKind } from '../util/entry-kind'

export interface TransferResult {
  /** Bytes of the image. */
  bytes: number
  seconds: number
  /** How the data moved: `reflink`, `copy-range`, `read-write`, `empty` (files) or `stream`. */
  method: string
}

/** Where an import reads from, checked before the pool is opened: a bad file changes nothing. */
export type ImportSource =
  | { kind: 'file'; path: string; size: number | undefined; close(): void }
  | {
      kind: 'stream'
      /** The pipe or FIFO the library reads natively ('/dev/stdin' for `-`), or null: stdin is a socket, read by Node. */
      path: string | null
      /** Known with --size; undefined for a stream without it (the volume's size is used). */
      size: number | undefined
      close(): void
    }

function statOrThrow(file: string, what: string, follow: boolean): Stats | null {
  try {
    return follow ? statSync(file) : lstatSync(file)
  } catch (err) {
    const code = ((err as NodeJS.ErrnoException).code ?? 'ERR_INTERNAL') as ErrorCode
    if (code === 'ENOENT' && what === 'export') return null
    throw new ReflinkPoolError(code, `cannot use ${file} to ${what}: ${(err as Error).message}`, { syscall: 'stat', path: file, cause: err })
  }
}

/**
 * The file to import, checked before the pool is opened: a bad file changes
 * nothing. A regular file whose header is a qcow2, vmdk, vhdx or vdi container
 * is refused unless `format` is 'raw' (the header bytes would become the disk).
 */
export function openImportSource(file: string, size: number | undefined, format?: 'raw'): ImportSource {
  if (file === '-') {
    // isatty(0), not process.stdin: creating that stream would start Node reading the pipe.
    if (isatty(0)) throw new UsageError('refusing to import from a terminal: pipe an image into stdin or give a file')
    const stdin = fstatSync(0)
    // Node reads a directory on stdin as an empty stream: say what it is.
    if (stdin.isDirectory()) throw new UsageError('stdin is a directory: redirect an image file into it, pipe one, or give the file')
    // A pipe (or a redirected file) can be opened again as /dev/stdin; a socket (what a
    // Node parent gives its child) cannot, so that one is read through process.stdin.
    return { kind: 'stream', path: stdin.isSocket() ? null : '/dev/stdin', size, close() {} }
  }
  const st = statOrThrow(file, 'import', true)!
  if (st.isFIFO()) return { kind: 'stream', path: file, size, close() {} }
  // A block device (an LVM volume, a disk) is read through like a pipe: every byte, zero blocks left as holes.
  if (st.isBlockDevice()) return { kind: 'stream', path: file, size: size ?? blockDeviceSize(file, st), close() {} }
  if (!st.isFile()) {
    throw new ReflinkPoolError('ERR_INVALID_ARG_VALUE', `cannot import ${file}: it is ${entryKind(st)}; give a raw image file, a block device, a FIFO or - (stdin)`, { path: file })
  }
  const container = format === 'raw' ? null : fileContainerFormat(file)
  if (container !== null) {
    throw new CliError(
      `refusing to import ${file}: it is a ${container} image, not a raw one; convert it first ` +
        `(qemu-img convert -f ${container} -O raw ${shellQuote(file)} ${shellQuote(rawName(file))}), ` +
        'or add --format raw to import its bytes as they are',
      CLI_CODES.notRaw,
    )
  }
  return { kind: 'file', path: file, size: size ?? st.size, close() {} }
}

/** Where a converted copy of `file` could go: its name with a .raw extension, never `file` itself. */
function rawName(file: string): string {
  const raw = file.replace(/(\.[^./]*)?$/, '.raw')
  return raw === file ? file.replace(/\.raw$/, '.converted.raw') : raw
}

/** `text` as one shell word, for the commands that messages suggest. */
function shellQuote(text: string): string {
  return /^[\w./@%+=:,-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`
}

/** A block device's size in bytes, from sysfs (its st_size is 0). */
function blockDeviceSize(file: string, st: Stats): number {
  // Linux dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31 (glibc's gnu_dev_major/minor).
  const rdev = BigInt(st.rdev)
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn))
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn))
  try {
    return Number(readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim()) * 512
  } catch (err) {
    throw new UsageError(`cannot tell the size of the block device ${file} (${(err as Error).message}): give it with --size`)
  }
}

export async function importVolume(
  v: Volume,
  source: ImportSource,
  opts: { output: Output; sparse?: boolean },
): Promise<TransferResult> {
  const started = performance.now()
  const label = `import ${v.vid}`
  if (source.kind === 'file') {
    const bar = opts.output.progress({ label, unit: 'bytes' })
    try {
      const r = await v.importFile(source.path, {
        signal: interrupt.signal,
        onProgress: (done: number, total: number) => bar.update(done, total),
        sparse: opts.sparse ? 'always' : 'auto',
        size: source.size,
      })
      return { bytes: await v.size(), seconds: (performance.now() - started) / 1000, method: r.method }
    } finally {
      bar.done()
    }
  }
  const size = source.size ?? (await v.size())
  const bar = opts.output.progress({ label, unit: 'bytes', total: size })
  try {
    const opts = { signal: interrupt.signal, onProgress: (done: number) => bar.update(done, size) }
    if (source.path === null) await v.importStream(process.stdin, size, opts)
    else await v.importPipe(source.path, size, opts)
  } finally {
    bar.done()
    source.close()
  }
  return { bytes: size, seconds: (performance.now() - started) / 1000, method: 'stream' }
}

export async function exportVolume(v: Volume, file: string, opts: { output: Output; force?: boolean }): Promise<TransferResult> {
  if (file === '-' && process.stdout.isTTY) throw new UsageError('refusing to write an image to a terminal: redirect stdout or give a file')
  const started = performance.now()
  const label = `export ${v.vid}`
  const existing = file === '-' ? null : statOrThrow(file, 'export', false)
  if (existing && !existing.isFile() && !existing.isFIFO()) {
    throw new ReflinkPoolError('ERR_INVALID_ARG_VALUE', `cannot export ${v.vid} to ${file}: it is ${entryKind(existing)}; give a new or regular file, a FIFO, or - and redirect stdout`, { path: file })
  }
  if (existing?.isFile() && opts.force !== true) {
    throw new CliError(`refusing to overwrite ${file}: it exists (${humanSize(existing.size)}); add --force to replace it`, 'EEXIST')
  }
  if (existing === null) {
    // The durable copy would make missing directories; a typo in the path must not.
    const parent = dirname(resolve(file))
    if (statOrThrow(parent, 'export', true) === null) {
      throw new ReflinkPoolError('ENOENT', `cannot export ${v.vid} to ${file}: the directory ${parent} does not exist (it is not created)`, { path: parent })
    }
  }
  if (file !== '-' && !existing?.isFIFO()) {
    // A regular file (or none yet): the durable copy.
    const bar = opts.output.progress({ label, unit: 'bytes' })
    try {
      const r = await v.exportToFile(file, { signal: interrupt.signal, onProgress: (done: number, total: number) => bar.update(done, total) })
      return { bytes: await v.size(), seconds: (performance.now() - started) / 1000, method: r.method }
    } finally {
      bar.done()
    }
  }
  // `-` or a FIFO: the core reads the image and writes the descriptor itself, in one task.
  const fd = file === '-' ? 1 : await openFifo(file)
  const bar = opts.output.progress({ label, unit: 'bytes' })
  try {
    const bytes = await v.exportPipe(fd, { signal: interrupt.signal, onProgress: (done: number, total: number) => bar.update(done, total) })
    return { bytes, seconds: (performance.now() - started) / 1000, method: 'stream' }
  } finally {
    bar.done()
    if (fd !== 1) closeSync(fd)
  }
}

/** How often a FIFO export looks for a reader again. */
const FIFO_RETRY_MS = 100

/**
 * Open the FIFO `file` for writing without blocking a thread on it: O_NONBLOCK fails
 * (ENXIO) until a reader opens it, so wait for one in steps, and Ctrl-C is seen between
 * them. Never follows a symlink, and refuses whatever is not (or no longer) a FIFO.
 */
async function openFifo(file: string): Promise<number> {
  const { O_WRONLY, O_NONBLOCK, O_NOFOLLOW } = fsConstants
  for (;;) {
    interrupt.signal.throwIfAborted()
    let fd: number
    try {
      fd = openSync(file, O_WRONLY | O_NONBLOCK | O_NOFOLLOW)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err
      await sleep(FIFO_RETRY_MS, undefined, { signal: interrupt.signal })
      continue
    }
    if (fstatSync(fd).isFIFO()) return fd
    closeSync(fd)
    throw new ReflinkPoolError('ERR_SOURCE_CHANGED', `${file} stopped being a FIFO before the export opened it`, { path: file })
  }
}
