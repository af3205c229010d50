// Summaries of timing samples. Shared machines drift, so every figure the
// harness reports is a median with its min–max, and every target is a ratio of
// two peers measured in the same interleaved rounds.

export interface Summary {
  median: number
  min: number
  max: number
  n: number
}

/** Median, min and max of `samples` (NaN fields when there are none). */
export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b)
  const n = s.length
  if (n === 0) return { median: NaN, min: NaN, max: NaN, n }
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
  return { median, min: s[0], max: s[n - 1], n }
}

/** Per-round ratios `a[i] / b[i]` of two sample lists from the same interleaved rounds. */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.min(a.length, b.length)
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push(a[i] / b[i])
  return out
}
