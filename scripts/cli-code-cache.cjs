// Makes dist/cli/main.bundle.cache: V8's code cache of the CLI bundle, so a command
// starts without compiling the bundle's functions again (docs/design.md §9, CLI
// start-up: about 20 ms of a 130 ms `volume info` here). The cache holds the functions
// that ran, so it is made after a few everyday commands on a throw-away pool in a
// temp directory (no reflinks needed), in this process. bin/reflink-pool.js uses it
// when it is at least as new as the bundle; V8 itself refuses a cache made by another
// V8 or from other source, and the bundle then compiles as without one. Run by
// scripts/bundle-cli.mjs; a failure here leaves no cache, never a broken build.
'use strict'
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const { compileBundle } = require('../bin/bundle.js')

const bundle = join(__dirname, '..', 'dist', 'cli', 'main.bundle.js')
const cacheFile = bundle.replace(/\.js$/, '.cache')

async function main() {
  const { script, load } = compileBundle(bundle)
  const cli = load(module)
  const dir = mkdtempSync(join(tmpdir(), 'reflink-pool-cache-'))
  const quiet = process.stdout.write.bind(process.stdout)
  try {
    process.stdout.write = () => true
    const pool = join(dir, 'pool')
    for (const args of [
      ['init', '--no-setup-check'],
      ['volume', 'create', 'vm-templates/t/root', '--size', '1M'],
      ['volume', 'info', 'vm-templates/t/root'],
      ['volume', 'list'],
      ['info'],
    ]) {
      const status = await cli.main(['node', 'reflink-pool', '--pool', pool, ...args])
      if (status !== 0) throw new Error(`reflink-pool ${args.join(' ')} exited ${status}`)
    }
  } finally {
    process.stdout.write = quiet
    rmSync(dir, { recursive: true, force: true })
  }
  writeFileSync(cacheFile, script.createCachedData())
}

main().then(
  () => process.exit(0),
  (e) => {
    rmSync(cacheFile, { force: true })
    process.stderr.write(`cli-code-cache: no code cache (${e && e.message}); the CLI starts without one\n`)
    process.exit(0)
  },
)
