// AbortSignal on every long volume call, through the package root: start, stop,
// revert, resize, importVolume and exportStream. An already-aborted signal is
// refused before anything happens; a signal aborted while the call copies data
// (ext4: no reflink, so the copies take time; aborted as soon as the copy's temp
// file appears) rejects with ABORT_ERR and leaves the volume as it was: the same
// image files with the same contents, the committed image the same inode.
// The tests run serially: the watcher that aborts polls on the event loop, and
// another test hashing its pool there would starve it until the copy had ended.
import anyTest, { type TestFn } from 'ava'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { ReflinkPool, type ReflinkPoolError, type ReflinkVolume } from '../ts/index'
import { fsSuite } from './helpers/scratch-fs'
import { ino, MiB, snapshotTree } from './helpers/pool-fixture'

const { test, fs } = fsSuite(anyTest as TestFn, 'ext4', { sizeMiB: 3072 })

/** 192 MiB of data in one image: a copy of it takes long enough to be aborted part-way. */
const DATA = 192 * MiB

async function pool(): Promise<ReflinkPool> {
  const dirPath = join(fs().dir, `pool-${Math.random().toString(36).slice(2)}`)
  return ReflinkPool.open({ dirPath, setupCheck: false })
}

async function origin(p: ReflinkPool, vid: string): Promise<ReflinkVolume> {
  const v = await p.createVolume({ vid, name: vid.split('/')[2], saveOnStop: true })
  const chunk = Buffer.alloc(MiB)
  async function* data() {
    for (let i = 0; i < DATA / MiB; i++) {
      chunk.fill((i % 250) + 1)
      yield chunk
    }
  }
  await v.importStream(data(), DATA)
  return v
}

/** What a user can see of the pool: every file with its content, and the clean images' inodes. */
function visible(root: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [rel, e] of Object.entries(snapshotTree(root))) {
    if (e.type !== 'file' || rel.startsWith('.reflink-pool/')) continue
    // A precache rebuilt after an abort has a new inode; its content is what counts.
    const identity = rel.endsWith('-precache.img') ? '' : `#${e.ino}`
    out[rel] = `${e.size}:${e.hash}${identity}`
  }
  return out
}

/** Abort `ac` as soon as a temp file (`<target>~<random>`, of `target` when given) appears in `dir`: the copy is under way. */
function abortWhenCopying(dir: string, ac: AbortController, target = ''): { stop(): void; fired(): boolean } {
  let fired = false
  const timer = setInterval(() => {
    let names: string[] = []
    try {
      names = readdirSync(dir)
    } catch {}
    if (names.some((n) => n.includes('~') && n.startsWith(target))) {
      fired = true
      ac.abort(new Error('test abort'))
      clearInterval(timer)
    }
  }, 1)
  return { stop: () => clearInterval(timer), fired: () => fired }
}

/** Run `call` with a signal that aborts mid-copy; it must reject with ABORT_ERR and change nothing visible. */
async function abortedMidway(t: { is: (a: unknown, b: unknown, m?: string) => void; true: (v: boolean, m?: string) => void; deepEqual: (a: unknown, b: unknown, m?: string) => void }, p: ReflinkPool, dir: string, call: (signal: AbortSignal) => Promise<unknown>, what: string, target = '') {
  const before = visible(p.dirPath)
  const ac = new AbortController()
  const watch = abortWhenCopying(dir, ac, target)
  let err: ReflinkPoolError | undefined
  try {
    await call(ac.signal)
  } catch (e) {
    err = e as ReflinkPoolError
  } finally {
    watch.stop()
  }
  t.true(watch.fired(), `${what}: the abort fired while the copy ran`)
  t.is(err?.code, 'ABORT_ERR', `${what}: rejects with ABORT_ERR (${err?.message})`)
  t.deepEqual(visible(p.dirPath), before, `${what}: nothing visible changed`)
}

async function alreadyAborted(t: { is: (a: unknown, b: unknown, m?: string) => void; deepEqual: (a: unknown, b: unknown, m?: string) => void }, p: ReflinkPool, call: (signal: AbortSignal) => Promise<unknown>, what: string) {
  const before = visible(p.dirPath)
  const err = await call(AbortSignal.abort(new Error('before'))).then(() => null, (e: ReflinkPoolError) => e)
  t.is(err?.code, 'ABORT_ERR', `${what}: an aborted signal is refused`)
  t.deepEqual(visible(p.dirPath), before, `${what}: nothing changed`)
}

