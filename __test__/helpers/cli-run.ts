// Runs the real `reflink-pool` CLI as a child process and returns exit status,
// stdout (as a Buffer too, for binary exports) and stderr. Tests must see the
// current source: the compiled bin (fast start) when dist/ is at least as new
// as every file of ts/, else the TypeScript entry through tsx (slower start).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'

export const REPO = join(__dirname, '..', '..')
export const CLI_ENTRY = join(REPO, 'ts', 'cli', 'main.ts')
export const BIN = join(REPO, 'bin', 'reflink-pool.js')
/** tsx's loader by absolute path: `--import tsx` would resolve from the child's cwd (tests run it elsewhere). */
const TSX_LOADER = pathToFileURL(require.resolve('tsx')).href

export interface CliResult {
  status: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stdoutBytes: Buffer
  stderr: string
}

export interface CliRunOptions {
  env?: Record<string, string | undefined>
  cwd?: string
  /** Bytes to feed on stdin (stdin is closed otherwise). */
  input?: Buffer
  /** true: bin/reflink-pool.js (compiled dist); false: the TS source; default: USE_COMPILED. */
  compiled?: boolean
}

/** dist/ was built from the current ts/ (every ts/X.ts has a dist/X.js at least as new). */
function distIsFresh(): boolean {
  const walk = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).every((e) => {
      const src = join(dir, e.name)
      if (e.isDirectory()) return walk(src)
      if (!e.name.endsWith('.ts') || e.name.endsWith('.d.ts')) return true
      const out = join(REPO, 'dist', relative(join(REPO, 'ts'), src)).replace(/\.ts$/, '.js')
      try {
        return statSync(out).mtimeMs >= statSync(src).mtimeMs
      } catch {
        return false
      }
    })
  return walk(join(REPO, 'ts'))
}

/** Decided once per test process. */
export const USE_COMPILED = distIsFresh()

/** node's arguments that run the CLI (before its own): the compiled bin or the TS entry (see USE_COMPILED). */
export function cliNodeArgs(compiled = USE_COMPILED): string[] {
  return compiled ? [BIN] : [`--import=${TSX_LOADER}`, CLI_ENTRY]
}

/** Start the CLI without waiting (for tests that signal it). */
export function spawnCli(args: string[], opts: CliRunOptions = {}): ChildProcessWithoutNullStreams {
  const argv = [...cliNodeArgs(opts.compiled), ...args]
  // COLUMNS: tables fit it when set (as ls); a test that wants a width sets it.
  const env: Record<string, string | undefined> = { ...process.env, REFLINK_POOL_DIR: undefined, COLUMNS: undefined, FORCE_COLOR: '0', ...opts.env }
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
  return spawn(process.execPath, argv, { cwd: opts.cwd ?? REPO, env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] })
}

export function runCli(args: string[], opts: CliRunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, opts)
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    child.on('error', reject)
    child.on('close', (status, signal) => {
      const stdoutBytes = Buffer.concat(out)
      resolve({ status, signal, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr: Buffer.concat(err).toString('utf8') })
    })
    child.stdin.on('error', () => {}) // the CLI may exit before reading everything (an error case)
    child.stdin.end(opts.input ?? undefined)
  })
}

/** Run and parse stdout as JSON (the --json contract); fails loudly with the CLI's stderr. */
export async function runJson<T = any>(args: string[], opts: CliRunOptions = {}): Promise<{ result: CliResult; json: T }> {
  const result = await runCli([...args, '--json'], opts)
  let json: T
  try {
    json = JSON.parse(result.stdout) as T
  } catch {
    throw new Error(`not JSON (status ${result.status}): ${result.stdout}\nstderr: ${result.stderr}`)
  }
  return { result, json }
}

/** A test image for the CLI suites: 8 MiB with 2.5 MiB of data in three runs, the rest zeros (holes once imported). */
export function sampleImage(): Buffer {
  const MiB = 1024 * 1024
  const img = Buffer.alloc(8 * MiB)
  for (const [off, len] of [[0, MiB], [3 * MiB + 4096, 512 * 1024], [7 * MiB, MiB]] as const) {
    for (let i = 0; i < len; i++) img[off + i] = (i * 7 + off) & 0xff || 1
  }
  return img
}
