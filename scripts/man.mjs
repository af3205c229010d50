#!/usr/bin/env node
// Build step (npm run build:ts): write man/reflink-pool.1 from the compiled
// command definitions (dist/cli), so the man page and --help share one source.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const { buildProgram } = require(join(root, 'dist', 'cli', 'main.js'))
const { commandTree } = require(join(root, 'dist', 'cli', 'command-tree.js'))
const { manPage } = require(join(root, 'dist', 'cli', 'manpage.js'))
const { EXIT_STATUS_TEXT } = require(join(root, 'dist', 'cli', 'errors.js'))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
// No build date (the same sources give the same page) unless SOURCE_DATE_EPOCH asks for one.
const epoch = process.env.SOURCE_DATE_EPOCH
const page = manPage(commandTree(buildProgram()), {
  program: 'reflink-pool',
  version: pkg.version,
  date: epoch ? new Date(Number(epoch) * 1000).toISOString().slice(0, 10) : '',
  exitStatus: EXIT_STATUS_TEXT,
})
mkdirSync(join(root, 'man'), { recursive: true })
writeFileSync(join(root, 'man', 'reflink-pool.1'), page)
