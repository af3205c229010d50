// Running a cancellable native task with progress: the AbortSignal wired to a
// CancelToken, a throwing onProgress turned into a cancel (it must never reach
// native code), reports still queued after the task settled dropped, and the
// final report (returned with the task's value) delivered just before resolving.
import { native } from './binding'
import { abortError, isReflinkPoolError } from './errors'
import { unwrap, type Outcome } from './outcome'

type CancelToken = InstanceType<typeof native.CancelToken>
type Report = (done: number, total: number) => void

export async function runControlled<T extends { lastProgress?: { done: number; total: number } | null }>(
  what: string,
  signal: AbortSignal | undefined,
  onProgress: Report | undefined,
  call: (token: CancelToken, progress: Report | undefined) => Promise<Outcome<T>>,
): Promise<T> {
  // An abort before this call (while its caller awaited a lock, a stat, a copy slot)
  // fires no event any more: it is seen here, and the task never starts.
  if (signal?.aborted) throw abortError(signal)
  const token = new native.CancelToken()
  const onAbort = () => token.cancel()
  signal?.addEventListener('abort', onAbort, { once: true })
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
    if (progress && value.lastProgress) progress(value.lastProgress.done, value.lastProgress.total)
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
    signal?.removeEventListener('abort', onAbort)
  }
}
