// Colour for human output, through Node's own util.styleText. Neutral (the CLI
// and the benchmark harness both use it).
//
// When colour is on, per output stream, in Node's order of precedence:
// FORCE_COLOR set: on, unless it is "0" or "false"; else NO_COLOR set and not
// empty: off; else on only for a terminal (not TERM=dumb). Pipes and files
// therefore get plain text.
import * as util from 'node:util'

type StyleText = (format: string, text: string, options?: { validateStream?: boolean }) => string
/** Node >= 20.12; on older 20.x releases output stays plain. */
const styleText = (util as { styleText?: StyleText }).styleText

export type Style = 'error' | 'warning' | 'ok' | 'dim' | 'bold'

const FORMATS: Record<Style, string> = {
  error: 'red',
  warning: 'yellow',
  ok: 'green',
  dim: 'dim',
  bold: 'bold',
}

/** Whether text written to `stream` should be coloured. */
export function colorEnabled(stream: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): boolean {
  const force = env.FORCE_COLOR
  if (force !== undefined) return force !== '0' && force.toLowerCase() !== 'false'
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  const s = stream as Partial<NodeJS.WriteStream>
  return s.isTTY === true && env.TERM !== 'dumb'
}

/** A styler bound to one stream: `paint('error', text)` colours only when that stream takes colour. */
export function painter(stream: NodeJS.WritableStream): (style: Style, text: string) => string {
  const on = colorEnabled(stream) && styleText !== undefined
  // The decision is ours (above); validateStream: false stops styleText from second-guessing it against stdout.
  return (style, text) => (on ? styleText!(FORMATS[style], text, { validateStream: false }) : text)
}
