// The order people expect of names with numbers in them (`ci-2` before
// `ci-10`), as `ls -v` and `sort -V` give: digit runs compare by value.

/** Made on first use: creating a collator loads ICU's collation data (8 ms of every CLI start otherwise). */
let collator: Intl.Collator | undefined

/** Compare two names, digit runs by value; a total order (ties broken by code units). */
export function naturalCompare(a: string, b: string): number {
  collator ??= new Intl.Collator('en', { numeric: true, sensitivity: 'variant' })
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0)
}
