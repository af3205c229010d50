// The message thrown when the native addon cannot load (ts/platform-package.ts):
// it must name the platform package this host needs and say how to build from
// source, for each reason the load can fail. The real missing-package install is
// exercised end to end in install.test.ts.
import test from 'ava'
import { nativeLoadError, platformSuffix, readOwnManifest, type Host } from '../ts/platform-package'

const manifest = readOwnManifest()
const x64gnu: Host = { platform: 'linux', arch: 'x64', libc: 'gnu' }
const cause = new Error('Cannot find native binding.')

test('platformSuffix maps every configured Rust target to its napi-rs package suffix', (t) => {
  const suffixes = (manifest.napi?.targets ?? []).map(platformSuffix)
  t.deepEqual(suffixes.sort(), ['linux-arm64-gnu', 'linux-arm64-musl', 'linux-x64-gnu', 'linux-x64-musl'])
  t.is(platformSuffix('x86_64-pc-windows-msvc'), undefined)
})

test('missing platform package: names it, the install command and the source build', (t) => {
  const err = nativeLoadError(cause, manifest, x64gnu, () => false)
  t.regex(err.message, /the platform package reflink-pool-linux-x64-gnu is missing/)
  t.true(err.message.includes(`npm install reflink-pool-linux-x64-gnu@${manifest.version}`))
  t.regex(err.message, /build it from source .*npm run build:native.*NAPI_RS_NATIVE_LIBRARY_PATH.*reflink-pool\.linux-x64-gnu\.node/s)
  t.is(err.cause, cause)
  t.notRegex(err.message, /Cannot find module/)
})

test('musl host: asks for the musl package', (t) => {
  const err = nativeLoadError(cause, manifest, { platform: 'linux', arch: 'arm64', libc: 'musl' }, () => false)
  t.regex(err.message, /reflink-pool-linux-arm64-musl is missing/)
})

test('platform package present but the addon fails: says so instead of "missing"', (t) => {
  const err = nativeLoadError(cause, manifest, x64gnu, (pkg) => pkg === 'reflink-pool-linux-x64-gnu')
  t.regex(err.message, /reflink-pool-linux-x64-gnu is installed but its native addon failed to load/)
  t.notRegex(err.message, /is missing/)
})

test('unsupported host: lists the prebuilt targets and the source build', (t) => {
  const err = nativeLoadError(cause, manifest, { platform: 'linux', arch: 'riscv64', libc: 'gnu' }, () => false)
  t.regex(err.message, /no prebuilt native addon for linux-riscv64-gnu \(prebuilt: .*linux-x64-gnu/)
  t.regex(err.message, /build it from source/)
})
