// The in-process queue of the volume locks: one promise chain per key.
//
// Why a queue of its own: flock (lock.ts) alone would order two callers in one
// process too (each acquire opens its own fd), but each waiter would hold a
// native thread blocked in flock(2). Queueing here first keeps a process to one
// waiting native thread per volume. The map is module-wide, so two pool objects
// on one directory in one process also queue behind each other.

const queues = new Map<string, Promise<unknown>>()

/** Run `fn` once every earlier caller with the same `key` (in this process) has finished. */
export async function queued<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve()
  let release!: () => void
  const mine = new Promise<void>((r) => (release = r))
  const tail = prev.then(() => mine)
  queues.set(key, tail)
  try {
    await prev.catch(() => {})
    return await fn()
  } finally {
    release()
    if (queues.get(key) === tail) queues.delete(key)
  }
}
