// Argument parsers shared by the commands. A bad value is a usage error
// (commander turns InvalidArgumentError into one), never an operation failure.
import { InvalidArgumentError } from 'commander'
import { parseSize, SIZE_SYNTAX } from './format'

/** "10G" / "10GiB" (2^30 units), "10GB" (10^9), "4096" (bytes) -> bytes, as GNU `truncate -s`. */
export function sizeArg(text: string): number {
  const bytes = parseSize(text)
  if (bytes === null) throw new InvalidArgumentError(`not a size: "${text}" (e.g. 4096, 512M, 10GiB, 10GB)`)
  if (bytes === Infinity) throw new InvalidArgumentError(`too large: "${text}" (at most ${Number.MAX_SAFE_INTEGER} bytes, about 8 PiB)`)
  return bytes
}

/** A pool's minFree: a size as sizeArg, or a percentage of the filesystem ("10%"). */
export function minFreeArg(text: string): number | `${number}%` {
  const t = text.trim()
  if (!t.endsWith('%')) return sizeArg(t)
  const n = Number(t.slice(0, -1))
  if (!/^\d+(\.\d+)?%$/.test(t) || n > 100) throw new InvalidArgumentError(`not a percentage from 0% to 100%: "${text}"`)
  return `${n}%`
}

/** The size rule for a command's --help. */
export function sizeHelp(): string {
  return `\n${SIZE_SYNTAX}.\n`
}

/** A whole number within [min, max]. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (text: string): number => {
    const n = Number(text)
    if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, got "${text}"`)
    }
    return n
  }
}

/** A revision number (`volume revert V 3`): a whole number from 1; anything else is a usage error, never "no such revision". */
export const revisionArg = intArg(1)

/** Text for a command's --help: a list of example invocations. */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`
}
