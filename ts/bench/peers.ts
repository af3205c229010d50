// The peers the product is measured against, and their setup. Each copies
// `src` to a new `dst`; which of them make the result durable is part of what
// the table reports, so it is stated here once.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { constants, existsSync, promises as fsp, rmSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface, type Interface } from 'node:readline'
import type { TimedPeer } from './interleave'
import { hasCommand, run } from './system'

export interface Peer {
  id: string
  label: string
  /** fsync of the result (and its directory) before returning. */
  durable: boolean
  copy(src: string, dst: string): Promise<number | void>
}

/**
 * Turn a copy peer into a timed peer writing a fresh destination each round;
 * `inspect` looks at the result, then it is removed, both untimed.
 */
export function copyPeer(peer: Peer, src: string, outDir: string, inspect?: (dst: string) => void): TimedPeer {
  const dst = (round: number) => join(outDir, `${peer.id}-${round}`)
  return {
    id: peer.id,
    run: (round) => peer.copy(src, dst(round)),
    cleanup: (round) => {
      inspect?.(dst(round))
      rmSync(dst(round), { force: true })
    },
  }
}

/** Root of the repository checkout (ts/bench/ -> ../..; dist/bench/ -> ../..). */
export const REPO_ROOT = join(__dirname, '..', '..')

const FLOOR_HOW =
  'rows against the floor are skipped; to include them, build it from a checkout of the repository ' +
  '(cargo build --release --example floor -p reflink-pool-core) and set REFLINK_POOL_FLOOR to target/release/examples/floor'

const FLOOR_FROM_INSTALL = `the Rust floor binary is built from the repository's sources, which an npm install does not ship; ${FLOOR_HOW}`

/** The durable copies the floor makes, by the syscalls that move the data. */
export const FLOOR_SYSCALLS = { clone: 'FICLONE', sparse: 'SEEK_DATA + copy_file_range', readwrite: 'SEEK_DATA + pread/pwrite' } as const
export type FloorCopyMode = keyof typeof FLOOR_SYSCALLS

/**
 * The floor: `crates/core/examples/floor.rs`, a long-lived process doing the
 * durable-copy syscalls directly and timing them itself, so neither process
 * start-up nor the pipe is counted.
 */
export class Floor {
  private child: ChildProcessWithoutNullStreams
  private lines: Interface
  private waiting: ((line: string) => void)[] = []

  private constructor(bin: string) {
    this.child = spawn(bin, [], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.lines = createInterface({ input: this.child.stdout })
    this.lines.on('line', (line) => this.waiting.shift()?.(line))
  }

  /**
   * Start the floor: a prebuilt binary named by REFLINK_POOL_FLOOR, else one
   * built by cargo (release) from a checkout of the repository. An npm install
   * has neither the Rust sources nor (usually) cargo: then this rejects with
   * what is missing and how to get it, and the rows against the floor are skipped.
   */
  static async start(log: (msg: string) => void = () => {}): Promise<Floor> {
    const prebuilt = process.env.REFLINK_POOL_FLOOR
    if (prebuilt) {
      if (!existsSync(prebuilt)) throw new Error(`REFLINK_POOL_FLOOR=${prebuilt} does not exist`)
      return new Floor(prebuilt)
    }
    const manifest = join(REPO_ROOT, 'Cargo.toml')
    if (!existsSync(manifest)) throw new Error(FLOOR_FROM_INSTALL)
    if (!hasCommand('cargo')) throw new Error(`cargo is not installed (rustup: https://rustup.rs), so the floor cannot be built; ${FLOOR_HOW}`)
    log('building the floor binary (cargo build --release --example floor)')
    await run('cargo', ['build', '--quiet', '--release', '--example', 'floor', '-p', 'reflink-pool-core', '--manifest-path', manifest])
    return new Floor(join(REPO_ROOT, 'target', 'release', 'examples', 'floor'))
  }

  /**
   * One durable step: a copy (`clone`, `sparse`), or `link` src to dst / `unlink` src, each with
   * the directory fsync; or `ficlone`: the ioctl alone into a new dst, not durable, dst left in
   * place. Resolves with the floor's own timing in ms and the data bytes it moved.
   */
  copy(mode: FloorCopyMode | 'link' | 'unlink' | 'ficlone', src: string, dst = '-'): Promise<{ ms: number; bytes: number }> {
    return this.request(`${mode} ${src} ${dst}`)
  }

  /**
   * `batch`: the group commit of `n` clones of `src` under `dir` (the syscalls of the
   * pool's batch clone, syncfs barrier; `batchfsync`: fsync barrier); `fanout`: `n`
   * FICLONEs from one thread per source of the comma-separated `src` list; `clones`:
   * `n` FICLONEs of `src` into fresh files of `dir` back to back (`clonesync`: then
   * one syncfs), the files left in `dir`; `remove`: the remove batch of the `n` volumes
   * a `batch` made in `dir` (`src` unused).
   */
  batch(mode: 'batch' | 'batchfsync' | 'fanout' | 'clones' | 'clonesync' | 'remove', src: string, dir: string, n: number): Promise<{ ms: number; bytes: number }> {
    return this.request(`${mode} ${src} ${dir} ${n}`)
  }

  /**
   * `fleetday`: a fleet's day under `dir` through the pool's syscalls (n clones of
   * `src` in one group commit, the start batch, 1 MiB written into each, the stop of
   * each volume as the pool commits it, the remove batch); `phases` in ms.
   */
  async fleetDay(src: string, dir: string, n: number): Promise<{ ms: number; phases: Record<string, number> }> {
    const r = await this.request(`fleetday ${src} ${dir} ${n}`)
    return { ms: r.ms, phases: r.phases ?? {} }
  }

  private request(line: string): Promise<{ ms: number; bytes: number; phases?: Record<string, number> }> {
    return new Promise((resolve, reject) => {
      this.waiting.push((answer) => {
        const [status, a, ...rest] = answer.split(' ')
        const phases = rest[1] ? Object.fromEntries(rest[1].split(',').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v) / 1e6])) : undefined
        if (status === 'ok') resolve({ ms: Number(a) / 1e6, bytes: Number(rest[0]), phases })
        else reject(new Error(`floor ${line}: errno ${a}: ${rest.join(' ')}`))
      })
      this.child.stdin.write(`${line}\n`)
    })
  }

  peer(mode: FloorCopyMode): Peer {
    return {
      id: 'floor',
      label: `floor (same syscalls in Rust: ${FLOOR_SYSCALLS[mode]})`,
      durable: true,
      copy: async (src, dst) => (await this.copy(mode, src, dst)).ms,
    }
  }

  stop(): void {
    this.child.stdin.end()
    this.lines.close()
  }
}

