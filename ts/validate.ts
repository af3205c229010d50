// The one module of argument checks, for the primitives and the pool alike.
// Every check runs before any syscall or lock: a bad argument rejects with
// ERR_INVALID_ARG_TYPE (wrong type) or ERR_INVALID_ARG_VALUE (right type,
// unacceptable value, unknown option key) and touches nothing on disk.
// Messages follow Node's ("The "x" argument must be ... Received ...").
import { libraryError } from './errors'
import { quote } from './util/quote'

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`
  const shown = typeof value === 'string' ? quote(value, 28) : String(value)
  return `type ${typeof value} (${shown})`
}

function typeError(name: string, expected: string, value: unknown): Error {
  return libraryError('ERR_INVALID_ARG_TYPE', `The "${name}" argument must be ${expected}. Received ${describe(value)}`)
}

function valueError(name: string, expected: string, value: unknown): Error {
  const shown = typeof value === 'string' ? quote(value, 80) : String(value)
  return libraryError('ERR_INVALID_ARG_VALUE', `The argument '${name}' ${expected}. Received ${shown}`)
}

/** A non-empty path string without NUL bytes. */
export function validatePath(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw typeError(name, 'of type string', value)
  if (value.length === 0) throw valueError(name, 'must be a non-empty path', value)
  if (value.includes('\0')) throw valueError(name, 'must not contain null bytes', value)
}

/** A non-empty string (a name). */
export function validateString(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw typeError(name, 'of type string', value)
  if (value.length === 0) throw valueError(name, 'must be a non-empty string', value)
}

/** A byte count: a safe non-negative integer (0 ... 2^53 - 1). */
export function validateSize(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') throw typeError(name, 'of type number', value)
  if (!Number.isSafeInteger(value) || value < 0) throw valueError(name, 'must be a safe non-negative integer', value)
}

/** Revisions to keep: a safe integer >= -1 (-1 disables snapshots). */
export function validateRevisionsToKeep(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') throw typeError(name, 'of type number', value)
  if (!Number.isSafeInteger(value) || value < -1) throw valueError(name, 'must be a safe integer >= -1', value)
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

/** An object (not null, not an array). */
export function validateObject(name: string, value: unknown): asserts value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw typeError(name, 'of type object', value)
}

/**
 * An options bag: undefined (read as `{}`) or a plain object whose own keys
 * are all in `allowed`. An unknown key (a typo such as `discrad`) is
 * ERR_INVALID_ARG_VALUE: silently ignoring it would run the call without the
 * option the caller meant.
 */
export function validateOptions<T extends object>(name: string, value: T | undefined, allowed: readonly (keyof T & string)[]): Partial<T> {
  if (value === undefined) return {}
  validateObject(name, value)
  for (const key of Object.keys(value)) {
    if (!(allowed as readonly string[]).includes(key)) {
      const known = allowed.length ? allowed.map((a) => `'${a}'`).join(', ') : 'none'
      throw valueError(name, `has an unknown option key (known: ${known})`, key)
    }
  }
  return value as Partial<T>
}

/** `value` checked by `check` when given; undefined passes through. */
export function optional<T>(name: string, value: unknown, check: (name: string, value: unknown) => void): T | undefined {
  if (value === undefined) return undefined
  check(name, value)
  return value as T
}

/** The options `{ signal, onProgress }` of a copy or stream call that takes only those, checked. */
export function progressOptions(options: { signal?: AbortSignal; onProgress?: (doneBytes: number, totalBytes: number) => void } | undefined) {
  const o = validateOptions('options', options, ['signal', 'onProgress'])
  return {
    signal: optional<AbortSignal>('options.signal', o.signal, validateSignal),
    onProgress: optional<(doneBytes: number, totalBytes: number) => void>('options.onProgress', o.onProgress, validateFunction),
  }
}

/** `{ [flag]?: boolean, signal?: AbortSignal }` (stop's discard, resize's allowShrink): the flag, default false, and the signal. */
export function flagOptions(options: object | undefined, flag: string): { flag: boolean; signal: AbortSignal | undefined } {
  const o = validateOptions<Record<string, unknown>>('options', options as Record<string, unknown> | undefined, [flag, 'signal'])
  return {
    flag: optional<boolean>(`options.${flag}`, o[flag], validateBoolean) ?? false,
    signal: optional<AbortSignal>('options.signal', o.signal, validateSignal),
  }
}

/** An AbortSignal (checked by shape, so a signal from another realm passes too). */
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

/**
 * The bytes of one chunk of a byte stream: any ArrayBufferView (Buffer,
 * Uint8Array, Uint16Array, Float64Array, DataView, ...) counted by its bytes,
 * never by its elements, as a Uint8Array view of the same memory (no copy).
 * Anything else (a string, a number, a plain object) is ERR_INVALID_ARG_TYPE:
 * a string has no byte length until an encoding is chosen.
 */
export function chunkBytes(name: string, value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  throw typeError(name, 'an instance of Buffer, TypedArray or DataView', value)
}

/** File permission bits (0 ... 0o7777). */
export function validateMode(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') throw typeError(name, 'of type number', value)
  if (!Number.isInteger(value) || value < 0 || value > 0o7777) throw valueError(name, 'must be file permission bits (0 to 0o7777)', value)
}
