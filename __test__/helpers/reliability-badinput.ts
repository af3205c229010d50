// Generators of invalid input for the bad-input properties (issue 6 §5), and
// the check every call must pass: reject with a typed error whose code is in
// the allowed set, and leave the filesystem byte-for-byte as it was (manifest
// of paths, inodes, modes, sizes and checksums before and after).
import fc from 'fast-check'
import { diffManifest, manifest } from './reliability-files'
import { codeOf } from './reliability-api'

/** Sizes that are not a safe non-negative integer number (never a valid size). */
export const invalidSize: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: -1 }),
  fc.double().filter((x) => !Number.isSafeInteger(x) && !Object.is(x, -0)),
  fc.constantFrom(NaN, Infinity, -Infinity, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 0.5, -0.5, 4096.5, 1e-300),
  fc.string(),
  fc.bigInt(),
  fc.constantFrom(null, true, false, {}, [], '4096', [4096]),
)

/** A vid component that is valid: letters, digits and a few safe punctuation marks. */
export const goodComponent = fc.stringMatching(/^[a-z][a-z0-9_-]{0,11}$/).filter((s) => !/-(dirty|precache|import)$/.test(s))

const badComponent: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', '.', '..', 'a\0b', 'x'.repeat(250), 'a/..', 'img~1', 'x~'),
  goodComponent.chain((s) => fc.constantFrom(`${s}.img`, `${s}-dirty.img`, `${s}-precache.img`, `${s}-import.img`, `${s}-dirty`, `${s}-precache`, `${s}-import`, `${s}~`, `${s}~abc`, `${s}.img.1@2024-01-01T00:00:00Z`)),
)

/** Vids that must be refused with ERR_INVALID_VID (or a type error for non-strings). */
export const invalidVid: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom('', '/', 'appvms', 'appvms/', 'appvms/x', 'appvms/x/', '/appvms/x/y', 'appvms//y', 'appvms/x//y', 'appvms/../x/y',
    'appvms/x/..', 'appvms/./y', 'appvms/x/.', 'etc/x/y', 'APPVMS/x/y', 'vm-templates/x/y/z', '../../../etc/passwd', 'appvms/x/../../../../tmp/y',
    '.reflink-pool/x/y', 'appvms/x/y/', './appvms/x/y'),
  fc.tuple(fc.constantFrom('appvms', 'vm-templates'), badComponent, goodComponent).map(([p, a, b]) => `${p}/${a}/${b}`),
  fc.tuple(fc.constantFrom('appvms', 'vm-templates'), goodComponent, badComponent).map(([p, a, b]) => `${p}/${a}/${b}`),
  fc.tuple(goodComponent.filter((p) => p !== 'appvms' && p !== 'vm-templates'), goodComponent, goodComponent).map(([p, a, b]) => `${p}/${a}/${b}`),
  fc.oneof(fc.integer(), fc.constant(null), fc.constant(undefined), fc.object(), fc.array(fc.string())),
)

/** Valid-looking components whose vid still fails: some name derived from it would exceed NAME_MAX (255 bytes). */
export const longVid: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: 197, max: 400 }).map((n) => `appvms/vm/${'n'.repeat(n)}`),
  fc.tuple(fc.integer({ min: 100, max: 200 }), fc.integer({ min: 100, max: 200 })).filter(([a, b]) => a + b > 219).map(([a, b]) => `appvms/${'v'.repeat(a)}/${'n'.repeat(b)}`),
  fc.tuple(fc.integer({ min: 100, max: 200 }), fc.integer({ min: 100, max: 196 })).filter(([a, b]) => a + b > 213).map(([a, b]) => `vm-templates/${'v'.repeat(a)}/${'n'.repeat(b)}`),
  fc.integer({ min: 256, max: 1000 }).map((n) => `appvms/${'v'.repeat(n)}/root`),
)

/** An option key that no call knows (typos of real ones included). */
export const unknownKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('discrad', 'reflnk', 'allowShrinkk', 'revisionToKeep', 'saveOnStpo', 'signl', 'onprogress', 'RW', 'size ', '__proto__x', 'constructor'),
  fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !['discard', 'allowShrink', 'signal', 'onProgress', 'reflink', 'size', 'copyMtime', 'revisionsToKeep', 'rw',
    'dirPath', 'name', 'setupCheck', 'ephemeralVolatile', 'vid', 'vm', 'saveOnStop', 'snapOnStart', 'source'].includes(k)),
)

