// Long native copies share the libuv threadpool (4 threads by default) with
// every fs and dns call of the process. A copy of a large image holds its
// thread for seconds, so copies are admitted through this small queue: at most
// `copyConcurrency` run at once (default 2), leaving the other threads free.
// Short operations (probes, renames, fsyncs) are not limited.
import { abortError, libraryError } from './errors'

class Limiter {
  private running = 0
  private readonly waiting: Array<() => void> = []

  constructor(private limit: number) {}

  setLimit(n: number): void {
    this.limit = n
    // Raising the limit admits waiters now rather than when a running copy ends.
    while (this.running < this.limit && this.waiting.length > 0) {
      this.running++
      this.waiting.shift()!()
    }
  }

  /** Run `job` once a slot is free; an abort while waiting rejects without running it. */
  async run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.running >= this.limit) await this.slot(signal)
    else this.running++
    try {
      return await job()
    } finally {
      this.release()
    }
  }

  private slot(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = () => {
        const i = this.waiting.indexOf(grant)
        if (i >= 0) this.waiting.splice(i, 1)
        reject(abortError(signal))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiting.push(grant)
    })
  }

  private release(): void {
    // The slot passes straight to the next waiter (running stays the same),
    // unless the limit was lowered meanwhile.
    const next = this.running <= this.limit ? this.waiting.shift() : undefined
    if (next) next()
    else this.running--
  }
}

const fromEnv = Number(process.env.REFLINK_POOL_COPY_CONCURRENCY)
export const copySlots = new Limiter(Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : 2)

/** Set how many long native copies may run at once (default 2, or REFLINK_POOL_COPY_CONCURRENCY); a clone only (reflink 'always') takes no slot. */
export function setCopyConcurrency(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw libraryError('ERR_INVALID_ARG_VALUE', `The argument 'n' must be a positive integer. Received ${n}`)
  }
  copySlots.setLimit(n)
}
