#!/usr/bin/env node
// The `reflink-pool` command: runs the compiled CLI (dist/, built by `npm run build`).
'use strict'
const { statSync } = require('node:fs')
const { join } = require('node:path')

// The bundle (scripts/bundle-cli.mjs: one file to load, not ~70) when the build made one
// and no later tsc run left it behind the modules it was made from.
const dist = join(__dirname, '..', 'dist', 'cli')
const entry = join(dist, 'main.js')
const bundle = join(dist, 'main.bundle.js')
const fresh = (() => {
  try {
    return statSync(bundle).mtimeMs >= statSync(entry).mtimeMs
  } catch {
    return false
  }
})()
let cli
try {
  cli = require(fresh ? bundle : entry)
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
