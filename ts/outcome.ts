// Native tasks resolve with `{ status: 'ok', value } | { status: 'error', error }`
// (errors as data, see crates/node/src/outcome.rs); this turns one into a value
// or a thrown Node-shaped error.
import type { NativeError } from './binding'
import { fromNativeError } from './errors'

export type Outcome<T> = { status: 'ok'; value: T } | { status: 'error'; error: NativeError }

export async function unwrap<T>(pending: Promise<Outcome<T>>): Promise<T> {
  const outcome = await pending
  if (outcome.status === 'error') throw fromNativeError(outcome.error)
  return outcome.value
}

/** A native `Option` arrives as an optional `value`: absent becomes `null`. */
export async function unwrapOrNull<T>(pending: Promise<{ status: 'ok'; value?: T } | { status: 'error'; error: NativeError }>): Promise<T | null> {
  const outcome = await pending
  if (outcome.status === 'error') throw fromNativeError(outcome.error)
  return outcome.value ?? null
}
