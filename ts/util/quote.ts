// How text a caller gave (a vid, a name, a pattern) appears in a message: in
// double quotes with every control character escaped (JSON's escapes), so an
// ESC or a newline in it can never reach a terminal raw or split a log line,
// and cut to a length a message can hold. The one quoting function of every
// layer: the pool's errors, the argument checks and the CLI use it alike.

/** `text` quoted and escaped (`"appvms/a\u001b[2J/root"`), cut at `max` characters with `...`. */
export function quote(text: string, max = 120): string {
  return text.length > max ? JSON.stringify(text.slice(0, max - 3)) + '...' : JSON.stringify(text)
}

/** `text` as it is when it holds no control character, else quote(text): for names listed one per line. */
export function printable(text: string): string {
  return [...text].some((c) => c < ' ' || c === '\x7f') ? quote(text, Infinity) : text
}
