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

/** JSON.stringify that writes bigints as numbers (sizes stay below 2^53 in practice). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? Number(v) : v), 2)
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