test.serial('start and stop: aborted before or during their copy, nothing changes', async (t) => {
  const p = await pool()
  const tpl = await origin(p, 'vm-templates/t/root')
  const snap = await p.createVolume({ vid: 'appvms/s/root', name: 'root', snapOnStart: true, source: tpl })
  const dir = join(p.dirPath, 'appvms', 's')
  await alreadyAborted(t, p, (signal) => snap.start({ signal }), 'snapshot start')
  await alreadyAborted(t, p, (signal) => tpl.start({ signal }), 'origin start')
  await abortedMidway(t, p, dir, (signal) => snap.start({ signal }), 'snapshot start (copy of the source)')
  t.false(await snap.isRunning())
  // The same volume starts normally afterwards.
  await snap.start()
  t.true(await snap.isRunning())
  await snap.stop()

  // stop of an origin: without reflink its revision is the old clean inode (a hardlink), nothing to abort.
  await tpl.start()
  await alreadyAborted(t, p, (signal) => tpl.stop({ signal }), 'origin stop')
  await tpl.stop()
  t.false(await tpl.isDirty())
  // stop of an origin-snapshot: its clean image is a second name of the template's, so its
  // revision is a copy (docs/design.md §3); aborted, the dirty image stays, nothing is committed.
  const os = await p.createVolume({ vid: 'appvms/os/root', name: 'root', snapOnStart: true, saveOnStop: true, source: tpl })
  await os.start()
  await alreadyAborted(t, p, (signal) => os.stop({ signal }), 'origin-snapshot stop')
  const cleanIno = ino(join(p.dirPath, 'appvms/os/root.img'))
  await abortedMidway(t, p, join(p.dirPath, 'appvms', 'os'), (signal) => os.stop({ signal }), 'origin-snapshot stop (revision copy)')
  t.true(await os.isDirty(), 'still running after the aborted stop')
  t.is(ino(join(p.dirPath, 'appvms/os/root.img')), cleanIno, 'the committed image is untouched')
  await os.stop()
  t.false(await os.isDirty())
  await p.close()
})

test.serial('revert and resize: aborted during their copy, nothing changes', async (t) => {
  const p = await pool()
  const v = await origin(p, 'appvms/r/private') // the import committed over the empty image: one revision
  const dir = join(p.dirPath, 'appvms', 'r')
  t.deepEqual(Object.keys(await v.revisions()), ['1'])
  await alreadyAborted(t, p, (signal) => v.revert(undefined, { signal }), 'revert')
  // A running snapshot of the volume gives its clean image a second name: the revision revert saves is then a copy.
  const snap = await p.createVolume({ vid: 'appvms/rs/root', name: 'root', snapOnStart: true, source: v })
  await snap.start()
  await abortedMidway(t, p, dir, (signal) => v.revert(undefined, { signal }), 'revert (revision copy)')
  await snap.stop()
  t.deepEqual(Object.keys(await v.revisions()), ['1'])
  await alreadyAborted(t, p, (signal) => v.resize(DATA + MiB, { signal }), 'resize')
  await abortedMidway(t, p, dir, (signal) => v.resize(DATA + MiB, { signal }), 'resize (new clean image)')
  t.is(await v.size(), DATA)
  await v.resize(DATA + MiB)
  t.is(await v.size(), DATA + MiB)
  await p.close()
})

test.serial('importVolume and exportStream: aborted part-way, nothing changes', async (t) => {
  const p = await pool()
  const src = await origin(p, 'vm-templates/src/root')
  const dst = await p.createVolume({ vid: 'appvms/dst/root', name: 'root', saveOnStop: true, size: MiB })
  await alreadyAborted(t, p, (signal) => dst.importVolume(src, { signal }), 'importVolume')
  await abortedMidway(t, p, join(p.dirPath, 'appvms', 'dst'), (signal) => dst.importVolume(src, { signal }), 'importVolume (copy)', 'root-import.img~')
  t.is(await dst.size(), MiB)

  const before = visible(p.dirPath)
  const ac = new AbortController()
  let read = 0
  const err = await (async () => {
    for await (const chunk of src.exportStream({ signal: ac.signal })) {
      read += (chunk as Buffer).length
      if (read >= 8 * MiB) ac.abort()
    }
  })().then(() => null, (e: Error & { code?: string }) => e)
  t.is(err?.name, 'AbortError')
  t.true(read < DATA, `stopped part-way (${read} bytes read)`)
  t.deepEqual(visible(p.dirPath), before)
  const early = await (async () => {
    for await (const _ of src.exportStream({ signal: AbortSignal.abort() })) void _
  })().then(() => null, (e: Error) => e)
  t.is(early?.name, 'AbortError')
  await p.close()
})
