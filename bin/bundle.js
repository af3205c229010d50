// How bin/reflink-pool.js compiles the CLI bundle with V8's code cache of it: as Node's
// require would (the module wrapper, the shebang line dropped), through a vm.Script that
// takes the cache. scripts/cli-code-cache.cjs makes the cache by compiling the bundle here
// too, so the cache is of exactly the source the bin compiles (V8 refuses any other).
'use strict'
const { readFileSync } = require('node:fs')
const Module = require('node:module')
const { dirname } = require('node:path')
const vm = require('node:vm')

/**
 * The bundle at `file` compiled (with V8's `cachedData` when given): `script` is the
 * vm.Script (its `cachedDataRejected`, its `createCachedData()`), `load(parent)` runs it
 * as the module `file` and answers its exports.
 */
function compileBundle(file, cachedData) {
  const source = readFileSync(file, 'utf8').replace(/^#!.*/, '')
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData })
  const load = (parent) => {
    const m = new Module(file, parent)
    m.filename = file
    m.paths = Module._nodeModulePaths(dirname(file))
    script.runInThisContext().call(m.exports, m.exports, Module.createRequire(file), m, file, dirname(file))
    m.loaded = true
    return m.exports
  }
  return { script, load }
}

module.exports = { compileBundle }
