// Shell-style patterns over vids (`--match`). Neutral and dependency-free: the
// CLI uses it to select volumes by name before any native code is loaded.
//
// Vids are paths (`appvms/web-1/root`), so the rules are those of path globs:
// `*` and `?` stay inside one component, `**` crosses `/` (and `**/` also
// matches no component at all, as in `appvms/**/root`), `[...]` is a class of
// one character (`!` or `^` first negates it, `a-z` is a range) that never
// matches `/`, and `\` makes the next character literal. A `[` with no closing
// `]` is a literal `[`, as in the shell.

/** Compile `pattern` to an anchored regular expression over whole vids. */
export function globToRegExp(pattern: string): RegExp {
  let out = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '\\' && i + 1 < pattern.length) {
      out += escapeRegExp(pattern[++i])
    } else if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++
        // `**/` may also stand for no component: `a/**/b` matches `a/b`.
        if (pattern[i + 1] === '/') {
          i++
          out += '(?:.*/)?'
        } else {
          out += '.*'
        }
      } else {
        out += '[^/]*'
      }
    } else if (c === '?') {
      out += '[^/]'
    } else if (c === '[') {
      const cls = readClass(pattern, i)
      if (cls === null) {
        out += '\\['
      } else {
        out += cls.source
        i = cls.end
      }
    } else {
      out += escapeRegExp(c)
    }
  }
  try {
    return new RegExp(`^${out}$`, 'su')
  } catch {
    // Only a class can be malformed here (a range such as `[z-a]`).
    throw new GlobSyntaxError(pattern)
  }
}

/** A pattern that cannot be compiled (a reversed range such as `[z-a]`). */
export class GlobSyntaxError extends Error {
  constructor(readonly pattern: string) {
    super(`invalid pattern ${JSON.stringify(pattern)}: a character range is reversed`)
    this.name = 'GlobSyntaxError'
  }
}

/** A predicate testing whole vids against `pattern`. */
export function globMatcher(pattern: string): (name: string) => boolean {
  const re = globToRegExp(pattern)
  return (name) => re.test(name)
}

/** The names matching `pattern`, in their given order. */
export function matchGlob(pattern: string, names: Iterable<string>): string[] {
  const test = globMatcher(pattern)
  return [...names].filter(test)
}

/** A `[...]` class starting at `start`, or null when it is not closed. */
function readClass(pattern: string, start: number): { source: string; end: number } | null {
  let i = start + 1
  let negate = false
  if (pattern[i] === '!' || pattern[i] === '^') {
    negate = true
    i++
  }
  let body = ''
  // A `]` right after the opening (or after the negation) is a member, as in the shell.
  let first = true
  for (; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === ']' && !first) {
      // A class never matches `/`, negated or not: it stands inside one component.
      return { source: negate ? `[^/${body}]` : `(?!/)[${body}]`, end: i }
    }
    first = false
    if (c === '\\' && i + 1 < pattern.length) {
      body += escapeClassChar(pattern[++i])
    } else if (c === '-' && body !== '' && pattern[i + 1] !== undefined && pattern[i + 1] !== ']') {
      body += '-'
    } else {
      body += escapeClassChar(c)
    }
  }
  return null
}

function escapeRegExp(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

function escapeClassChar(c: string): string {
  return c.replace(/[\]\\^-]/g, '\\$&')
}
