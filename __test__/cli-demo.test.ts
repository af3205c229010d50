// `reflink-pool demo` as a child process: it runs the main job, reports the
// strategy it saw, and leaves nothing behind (no temp dir, no mount, no loop
// device). Other suites mount filesystems concurrently, so instead of diffing
// global tables we check that exactly what the demo says it made is gone, and
// that the demo's working directory is as empty as before.
import anyTest, { type TestFn } from 'ava'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { fsSuite, mountScratch } from './helpers/scratch-fs'
import { runCli, runJson, spawnCli } from './helpers/cli-run'

const { test, fs } = fsSuite(anyTest as TestFn, 'xfs')

interface Made {
  tempDir?: string
  image?: string
  mountPoint?: string
  loopDevice?: string
}

function mountPoints(): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter(Boolean)
    .map((p) => p.replace(/\\040/g, ' '))
}

/** The backing file of a loop device ('' when detached). The number may since have been reused by another suite, so callers compare paths. */
function backingFile(device: string): string {
  try {
    return readFileSync(`/sys/block/${basename(device)}/loop/backing_file`, 'utf8').trim()
  } catch {
    return ''
  }
}

function assertNothingLeft(t: { false(v: boolean, m?: string): void; is(a: unknown, b: unknown, m?: string): void; deepEqual(a: unknown, b: unknown, m?: string): void }, made: Made, cwd: string) {
  t.deepEqual(readdirSync(cwd), [], 'the working directory is empty again')
  if (made.tempDir) t.false(existsSync(made.tempDir), `temp dir ${made.tempDir} removed`)
  if (made.mountPoint) t.false(mountPoints().includes(made.mountPoint), `${made.mountPoint} unmounted`)
  if (made.image) {
    t.false(existsSync(made.image), 'the XFS image is deleted')
    if (made.loopDevice) t.false(backingFile(made.loopDevice).startsWith(made.image), `${made.loopDevice} detached from ${made.image}`)
  }
}

anyTest('demo on the current filesystem (or its XFS fallback): reflink strategy, numbers, nothing left behind', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'reflink-pool-cli-demo-cwd-'))
  try {
    const { result, json } = await runJson(['demo', '--clones', '6', '--data-mib', '8'], { cwd })
    t.is(result.status, 0, result.stderr)
    // As root with mkfs.xfs (this machine, CI) the demo never falls back to copy mode.
    t.true(['reflink-here', 'xfs-loop'].includes(json.place), `place ${json.place}`)
    t.is(json.strategy, 'reflink')
    t.is(json.clones.count, 6)
    t.true(json.clones.perCloneMs > 0)
    t.is(json.template.dataBytes, 8 * 1024 * 1024)
    t.true(json.template.allocated < json.template.size, 'the template import left holes')
    t.true(json.revert.restored, 'the reverted VM has the template data again')
    // The real client: a file written through the first VM's mounted ext4 survives stop/start, vanishes at revert, and no other volume sees it.
    t.deepEqual(json.client, { vid: 'appvms/demo-vm-001/root', file: 'hello-from-the-vm.txt', survivedRestart: true, goneAfterRevert: true, otherSaw: false, templateSaw: false })
    t.deepEqual(json.methods, { reflink: 6 })
    // While running: the clones share the template's extents; only each VM's 1 MiB write is exclusive.
    t.true(json.space.running.shared >= 6 * 8 * 1024 * 1024 - 6 * 1024 * 1024, `shared ${json.space.running.shared}`)
    t.true(json.space.running.exclusive >= 6 * 1024 * 1024, `exclusive ${json.space.running.exclusive}`)
    t.true(json.space.running.exclusive <= 6 * 2 * 1024 * 1024, `exclusive ${json.space.running.exclusive}`)
    if (json.place === 'xfs-loop') t.truthy(json.made.loopDevice && json.made.mountPoint && json.made.image)
    assertNothingLeft(t, json.made, cwd)
  } finally {
    rmSync(cwd, { recursive: true, force: true })
  }
})

