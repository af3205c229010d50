// Why the native addon failed to load, in words a user can act on. The generated
// loader (native/index.js) only says "Cannot find native binding" and links an npm
// bug; the user needs the name of the platform package that is missing (napi-rs
// ships one per target as an optional dependency, and npm skips it under
// --omit=optional or with a lockfile made on another platform) and how to build
// the addon from source instead.

export interface PackageManifest {
  name: string
  version: string
  napi?: { binaryName?: string; targets?: string[] }
}

export interface Host {
  platform: string
  arch: string
  /** Only meaningful on Linux. */
  libc: 'gnu' | 'musl'
}

/** The package's own package.json: one directory up from both ts/ and dist/ (inlined in the CLI bundle). */
export function readOwnManifest(): PackageManifest {
  return require('../package.json') as PackageManifest
}

/** glibc or musl, decided like the generated loader: a glibc runtime shows in the process report. */
export function detectHost(): Host {
  let libc: Host['libc'] = 'gnu'
  if (process.platform === 'linux') {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    libc = report?.header?.glibcVersionRuntime ? 'gnu' : 'musl'
  }
  return { platform: process.platform, arch: process.arch, libc }
}

const NODE_ARCH: Record<string, string> = { x86_64: 'x64', aarch64: 'arm64' }

/** napi-rs's package suffix for a Rust target: `x86_64-unknown-linux-gnu` -> `linux-x64-gnu`. */
export function platformSuffix(triple: string): string | undefined {
  const m = /^(x86_64|aarch64)-unknown-linux-(gnu|musl)$/.exec(triple)
  return m ? `linux-${NODE_ARCH[m[1]]}-${m[2]}` : undefined
}

function hostSuffix(host: Host): string {
  return host.platform === 'linux' ? `linux-${host.arch}-${host.libc}` : `${host.platform}-${host.arch}`
}

function resolvable(request: string): boolean {
  try {
    require.resolve(request)
    return true
  } catch {
    return false
  }
}

/**
 * The error to throw when native/index.js fails: names the platform package this
 * host needs and says how to install it or build the addon from source. The
 * loader's own error stays as `cause`.
 */
export function nativeLoadError(
  cause: unknown,
  manifest: PackageManifest = readOwnManifest(),
  host: Host = detectHost(),
  isInstalled: (pkg: string) => boolean = (pkg) => resolvable(`${pkg}/package.json`),
): Error {
  const name = manifest.name
  const suffix = hostSuffix(host)
  const pkg = `${name}-${suffix}`
  const prebuilt = (manifest.napi?.targets ?? []).map(platformSuffix).filter((s): s is string => s !== undefined)
  const addon = `${manifest.napi?.binaryName ?? name}.${suffix}.node`
  const lines: string[] = []
  if (!prebuilt.includes(suffix)) {
    lines.push(`${name}: there is no prebuilt native addon for ${suffix} (prebuilt: ${prebuilt.join(', ')}).`)
  } else if (isInstalled(pkg)) {
    lines.push(`${name}: the platform package ${pkg} is installed but its native addon failed to load (see cause).`)
  } else {
    lines.push(
      `${name}: the platform package ${pkg} is missing. It is an optional dependency, which npm skips ` +
        'with --omit=optional or with a lockfile made on another platform.',
      `Install it: npm install ${pkg}@${manifest.version}`,
    )
  }
  lines.push(
    `Or build it from source (needs Rust and cargo): in a checkout of ${name} run ` +
      '`npm ci && npm run build:native`, then point NAPI_RS_NATIVE_LIBRARY_PATH at the built ' +
      `native/${addon} (or copy that file next to ${name}/native/index.js).`,
  )
  return new Error(lines.join('\n'), { cause })
}
