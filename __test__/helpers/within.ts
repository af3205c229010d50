// Bounding a test's wait: `within(p, ms, what)` rejects naming `what` when `p`
// has not settled after `ms` (a blocked thread shows as a timeout, not a hang).

export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}
