// Bounded concurrency over a list, for per-item async calls (the pool's
// per-volume fallback of batch calls, the demo, the CLI's per-volume views).
import { abortError } from './errors'

/**
 * Run `fn` on every item with at most `limit` in flight. Stops starting new
 * items after the first failure (or an abort), waits for those in flight, then
 * rethrows it. Returns each item's duration in ms, in input order.
 */
export async function forEachBounded<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<unknown>,
  opts: { signal?: AbortSignal; onDone?: (done: number, total: number) => void } = {},
): Promise<number[]> {
  const durations = new Array<number>(items.length).fill(0)
  let next = 0
  let done = 0
  let failure: { err: unknown } | null = null
  async function worker(): Promise<void> {
    while (failure === null && next < items.length) {
      if (opts.signal?.aborted) {
        failure = { err: abortError(opts.signal) }
        return
      }
      const i = next++
      const t0 = performance.now()
      try {
        await fn(items[i], i)
      } catch (err) {
        failure ??= { err }
        return
      }
      durations[i] = performance.now() - t0
      opts.onDone?.(++done, items.length)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  if (failure !== null) throw (failure as { err: unknown }).err
  return durations
}

/** `fn` of every item, at most `limit` in flight, results in input order (fails as forEachBounded). */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  await forEachBounded(items, limit, async (item, i) => {
    out[i] = await fn(item, i)
  })
  return out
}
