// Bundles the compiled CLI (dist/cli/main.js and everything it requires, commander
// included) into one file, dist/cli/main.bundle.js, which bin/reflink-pool.js loads:
// Node then resolves, reads and compiles one file instead of ~70 at every start
// (docs/design.md §9, CLI start-up). The native binding and the benchmark harness
// stay outside it, required lazily as before, at their paths relative to the bundle.
import { build } from 'esbuild'
import { spawnSync } from 'node:child_process'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const outfile = join(root, 'dist', 'cli', 'main.bundle.js')

/** Requires that stay requires: the generated binding (native code) and the harness. */
const lazyOutside = {
  name: 'lazy-outside',
  setup(b) {
    b.onResolve({ filter: /(^|\/)native\/index\.js$|(^|\/)bench\/main$/ }, (args) => {
      const target = resolve(args.resolveDir, args.path)
      return { path: './' + relative(dirname(outfile), target), external: true }
    })
  },
}

await build({
  entryPoints: [join(root, 'dist', 'cli', 'main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  plugins: [lazyOutside],
  logLevel: 'warning',
})

// V8's code cache of the bundle, made after a few commands (scripts/cli-code-cache.cjs);
// a failure there leaves no cache, and the CLI starts without one.
const cached = spawnSync(process.execPath, [join(root, 'scripts', 'cli-code-cache.cjs')], { stdio: 'inherit' })
if (cached.status !== 0) process.stderr.write('bundle-cli: the code cache step failed; the CLI starts without one\n')
