// Argument checks run before any syscall: a bad argument rejects with
// ERR_INVALID_ARG_TYPE (wrong type) or ERR_INVALID_ARG_VALUE (right type,
// unacceptable value) and touches nothing on disk. Messages follow Node's.
import { libraryError } from './errors'

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`
  const shown = typeof value === 'string' ? `'${value.length > 28 ? value.slice(0, 25) + '...' : value}'` : String(value)
  return `type ${typeof value} (${shown})`
}

function typeError(name: string, expected: string, value: unknown): Error {
  return libraryError('ERR_INVALID_ARG_TYPE', `The "${name}" argument must be ${expected}. Received ${describe(value)}`)
}

function valueError(name: string, expected: string, value: unknown): Error {
  const shown = typeof value === 'string' ? `'${value}'` : String(value)
  return libraryError('ERR_INVALID_ARG_VALUE', `The argument '${name}' ${expected}. Received ${shown}`)
}

/** A non-empty path string without NUL bytes. */
export function validatePath(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw typeError(name, 'of type string', value)
  if (value.length === 0) throw valueError(name, 'must be a non-empty path', value)
  if (value.includes('\0')) throw valueError(name, 'must not contain null bytes', value)
}

/** A byte count: a safe non-negative integer (0 ... 2^53 - 1). */
export function validateSize(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') throw typeError(name, 'of type number', value)
  if (!Number.isSafeInteger(value) || value < 0) throw valueError(name, 'must be a safe non-negative integer', value)
}

export function validateOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): asserts value is T {
  if (typeof value !== 'string') throw typeError(name, 'of type string', value)
  if (!(allowed as readonly string[]).includes(value)) {
    throw valueError(name, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value)
  }
}

export function validateBoolean(name: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean') throw typeError(name, 'of type boolean', value)
}

export function validateFunction(name: string, value: unknown): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') throw typeError(name, 'of type function', value)
}

/** An options bag: undefined or a plain object. */
export function validateOptions(name: string, value: unknown): asserts value is object | undefined {
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw typeError(name, 'of type object', value)
  }
}

export function validateSignal(name: string, value: unknown): asserts value is AbortSignal {
  const s = value as AbortSignal | null
  if (s === null || typeof s !== 'object' || typeof s.aborted !== 'boolean' || typeof s.addEventListener !== 'function') {
    throw typeError(name, 'an instance of AbortSignal', value)
  }
}

/** Binary data for the native side. */
export function validateBuffer(name: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw typeError(name, 'an instance of Buffer or Uint8Array', value)
}

/** File permission bits (0 ... 0o7777). */
export function validateMode(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') throw typeError(name, 'of type number', value)
  if (!Number.isInteger(value) || value < 0 || value > 0o7777) throw valueError(name, 'must be file permission bits (0 to 0o7777)', value)
}
