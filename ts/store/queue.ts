// The in-process queue of the volume locks: one promise chain per key.
//
// Why a queue of its own: flock (lock.ts) alone would order two callers in one
// process too (each acquire opens its own fd), but each waiter would hold a
// native thread blocked in flock(2). Queueing here first keeps a process to one
// waiting native thread per volume. The map is module-wide, so two pool objects
// on one directory in one process also queue behind each other. A batch joins
// the queues of all its volumes at once (`queuedMany`, docs/design.md §7).

const queues = new Map<string, Promise<unknown>>()

/** Run `fn` once every earlier caller with the same `key` (in this process) has finished. */
export function queued<T>(key: string, fn: () => Promise<T>): Promise<T> {
  return queuedMany([key], fn)
}

/**
 * Run `fn` holding the queues of every key. All are joined in one synchronous
 * step, so two batches (or a batch and single calls) can never wait on each
 * other in a cycle.
 */
export async function queuedMany<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
  const unique = [...new Set(keys)]
  const prevs: Promise<unknown>[] = []
  const tails: Promise<unknown>[] = []
  let release!: () => void
  const mine = new Promise<void>((r) => (release = r))
  for (const key of unique) {
    const prev = queues.get(key)
    // A free key (the common case for a batch of a thousand) costs no promises: its tail is ours.
    const tail = prev === undefined ? mine : prev.then(() => mine)
    queues.set(key, tail)
    if (prev !== undefined) prevs.push(prev.catch(() => {}))
    tails.push(tail)
  }
  try {
    await Promise.all(prevs)
    return await fn()
  } finally {
    release()
    unique.forEach((key, i) => {
      if (queues.get(key) === tails[i]) queues.delete(key)
    })
  }
}
