#!/usr/bin/env node
// The `reflink-pool` command: runs the compiled CLI (dist/, built by `npm run build`).
'use strict'
const { join } = require('node:path')

const entry = join(__dirname, '..', 'dist', 'cli', 'main.js')
let cli
try {
  cli = require(entry)
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
