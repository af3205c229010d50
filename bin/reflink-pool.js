#!/usr/bin/env node
// The `reflink-pool` command: runs the compiled CLI (dist/, built by `npm run build`).
'use strict'
const { readFileSync, statSync } = require('node:fs')
const { join } = require('node:path')

// The bundle (scripts/bundle-cli.mjs: one file to load, not ~70) when the build made one
// and no later tsc run left it behind the modules it was made from.
const dist = join(__dirname, '..', 'dist', 'cli')
const entry = join(dist, 'main.js')
const bundle = join(dist, 'main.bundle.js')
const codeCache = join(dist, 'main.bundle.cache')
const mtime = (file) => {
  try {
    return statSync(file).mtimeMs
  } catch {
    return -1
  }
}
const fresh = mtime(bundle) >= 0 && mtime(bundle) >= mtime(entry)

/**
 * The bundle, compiled with V8's code cache of it when the build made one
 * (scripts/cli-code-cache.cjs, bin/bundle.js): the functions a command runs are not
 * compiled again. V8 refuses a cache of other source or another V8, and the bundle then
 * compiles as `require` would have compiled it.
 */
function loadBundle() {
  if (mtime(codeCache) < mtime(bundle)) return require(bundle)
  return require('./bundle.js').compileBundle(bundle, readFileSync(codeCache)).load(module)
}

let cli
try {
  cli = fresh ? loadBundle() : require(entry)
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(entry)) {
    process.stderr.write(`reflink-pool: the CLI is not built (${entry} missing): run npm run build (ERR_NOT_BUILT)\n`)
    process.exit(1)
  }
  throw err
}
cli.main(process.argv).then(
  (status) => {
    process.exitCode = status
  },
  (err) => {
    process.stderr.write(`reflink-pool: ${err && err.message ? err.message : err} (ERR_INTERNAL)\n`)
    process.exitCode = 1
  },
)
