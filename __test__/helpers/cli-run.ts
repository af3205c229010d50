// Runs the real `reflink-pool` CLI as a child process (the TypeScript entry
// through tsx, so tests always see the current source; one test also runs the
// compiled bin). Returns exit status, stdout (as a Buffer too, for binary
// exports) and stderr.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
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
  /** Run bin/reflink-pool.js (compiled dist) instead of the TS source. */
  compiled?: boolean
}

export function runCli(args: string[], opts: CliRunOptions = {}): Promise<CliResult> {
  const argv = opts.compiled ? [BIN, ...args] : [`--import=${TSX_LOADER}`, CLI_ENTRY, ...args]
  const env: Record<string, string | undefined> = { ...process.env, REFLINK_POOL_DIR: undefined, FORCE_COLOR: '0', ...opts.env }
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd: opts.cwd ?? REPO, env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] })
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
