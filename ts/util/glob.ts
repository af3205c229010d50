// Shell-style patterns over vids (`--match`): `*` and `?` within one
// component, `**` across `/`, `[...]` a class. Stand-in until the fleet
// engineer's matcher lands in main, which replaces this file whole.

/** A pattern that cannot be compiled. */
export class GlobSyntaxError extends Error {
  constructor(readonly pattern: string) {
    super(`invalid pattern ${JSON.stringify(pattern)}`)
    this.name = 'GlobSyntaxError'
  }
}

/** A predicate testing whole vids against `pattern`. */
export function globMatcher(pattern: string): (name: string) => boolean {
  const source = pattern.replace(/\*\*|[*?]|\[[^\]]+\]|[.+^${}()|\\/]/g, (t) =>
    t === '**' ? '.*' : t === '*' ? '[^/]*' : t === '?' ? '[^/]' : t.startsWith('[') ? t.replace(/^\[!/, '[^') : `\\${t}`,
  )
  try {
    const re = new RegExp(`^${source}$`, 's')
    return (name) => re.test(name)
  } catch {
    throw new GlobSyntaxError(pattern)
  }
}
