// The order people expect of names with numbers in them (`ci-2` before
// `ci-10`), as `ls -v` and `sort -V` give: digit runs compare by value.

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'variant' })

/** Compare two names, digit runs by value; a total order (ties broken by code units). */
export function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0)
}
