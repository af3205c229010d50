#!/usr/bin/env node
// The `reflink-pool` command: runs the compiled CLI (dist/, built by `npm run build`).
'use strict'
require('../dist/cli/main.js').main(process.argv).then(
  (status) => {
    process.exitCode = status
  },
  (err) => {
    process.stderr.write(`reflink-pool: ${err && err.message ? err.message : err} (ERR_INTERNAL)\n`)
    process.exitCode = 1
  },
)
