// One table per language, checked against each other: the library error codes
// (`codes` in crates/core/src/error.rs, `ERROR_CODES` in ts/errors.ts) and the
// copy-method names (`CopyMethod` in crates/core/src/copy.rs, `COPY_METHODS` in
// ts/copy.ts, and the literal union the binding declares in native/index.d.ts).
// The native lists come from the loaded binding, so the test sees exactly what
// the core was built with.
import test from 'ava'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { native } from '../ts/binding'
import { COPY_METHODS } from '../ts/copy'
import { ERROR_CODES } from '../ts/errors'

/** Codes only the TS layer throws (argument types, the pool and volume policy, send/receive bases). */
const TS_ONLY = [
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_VID',
  'ERR_UNKNOWN_VOLUME',
  'ERR_VOLUME_EXISTS',
  'ERR_VOLUME_BROKEN',
  'ERR_POOL_BROKEN',
  'ERR_VOLUME_DIRTY',
  'ERR_REVISION_NOT_FOUND',
  'ERR_VOLUME_READ_ONLY',
  'ERR_NOT_SAVE_ON_STOP',
  'ERR_MISSING_IMAGE',
  'ERR_SHRINK_REFUSED',
  'ERR_POOL_CLOSED',
  'ERR_BASE_NOT_FOUND',
  'ERR_BASE_MISMATCH',
  // Decided from the records by the pool layer (ts/pool/remove.ts); the core never sees a dependent.
  'ERR_HAS_DEPENDENTS',
]

const sorted = (xs: Iterable<string>): string[] => [...xs].sort()

test('every native library code is in ERROR_CODES with the same spelling', (t) => {
  const rust = native.libraryErrorCodes()
  t.true(rust.length > 0, 'the binding lists its codes')
  t.is(new Set(rust).size, rust.length, 'no code is listed twice in the Rust table')
  const missing = rust.filter((c) => !(c in ERROR_CODES))
  t.deepEqual(missing, [], 'Rust codes without an ERROR_CODES entry')
})

test('the TS-only codes are exactly the known set (a new code must be placed on one side or both)', (t) => {
  const rust = new Set(native.libraryErrorCodes())
  const tsOnly = Object.keys(ERROR_CODES).filter((c) => !rust.has(c))
  t.deepEqual(sorted(tsOnly), sorted(TS_ONLY))
})

test('copy methods: the core, ts/copy.ts and the binding declaration agree', (t) => {
  t.deepEqual(native.copyMethods(), [...COPY_METHODS], 'same names, same order')
  const dts = readFileSync(join(__dirname, '..', 'native', 'index.d.ts'), 'utf8')
  // Every `method:` field the binding declares with a literal union (NativeCopyResult,
  // NativeMethodCount, ...): each is a ts_type string written in crates/node/src.
  const decls = [...dts.matchAll(/^\s*method: ('[^\n]+)$/gm)].map((m) => m[1])
  t.true(decls.length >= 2, `native/index.d.ts declares the copy-method unions, found ${decls.length}`)
  for (const decl of decls) {
    const names = decl.split('|').map((s) => s.trim().replace(/^'|'$/g, ''))
    t.deepEqual(names, [...COPY_METHODS], `a ts_type literal in crates/node/src: ${decl}`)
  }
})
