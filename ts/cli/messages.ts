// The library speaks to programs ("needs { allowShrink: true }", "pass
// setupCheck: false", byte counts); the CLI speaks to people. Errors with a
// code the CLI knows are re-worded here, in its own terms (flags, human sizes,
// the next command to run), keeping the code; anything else passes unchanged.
import { humanSize } from './format'
import { CliError } from './errors'

/** What a command knows when one of its calls fails. */
export interface FailureContext {
  /** The command, e.g. 'resize', 'import', 'init'. */
  command: string
  vid?: string
  /** The pool directory (init). */
  dir?: string
  /** For shrink refusals: the current and the requested size in bytes. */
  from?: number
  to?: number
  /** The volume's kind, when known. */
  kind?: string
}

type Rewording = (ctx: FailureContext, err: { message: string }) => string | null

const REWORD: Record<string, Rewording> = {
  ERR_SHRINK_REFUSED: (c) =>
    c.from !== undefined && c.to !== undefined
      ? `refusing to shrink ${c.vid} from ${humanSize(c.from)} to ${humanSize(c.to)}: the data past ${humanSize(c.to)} would be lost; add --allow-shrink to do it anyway`
      : `refusing to shrink ${c.vid}: data past the new end would be lost; add --allow-shrink to do it anyway`,
  ERR_REFLINK_UNSUPPORTED: (c) =>
    c.command === 'init'
      ? `the filesystem of ${c.dir} cannot reflink: every clone and start would be a full copy (slow, and each volume holds its data several times); ` +
        'use XFS (reflink=1) or btrfs, or add --no-setup-check to accept full copies'
      : null,
  ERR_NOT_SAVE_ON_STOP: (c) =>
    `cannot ${c.command} ${c.vid}: it is ${c.kind ? `a ${c.kind}` : 'not a save-on-stop'} volume, which keeps no committed data; ` +
    'only origin and origin-snapshot volumes can be imported into or exported',
  ERR_VOLUME_DIRTY: (c, e) =>
    c.vid
      ? `cannot ${c.command} ${c.vid} while it is running: stop it first (reflink-pool volume stop ${c.vid})` +
        (c.command === 'remove' ? ' or add --force to remove it with what the VM wrote; nothing was removed' : '')
      : e.message,
  ERR_HAS_DEPENDENTS: (c, e) => {
    const deps = (e as { dependents?: string[] }).dependents
    return deps && c.vid
      ? `cannot remove ${c.vid}: ${deps.join(', ')} ${deps.length === 1 ? 'starts' : 'start'} from it and would break; ` +
          'remove them first, or together with --recursive; nothing was removed'
      : null
  },
  ERR_STREAM_CORRUPT: (c, e) => {
    if (c.command !== 'receive' || !c.vid) return null
    const cause = streamFault(e.message)
    // A cut receive that kept what it verified: say how to go on from there.
    const kept = (e as { resumableFrom?: number }).resumableFrom
    if (kept === undefined) return `cannot receive ${c.vid}: ${cause}; nothing was changed`
    return `cannot receive ${c.vid}: ${cause}; ${resumeHint(c.vid, kept)}`
  },
  // Ctrl-C during a receive that kept what it verified: the same way on.
  ABORT_ERR: (c, e) => {
    const kept = (e as { resumableFrom?: number }).resumableFrom
    return c.command === 'receive' && c.vid && kept !== undefined ? `interrupted; ${resumeHint(c.vid, kept)}` : null
  },
  ERR_STREAM_AUTH: (c, e) => (c.command === 'receive' && c.vid ? `cannot receive ${c.vid}: ${streamFault(e.message)}; nothing was changed` : null),
  ERR_UNSAFE_PATH: (c, e) => {
    // An entry under an image's name that the pool did not make (a symlink, FIFO, directory): never removed.
    const path = (e as { path?: string }).path
    if (c.command !== 'remove' || !path || !/not a regular file/.test(e.message)) return null
    return `cannot remove ${c.vid ?? 'these volumes'}: ${path} has an image's name but is not a regular file, so the pool did not make it ` +
      'and never removes it; move it away and run the command again; nothing was removed'
  },
  ERR_UNKNOWN_VOLUME: (c, e) => (c.vid && e.message.includes(c.vid) ? `no volume ${c.vid} in this pool (see: reflink-pool volume list)` : e.message),
}

/** How to go on from a cut receive of `vid` that kept its first `kept` bytes. */
function resumeHint(vid: string, kept: number): string {
  return `the first ${humanSize(kept)}, verified, are kept: resume with reflink-pool volume send SOURCE --resume TOKEN ` +
    `on the sending host (SOURCE: the volume sent there), TOKEN from reflink-pool volume resume-token ${vid} here (or drop them: volume receive --abort ${vid})`
}

/**
 * What is wrong with a refused stream, without the library's suffixes: the step label
 * (`, receive`, as Node's errors end in their syscall) and the resume hint the CLI
 * words itself.
 */
function streamFault(message: string): string {
  return message.split('; the first ')[0].replace(/, receive$/, '')
}

/** `err` in the CLI's words (a CliError with the same code and the original as cause), or `err` itself. */
export function reword(err: unknown, ctx: FailureContext): unknown {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string' || !(err instanceof Error) || err instanceof CliError) return err
  const text = REWORD[code]?.(ctx, err)
  if (!text) return err
  return new CliError(text, code, { cause: err })
}

/** A refusal of the CLI's own, worded as the library's refusal with that code would be. */
export function refuse(code: string, ctx: FailureContext): CliError {
  return new CliError(REWORD[code](ctx, { message: code }) ?? code, code)
}
