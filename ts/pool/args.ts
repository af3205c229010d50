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
