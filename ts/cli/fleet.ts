// Many volumes in one command (docs/design.md §7): `volume remove|start|stop
// VID... [--match GLOB]...` select their volumes here and run as one batch in
// one process, with a progress bar on a terminal.
import type { Command } from 'commander'
import { GlobSyntaxError, globMatcher } from '../util/glob'
import { UsageError } from './errors'
import type { Output } from './output'
import type { Progress } from './progress'
import type { Pool } from './pool-access'

/** Adds the selection options shared by the fleet commands. */
export function withMatch(cmd: Command): Command {
  return cmd.option('--match <glob>', 'also every volume whose vid matches (repeatable; * and ? stay in one component, ** crosses /, [...] classes); quote it', collect, [])
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

/**
 * The vids the command line names: those given, then those of each `--match`
 * pattern (in the pool's order), each once. A pattern that matches nothing, or
 * no vid at all, is a usage error: a script that removes `--match 'apvms/*'`
 * must not succeed by doing nothing.
 */
export async function selectVids(pool: Pool, given: readonly string[], patterns: readonly string[]): Promise<string[]> {
  if (given.length === 0 && patterns.length === 0) throw new UsageError('name at least one vid, or --match GLOB')
  const out = [...given]
  if (patterns.length) {
    const all = (await pool.listVolumes()).map((v) => v.vid)
    for (const pattern of patterns) {
      let test: (vid: string) => boolean
      try {
        test = globMatcher(pattern)
      } catch (e) {
        if (e instanceof GlobSyntaxError) throw new UsageError(`--match: ${e.message}`)
        throw e
      }
      const hits = all.filter(test)
      if (hits.length === 0) throw new UsageError(`--match ${JSON.stringify(pattern)} matches no volume of the pool${deeperHint(pattern, all)}`)
      out.push(...hits)
    }
  }
  return [...new Set(out)]
}

/** For a pattern that stops short of whole vids (`appvms/ci-*`): the one that reaches them, when it matches; else where to look. */
function deeperHint(pattern: string, all: readonly string[]): string {
  const deeper = `${pattern.replace(/\/+$/, '')}/**`
  const n = all.filter(globMatcher(deeper)).length
  if (n === 0) return ' (see: reflink-pool volume list)'
  return ` (* and ? stay inside one part of a vid: ${JSON.stringify(deeper)} matches ${n} volume${n === 1 ? '' : 's'})`
}

/** Whether the command runs on one volume named once: its output keeps the single-volume form. */
export const singleVolume = (given: readonly string[], patterns: readonly string[]) => given.length === 1 && patterns.length === 0

/** A progress bar over volumes, and the batch's onProgress feeding it. */
export function volumesProgress(out: Output, label: string, total: number): { bar: Progress; onProgress: (done: number, total: number) => void } {
  const bar = out.progress({ label, unit: 'items', total })
  return { bar, onProgress: (done, n) => bar.update(done, n) }
}

/** "a, b, c and 7 more" for human summaries. */
export function someVids(vids: readonly string[], max = 5): string {
  return vids.length <= max ? vids.join(', ') : `${vids.slice(0, max).join(', ')} and ${vids.length - max} more`
}
