// Running a cancellable native task with progress: the AbortSignal wired to a
// CancelToken, a throwing onProgress turned into a cancel (it must never reach
// native code), reports still queued after the task settled dropped, and the
// final report (returned with the task's value) delivered just before resolving.
import { native } from './binding'
import { abortError, isReflinkPoolError } from './errors'
import { unwrap, type Outcome } from './outcome'

export type CancelToken = InstanceType<typeof native.CancelToken>
type Report = (done: number, total: number) => void

/** A native CancelToken that `signal` cancels; `detach` unhooks it once the task settled. The one place a signal meets a token. */
export function cancelOn(signal: AbortSignal | undefined): { token: CancelToken; detach: () => void } {
  const token = new native.CancelToken()
  if (!signal) return { token, detach: () => {} }
  const onAbort = () => token.cancel()
  signal.addEventListener('abort', onAbort, { once: true })
  return { token, detach: () => signal.removeEventListener('abort', onAbort) }
}

/** The final report a task's value carries, if it is a task outcome that has one. */
function lastProgress(value: unknown): { done: number; total: number } | null {
  if (typeof value !== 'object' || value === null || !('lastProgress' in value)) return null
  return (value as { lastProgress?: { done: number; total: number } | null }).lastProgress ?? null
}

export async function runControlled<T>(
  what: string,
  signal: AbortSignal | undefined,
  onProgress: Report | undefined,
  call: (token: CancelToken, progress: Report | undefined) => Promise<Outcome<T>>,
): Promise<T> {
  // An abort before this call (while its caller awaited a lock, a stat, a copy slot)
  // fires no event any more: it is seen here, and the task never starts.
  if (signal?.aborted) throw abortError(signal)
  const { token, detach } = cancelOn(signal)
  let settled = false
  let progressError: { error: unknown } | undefined
  const progress = onProgress && ((done: number, total: number) => {
    if (settled || progressError) return
    try {
      onProgress(done, total)
    } catch (error) {
      progressError = { error }
      token.cancel()
    }
  })
  try {
    const value = await unwrap(call(token, progress))
    const last = lastProgress(value)
    if (progress && last) progress(last.done, last.total)
    // The task finished before a cancel could land: it stands, and the
    // callback's error is surfaced as a warning rather than lost.
    if (progressError) process.emitWarning(`${what}: onProgress threw after the operation completed: ${String(progressError.error)}`)
    return value
  } catch (e) {
    if (progressError) throw progressError.error
    if (isReflinkPoolError(e, 'ABORT_ERR')) throw abortError(signal)
    throw e
  } finally {
    settled = true
    detach()
  }
}