/** Stream chunks that are not bytes: strings, numbers, plain objects, arrays, booleans. */
export const nonByteChunk: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ minLength: 1 }), fc.integer(), fc.double(), fc.constantFrom(true, null, {}, [1, 2, 3], { byteLength: 4, buffer: new ArrayBuffer(4) }),
  fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }),
)

/** A typed array or DataView of `len` random bytes (the chunk's element size varies, its bytes are what count). */
export const byteView: fc.Arbitrary<ArrayBufferView> = fc
  .tuple(fc.uint8Array({ minLength: 0, maxLength: 4096 }), fc.constantFrom('Uint8Array', 'Uint16Array', 'Int32Array', 'Float64Array', 'BigInt64Array', 'DataView'), fc.nat(7))
  .map(([bytes, type, pad]) => {
    const ab = new ArrayBuffer(bytes.length + 16)
    const off = type === 'DataView' || type === 'Uint8Array' ? pad : 8
    const per = { Uint8Array: 1, Uint16Array: 2, Int32Array: 4, Float64Array: 8, BigInt64Array: 8, DataView: 1 }[type]!
    const len = bytes.length - (bytes.length % per)
    new Uint8Array(ab, off, len).set(bytes.subarray(0, len))
    if (type === 'DataView') return new DataView(ab, off, len)
    const Ctor = { Uint8Array, Uint16Array, Int32Array, Float64Array, BigInt64Array }[type as 'Uint8Array']
    return new Ctor(ab, off, len / per)
  })

/** Contents of a planted volume record: garbage, truncated JSON, or JSON that breaks the schema. Each carries SECRET. */
export const SECRET = 'SECRET-7f3a9c'
export const plantedRecord: fc.Arbitrary<string> = fc.oneof(
  fc.string().map((s) => `${SECRET}${s}`),
  fc.constantFrom(`root:${SECRET}:19000:0:99999:7:::`, `{"name": "${SECRET}"`, `[1, "${SECRET}"]`, `"${SECRET}"`, `{"${SECRET}": 1}`),
  fc.record({
    name: fc.oneof(fc.constant(SECRET), fc.integer(), fc.constant('')),
    rw: fc.oneof(fc.boolean(), fc.constant(SECRET)),
    saveOnStop: fc.boolean(),
    snapOnStart: fc.constant(false),
    source: fc.constant(null),
    size: fc.oneof(fc.constant(-1), fc.constant(2 ** 60), fc.constant(1.5), fc.constant(SECRET)),
    revisionsToKeep: fc.oneof(fc.constant(-2), fc.constant(2 ** 53), fc.constant(SECRET)),
  }).map((r) => JSON.stringify(r)),
)

export const nonBoolean: fc.Arbitrary<unknown> = fc.oneof(fc.constantFrom('yes', 'true', 1, 0, null, {}, []), fc.string(), fc.integer())

export const invalidRevisionsToKeep: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: -2 }),
  fc.constantFrom(1.5, NaN, Infinity, -Infinity, 2 ** 53, '1', null, {}, true),
  fc.double().filter((x) => !Number.isInteger(x)),
)

/** Library codes for refused input. */
export const ARG_CODES = ['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE']
export const VID_CODES = ['ERR_INVALID_VID', ...ARG_CODES]

export interface BadInputFigures {
  calls: number
  violations: string[]
}

/**
 * Call `fn`; it must reject (or throw) with a code in `allowed` and leave
 * `root` unchanged. Returns a violation message, or null.
 */
export async function mustRefuse(root: string, what: string, allowed: readonly string[], fn: () => unknown, figures: BadInputFigures): Promise<string | null> {
  const before = manifest(root)
  figures.calls++
  let failure: string | null = null
  try {
    await fn()
    failure = `${what}: accepted, expected ${allowed.join('|')}`
  } catch (e) {
    const code = codeOf(e)
    if (!allowed.includes(code)) failure = `${what}: rejected with ${code} (${(e as Error)?.message}), expected ${allowed.join('|')}`
  }
  const diff = diffManifest(before, manifest(root))
  if (diff.length) failure = `${failure ? failure + '; ' : ''}${what}: changed the filesystem: ${diff.slice(0, 5).join('; ')}`
  if (failure) figures.violations.push(failure)
  return failure
}

/** Printable form of a generated value (JSON loses NaN, undefined and bigint). */
export function show(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'number' || v === undefined) return String(v)
  try {
    return JSON.stringify(v)?.slice(0, 80) ?? String(v)
  } catch {
    return String(v)
  }
}
