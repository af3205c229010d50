// How the CLI fails: one line on stderr, a stack only with --debug, and an exit
// status that tells scripts whether they called us wrong or the operation failed.
//
// The exit-status rule, here and only here (exitStatusOf): 2 when the command
// line itself is wrong, whatever the pool holds: an unknown option or command,
// a missing argument, a malformed size, count, revision number, vid or target
// pattern (UsageError, or the library's ERR_INVALID_VID: every vid the CLI
// hands over comes from its command line); 1 when a well-formed command was
// refused or failed (no such volume or revision, volume running, I/O error...).

import { escapeControls } from '../util/quote'

/** Exit statuses. Usage errors and operation failures differ so scripts can tell them apart. */
export const EXIT = {
  ok: 0,
  /** The operation was attempted and failed (I/O error, volume dirty, unknown volume...). */
  failure: 1,
  /** The command line was wrong (unknown option, missing argument, bad size, no pool given). */
  usage: 2,
  /** Interrupted by SIGINT; 128 + signal number, as shells do. */
  interrupted: 130,
  /** The reader of stdout went away (`| head`): 128 + SIGPIPE, as for `cat`. */
  closedPipe: 141,
} as const

/** What each exit status means, for --help and the man page. */
export const EXIT_STATUS_TEXT =
  `${EXIT.ok} success, ${EXIT.failure} the operation was refused or failed, ${EXIT.usage} usage error (bad option, size, vid, revision or pattern), ` +
  `${EXIT.interrupted} interrupted, ${EXIT.closedPipe} output pipe closed.`

/** Codes the CLI itself raises (the library's ERR_* table lives in ts/errors.ts). */
export const CLI_CODES = {
  usage: 'ERR_USAGE',
  poolNotFound: 'ERR_POOL_NOT_FOUND',
  benchUnavailable: 'ERR_BENCH_UNAVAILABLE',
  /** A loop device still uses the volume's dirty image (stop without --force). */
  volumeInUse: 'ERR_VOLUME_IN_USE',
  /** init --adopt found nothing it could adopt (exit 1; the report lists what was skipped). */
  nothingAdopted: 'ERR_NOTHING_ADOPTED',
  /** An import file is a qcow2, vmdk, vhdx or vdi container, not a raw image (import without --format raw). */
  notRaw: 'ERR_NOT_RAW_IMAGE',
  /** Raised by bin/reflink-pool.js when dist/ was never built. */
  notBuilt: 'ERR_NOT_BUILT',
} as const

/** A wrong command line: printed like any error but exits with EXIT.usage; `code` names what was wrong (default ERR_USAGE). */
export class UsageError extends Error {
  constructor(message: string, readonly code: string = CLI_CODES.usage) {
    super(message)
    this.name = 'UsageError'
  }
}

/** Library codes that can only mean a malformed command line (see the rule above). */
const USAGE_CODES: ReadonlySet<string> = new Set(['ERR_INVALID_VID'])

/** An operation failure raised by the CLI itself, with a stable code. */
export class CliError extends Error {
  constructor(message: string, readonly code: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CliError'
  }
}

export function exitStatusOf(err: unknown): number {
  return err instanceof UsageError || USAGE_CODES.has(codeOf(err)) ? EXIT.usage : EXIT.failure
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && code) return code
  if ((err as Error | null)?.name === 'AbortError') return 'ABORT_ERR'
  return 'ERR_INTERNAL'
}

/** The one line printed for an error: `reflink-pool: <message> (<code>)`. */
export function errorLine(err: unknown): string {
  const code = codeOf(err)
  let message = err instanceof Error ? err.message : String(err)
  // Node-style messages often start with the code already ("ENOENT: no such file..."): say it once.
  if (message.startsWith(`${code}: `)) message = message.slice(code.length + 2)
  message = message.split('\n')[0].trim() || 'unknown error'
  // Text from the command line (an unknown command, a path) may hold control characters: never print them raw.
  return `reflink-pool: ${escapeControls(message)} (${escapeControls(code)})`
}

/** The JSON shape of an error for --json callers (printed on stderr too, stdout stays for data). */
export function errorJson(err: unknown): Record<string, unknown> {
  const e = (err ?? {}) as Record<string, unknown>
  const out: Record<string, unknown> = { code: codeOf(err), message: err instanceof Error ? err.message : String(err) }
  // ERR_LOW_SPACE's figures (bytes) too, so a service can act on them.
  for (const key of ['errno', 'syscall', 'path', 'dest', 'free', 'need', 'floor']) if (e[key] !== undefined) out[key] = e[key]
  // A run that stopped part-way (clone) says which volumes exist.
  const volumes: Record<string, unknown> = {}
  for (const key of ['made', 'missing', 'skipped']) if (Array.isArray(e[key])) volumes[key] = e[key]
  return Object.keys(volumes).length ? { error: out, ...volumes } : { error: out }
}
