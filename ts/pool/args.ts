// Argument checks shared by the pool and volume calls: they run before any
// lock or file access, so a bad argument changes nothing.
import { poolError } from './fail'

/** A size in bytes: a safe non-negative integer. */
export function checkSize(size: unknown, what: string): number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw poolError('ERR_INVALID_ARG_VALUE', `${what} must be a safe non-negative integer number of bytes, got ${String(size)}`)
  }
  return size
}

/** revisionsToKeep: an integer >= -1 (-1 disables snapshots). */
export function checkRevisionsToKeep(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < -1) {
    throw poolError('ERR_INVALID_ARG_VALUE', `${what} must be an integer >= -1, got ${String(value)}`)
  }
  return value
}

export function checkBoolean(value: unknown, what: string): boolean | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'boolean') throw poolError('ERR_INVALID_ARG_TYPE', `${what} must be a boolean, got ${typeof value}`)
  return value
}

export function checkString(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') {
    throw poolError('ERR_INVALID_ARG_TYPE', `${what} must be a non-empty string, got ${typeof value === 'string' ? "''" : typeof value}`)
  }
  return value
}

/** An options argument: undefined means {}; anything but a plain object is ERR_INVALID_ARG_TYPE. */
export function checkOptions<T extends object>(value: T | undefined, what: string): Partial<T> {
  if (value === undefined || value === null) return {}
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw poolError('ERR_INVALID_ARG_TYPE', `${what} must be an options object, got ${Array.isArray(value) ? 'an array' : typeof value}`)
  }
  return value
}

export function checkSignal(value: unknown, what: string): AbortSignal | undefined {
  if (value === undefined) return undefined
  if (!(value instanceof AbortSignal)) throw poolError('ERR_INVALID_ARG_TYPE', `${what} must be an AbortSignal`)
  return value
}

export function checkFunction<F extends (...args: never[]) => unknown>(value: unknown, what: string): F | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'function') throw poolError('ERR_INVALID_ARG_TYPE', `${what} must be a function, got ${typeof value}`)
  return value as F
}

/** Refuse keys an options object does not know (a typo must not be ignored silently). */
export function checkKeys(o: object, known: readonly string[], what: string): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw poolError('ERR_INVALID_ARG_VALUE', `${what}: unknown option ${JSON.stringify(k)} (known: ${known.join(', ')})`)
  }
}

/** A path argument: a non-empty string without NUL bytes. */
export function checkPathArg(value: unknown, what: string): string {
  const path = checkString(value, what)
  if (path.includes('\0')) throw poolError('ERR_INVALID_ARG_VALUE', `${what} must not contain NUL bytes`)
  return path
}
