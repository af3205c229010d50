// How text a caller gave (a vid, a name, a pattern) appears in a message: in
// double quotes with every control character escaped (JSON's escapes), so an
// ESC or a newline in it can never reach a terminal raw or split a log line,
// and cut to a length a message can hold. The one quoting function of every
// layer: the pool's errors, the argument checks and the CLI use it alike.

const CONTROL = /[\u0000-\u001f\u007f]/g // eslint-disable-line no-control-regex

/** `text` quoted and escaped (`"appvms/a\u001b[2J/root"`), cut at `max` characters with `...`. */
export function quote(text: string, max = 120): string {
  return text.length > max ? JSON.stringify(text.slice(0, max - 3)) + '...' : JSON.stringify(text)
}

/** `text` with its control characters escaped as quote() escapes them, and nothing else changed (a last line of defence at the terminal). */
export function escapeControls(text: string): string {
  return text.replace(CONTROL, (c) => JSON.stringify(c).slice(1, -1))
}

/** `text` as it is when it holds no control character, else quote(text): for names listed one per line. */
export function printable(text: string): string {
  return escapeControls(text) === text ? text : quote(text, Infinity)
}