test('demo on a reflink filesystem uses it directly and prints what happened', async (t) => {
  const cwd = mkdtempSync(join(fs().dir, 'demo-cwd-'))
  const r = await runCli(['demo', '--clones', '5', '--data-mib', '4'], { cwd })
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /^reflink-pool demo: a temporary pool in .*\.reflink-pool-demo-\w+ \(this filesystem can reflink\)$/m)
  t.regex(r.stdout, /^strategy +reflink \(FICLONE\)/m)
  t.regex(r.stdout, /^clones +5 save-on-stop volumes .* in one batch .*: [\d.]+ (µs|ms) per clone$/m)
  t.regex(r.stdout, /^revert +appvms\/demo-vm-001\/root .*the data equals the template again$/m)
  t.regex(r.stdout, /^space +while running, 5 VMs saw [\d.]+ MiB of data \(full copies would take 25\.0 MiB\): [\d.]+ MiB in shared extents \([\d.]+%\), 5\.\d+ MiB exclusive \(their own writes\)$/m)
  // The template's data file plus what mkfs.ext4 wrote (superblock, group descriptors, root directory).
  t.regex(r.stdout, /^strategy +reflink \(FICLONE\): .* \[reflink ×5; FIEMAP of the first clone: 4\.\d+ MiB shared, 0 B exclusive\]$/m)
  t.regex(r.stdout, /^template +vm-templates\/demo-template\/root: 16\.0 MiB image holding an ext4 filesystem/m)
  t.regex(r.stdout, /^vm file +appvms\/demo-vm-001\/root: attached to a loop device and mounted, .* there again after the next start; gone after revert; never seen by the other VMs or the template$/m)
  t.regex(r.stdout, /^cleanup +removed the temporary pool$/m)
  t.deepEqual(readdirSync(cwd), [], 'nothing left in the working directory')
})

anyTest('Ctrl-C during the demo: exits 130 and still removes everything it made', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'reflink-pool-cli-demo-int-'))
  try {
    const child = spawnCli(['demo', '--clones', '50', '--data-mib', '64'], { cwd })
    let stdout = ''
    // Interrupt as soon as the demo has said where it runs (it is then importing the template).
    const firstLine = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d
        if (stdout.includes('\n')) resolve(stdout.split('\n')[0])
      })
      child.on('close', () => reject(new Error(`demo ended before printing: ${stdout}`)))
    })
    child.kill('SIGINT')
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    t.is(status, 130)
    const made: Made = {}
    const mounted = /on (\/dev\/loop\d+), mounted at (\S+)$/.exec(firstLine)
    if (mounted) {
      made.loopDevice = mounted[1]
      made.mountPoint = mounted[2]
      made.image = join(mounted[2], '..', 'fs.img')
      made.tempDir = join(mounted[2], '..')
    } else {
      made.tempDir = /a temporary pool in (\S+) /.exec(firstLine)?.[1]
    }
    t.truthy(made.tempDir, firstLine)
    assertNothingLeft(t, made, cwd)
  } finally {
    rmSync(cwd, { recursive: true, force: true })
  }
})

test('demo --no-xfs-image on a filesystem without reflinks runs in copy mode and says so', async (t) => {
  // ext4 is the filesystem here that cannot reflink; the pool suites cover the matrix, this only checks the demo's fallback.
  const ext4 = mountScratch('ext4', { sizeMiB: 256 })
  try {
    const cwd = mkdtempSync(join(ext4.dir, 'demo-cwd-'))
    const { result, json } = await runJson(['demo', '--no-xfs-image', '--clones', '3', '--data-mib', '4'], { cwd })
    t.is(result.status, 0, result.stderr)
    t.is(json.place, 'copy')
    t.regex(json.description, /^COPY MODE: .* cannot reflink and no XFS image is made \(--no-xfs-image was given\)/)
    t.is(json.strategy, 'copy-range', 'ext4 copies with copy_file_range')
    t.deepEqual(json.methods, { 'copy-range': 3 })
    t.is(json.space.running.shared, 0, 'nothing is shared without reflinks')
    t.true(json.revert.restored)
    assertNothingLeft(t, json.made, cwd)
  } finally {
    ext4.unmount()
  }
})
