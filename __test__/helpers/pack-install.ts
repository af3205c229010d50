// Fixture for the install test: packs the main package and this host's platform
// package with `npm pack`, and installs tarballs into fresh consumer projects with
// npm --offline, an empty npm cache and no cargo/rustc on PATH, as a user without
// a Rust toolchain and (for our packages) without the registry would.
import { execFile } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { delimiter, dirname, join } from 'node:path'
import { detectHost } from '../../ts/platform-package'

export const repoRoot = join(__dirname, '..', '..')

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Run a command to completion; never throws on a non-zero exit (tests assert on `code`). */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 32 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

/** Fail with the command's output when it did not exit 0. */
export function ok(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`)
  return r
}

interface Manifest {
  name: string
  version: string
  main?: string
  cpu?: string[]
  libc?: string[]
  dependencies?: Record<string, string>
}

const readManifest = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest

/** The npm CLI script of the Node running the tests (run with `node`, so PATH need not hold npm). */
const npmCli = join(dirname(dirname(realpathSync(process.execPath))), 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')

/**
 * A PATH without cargo or rustc: every directory holding either is dropped, and a
 * shim directory provides `node` (for `#!/usr/bin/env node` bins) in case node
 * lived in a dropped directory.
 */
export function pathWithoutRust(shimDir: string): string {
  mkdirSync(shimDir, { recursive: true })
  if (!existsSync(join(shimDir, 'node'))) symlinkSync(process.execPath, join(shimDir, 'node'))
  const hasRust = (dir: string) => ['cargo', 'rustc'].some((b) => existsSync(join(dir, b)))
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '' && !hasRust(d))
  return [shimDir, ...dirs].join(delimiter)
}

/** The environment for npm and consumers: no inherited npm_* settings, the Rust-free PATH. */
export function consumerEnv(path: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.toLowerCase().startsWith('npm_') && !k.startsWith('NAPI_RS_')) env[k] = v
  }
  env.PATH = path
  return env
}

export function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<RunResult> {
  return run(process.execPath, [npmCli, ...args], { cwd, env, timeoutMs: 180_000 })
}

/** The npm/<dir> platform package this host loads, and its built addon in native/. */
export function hostPlatformPackage(): { dir: string; manifest: Manifest; addon: string } {
  const { arch, libc } = detectHost()
  const npmLibc = libc === 'musl' ? 'musl' : 'glibc'
  for (const name of readdirSync(join(repoRoot, 'npm'))) {
    const dir = join(repoRoot, 'npm', name)
    if (!existsSync(join(dir, 'package.json'))) continue
    const manifest = readManifest(dir)
    if (manifest.cpu?.includes(arch) && manifest.libc?.includes(npmLibc) && manifest.main) {
      return { dir, manifest, addon: join(repoRoot, 'native', manifest.main) }
    }
  }
  throw new Error(`no npm/ platform package for ${arch} ${libc}`)
}

/** `npm pack` `dir` into `dest`; returns the tarball path. */
async function pack(dir: string, dest: string, env: NodeJS.ProcessEnv): Promise<string> {
  mkdirSync(dest, { recursive: true })
  const r = ok(await npm(['pack', '--json', '--pack-destination', dest], dir, env), `npm pack in ${dir}`)
  const [info] = JSON.parse(r.stdout) as [{ filename: string }]
  return join(dest, info.filename)
}

/** Platform package: a copy of npm/<dir> with the built addon copied in (what `napi artifacts` does in CI). */
export async function packPlatform(work: string, env: NodeJS.ProcessEnv): Promise<string> {
  const { dir, manifest, addon } = hostPlatformPackage()
  if (!existsSync(addon)) throw new Error(`${addon} is missing: run \`npm run build\` first`)
  const stage = join(work, 'stage-platform')
  cpSync(dir, stage, { recursive: true })
  copyFileSync(addon, join(stage, manifest.main as string))
  return pack(stage, join(work, 'tarballs'), env)
}

/**
 * Main package, as published: `npm pack` of the repo, then the optionalDependencies
 * that `napi prepublish` writes at publish time (every npm/<dir> package at this
 * version; they are not in the repo's package.json because packages missing from
 * the registry would break `npm ci`), then packed again.
 */
export async function packMain(work: string, env: NodeJS.ProcessEnv): Promise<string> {
  if (!existsSync(join(repoRoot, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first')
  const raw = await pack(repoRoot, join(work, 'raw'), env)
  const stage = join(work, 'stage-main')
  mkdirSync(stage, { recursive: true })
  ok(await run('tar', ['-xzf', raw, '-C', stage]), 'tar -x main tarball')
  const pkgDir = join(stage, 'package')
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as Manifest & { optionalDependencies?: Record<string, string> }
  manifest.optionalDependencies = {}
  for (const name of readdirSync(join(repoRoot, 'npm')).sort()) {
    const file = join(repoRoot, 'npm', name, 'package.json')
    if (existsSync(file)) manifest.optionalDependencies[readManifest(join(repoRoot, 'npm', name)).name] = manifest.version
  }
  writeFileSync(join(pkgDir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n')
  return pack(pkgDir, join(work, 'tarballs'), env)
}

/**
 * Tarballs of the main package's runtime dependencies (and theirs), packed from
 * the repo's node_modules, so the offline install needs nothing from any cache.
 */
export async function packRuntimeDeps(work: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const seen = new Set<string>()
  const out: string[] = []
  const visit = async (deps: Record<string, string> | undefined) => {
    for (const name of Object.keys(deps ?? {})) {
      if (seen.has(name)) continue
      seen.add(name)
      const dir = join(repoRoot, 'node_modules', name)
      out.push(await pack(dir, join(work, 'deps'), env))
      await visit(readManifest(dir).dependencies)
    }
  }
  await visit(readManifest(repoRoot).dependencies)
  return out
}

/** A fresh consumer project with `tarballs` installed by npm --offline from an empty cache. */
export async function installConsumer(dir: string, tarballs: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2) + '\n')
  return npm(['install', '--offline', '--no-audit', '--no-fund', '--cache', `${dir}-npm-cache`, ...tarballs], dir, env)
}

/** Paths of the files in a tarball, without the leading `package/`. */
export async function tarballFiles(tarball: string): Promise<string[]> {
  const r = ok(await run('tar', ['-tzf', tarball]), `tar -t ${tarball}`)
  return r.stdout.split('\n').filter(Boolean).map((p) => p.replace(/^package\//, ''))
}

export const sizeKiB = (file: string): string => `${(statSync(file).size / 1024).toFixed(1)} KiB`