/** `sync FILE` (fsync of that file), for peers that do not make their result durable themselves. */
const fsyncFile = (path: string) => run('sync', [path])

export const cpReflinkAlways: Peer = {
  id: 'cp-reflink',
  label: 'cp --reflink=always',
  durable: false,
  copy: async (src, dst) => void (await run('cp', ['--reflink=always', src, dst])),
}

export const nodeCopyFileFicloneForce: Peer = {
  id: 'fs.copyFile-ficlone',
  label: 'fs.copyFile(COPYFILE_FICLONE_FORCE)',
  durable: false,
  copy: (src, dst) => fsp.copyFile(src, dst, constants.COPYFILE_FICLONE_FORCE),
}

/** `@reflink/reflink` (a devDependency), loaded lazily so a missing install is a skipped peer, not a crash. */
export function reflinkPackage(): Peer | string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require('@reflink/reflink') as { reflinkFile(src: string, dst: string): Promise<unknown> }
    return { id: 'reflink-npm', label: '@reflink/reflink', durable: false, copy: async (s, d) => void (await mod.reflinkFile(s, d)) }
  } catch (e) {
    return `@reflink/reflink not installed, so its rows are skipped (npm install @reflink/reflink): ${(e as Error).message.split('\n')[0]}`
  }
}

/** A command-line copy followed by `sync FILE`, so it is compared with a durable copy. */
function commandThenSync(id: string, label: string, bin: string, args: string[]): Peer {
  return {
    id,
    label: `${label} + sync`,
    durable: true,
    copy: async (src, dst) => {
      await run(bin, [...args, src, dst])
      await fsyncFile(dst)
    },
  }
}

export const qemuImgConvert = commandThenSync('qemu-img', 'qemu-img convert -O raw', 'qemu-img', ['convert', '-O', 'raw'])
export const cpDefault = commandThenSync('cp', 'cp (default)', 'cp', [])
export const cpSparseAlways = commandThenSync('cp-sparse', 'cp --sparse=always', 'cp', ['--sparse=always'])

export const nodeCopyFile: Peer = {
  id: 'fs.copyFile',
  label: 'fs.copyFile + sync',
  durable: true,
  copy: async (src, dst) => {
    await fsp.copyFile(src, dst)
    await fsyncFile(dst)
  },
}

/**
 * Check what the peers need and report what is missing, with how to get it, so
 * those peers are skipped loudly. The harness never installs anything itself.
 */
export async function checkPeers(): Promise<string[]> {
  const missing: string[] = []
  if (!hasCommand('qemu-img')) {
    missing.push('qemu-img: not installed, so its rows are skipped; install qemu-utils (Debian/Ubuntu: apt-get install qemu-utils; Fedora: dnf install qemu-img)')
  }
  try {
    const v = await run('cp', ['--version'])
    if (!/GNU coreutils/.test(v)) missing.push('cp: not GNU coreutils')
  } catch {
    missing.push('cp: not found')
  }
  const r = reflinkPackage()
  if (typeof r === 'string') missing.push(r)
  return missing
}
