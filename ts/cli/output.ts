// Where results go: JSON on stdout with --json, human text otherwise.
// Every command builds one data value and one human rendering of it, so the two
// never drift apart.
import type { Command } from 'commander'
import { createProgress, type Progress, type ProgressOptions } from './progress'

export interface GlobalOptions {
  pool?: string
  json: boolean
  debug: boolean
}

export function globalOptions(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as Partial<GlobalOptions>
  return { pool: o.pool, json: o.json === true, debug: o.debug === true }
}

/**
 * JSON.stringify with the CLI's number rules, in this one place: bigints as
 * numbers (sizes stay below 2^53 in practice); durations rounded to what a
 * clock on a shared machine can tell: `seconds` (and `*Seconds`) to 3
 * decimals, `*Ms` to whole milliseconds, a per-item `per*Ms` to 3 decimals
 * (a clone takes well under 1 ms).
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (key, v) => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? roundDuration(key, v) : v), 2)
}

function roundDuration(key: string, v: number): number {
  if (key === 'seconds' || key.endsWith('Seconds') || /^per[A-Z].*Ms$/.test(key)) return Math.round(v * 1000) / 1000
  if (key === 'ms' || key.endsWith('Ms')) return Math.round(v)
  return v
}

export class Output {
  constructor(readonly json: boolean, private readonly stdout: NodeJS.WritableStream = process.stdout) {}

  /** Print a command's result: `data` as JSON, or `human()` as text. */
  result(data: unknown, human: () => string): void {
    const text = this.json ? toJson(data) : human()
    if (text) this.stdout.write(text.endsWith('\n') ? text : text + '\n')
  }

  /** A progress bar, or a no-op when the output is JSON or not a terminal. */
  progress(opts: Omit<ProgressOptions, 'enabled'> & { enabled?: boolean }): Progress {
    return createProgress({ ...opts, enabled: this.json ? false : opts.enabled })
  }
}
