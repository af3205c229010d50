// Pure parts of the pool layer: the file-name scheme (docs/design.md §2), the vid
// validation table, and the lock-owner liveness rule.
import test from 'ava'
import { parseVid } from '../ts/store/vid'
import {
  volumePaths,
  parseImageName,
  revisionFileName,
  revisionTimestamp,
  recordFileName,
  lockFileName,
  importMarkFileName,
  parseMetaName,
  derivedNames,
  NAME_MAX,
  MAX_REVISION,
} from '../ts/store/names'
import { ownerAlive, SELF_OWNER } from '../ts/store/owner'

test('volumePaths gives the exact names of docs/design.md §2', (t) => {
  t.deepEqual(volumePaths('/pool', 'appvms/web/private'), {
    clean: '/pool/appvms/web/private.img',
    dirty: '/pool/appvms/web/private-dirty.img',
    precache: '/pool/appvms/web/private-precache.img',
    import: '/pool/appvms/web/private-import.img',
    dir: '/pool/appvms/web',
    base: 'private',
  })
})

test('revision names carry N and the UTC mtime to the second, and parse back', (t) => {
  const ts = revisionTimestamp(Date.UTC(2024, 0, 2, 3, 4, 5, 999))
  t.is(ts, '2024-01-02T03:04:05')
  t.is(revisionFileName('root', 12, ts), 'root.img.12@2024-01-02T03:04:05Z')
  t.deepEqual(parseImageName('root.img.12@2024-01-02T03:04:05Z'), { base: 'root', kind: 'revision', rev: 12, timestamp: ts, temp: false })
})

test('parseImageName: every kind, temps, and names that are none of ours', (t) => {
  t.deepEqual(parseImageName('root.img'), { base: 'root', kind: 'clean', temp: false })
  t.deepEqual(parseImageName('root-dirty.img'), { base: 'root', kind: 'dirty', temp: false })
  t.deepEqual(parseImageName('root-precache.img'), { base: 'root', kind: 'precache', temp: false })
  t.deepEqual(parseImageName('root-import.img'), { base: 'root', kind: 'import', temp: false })
  t.deepEqual(parseImageName('root-dirty.img~a1b2'), { base: 'root', kind: 'dirty', temp: true })
  t.deepEqual(parseImageName('root.img.3@2024-01-02T03:04:05Z~zz')?.temp, true)
  t.is(parseImageName('root.img.0@2024-01-02T03:04:05Z'), null, 'revision numbers start at 1')
  t.is(parseImageName('root.img.3@2024-01-02T03:04:05'), null, 'no Z')
  t.is(parseImageName('root.img~'), null)
  t.is(parseImageName('.img'), null)
  t.is(parseImageName('notes.txt'), null)
  // a neighbour whose name extends ours is a different base
  t.is(parseImageName('root2.img')?.base, 'root2')
  // kept bases (docs/design.md §8.6): by identity, never a revision, temps included
  const id = '0123456789abcdef'.repeat(2)
  t.deepEqual(parseImageName(`root.img.base@${id}`), { base: 'root', kind: 'base', id, temp: false })
  t.deepEqual(parseImageName(`root.img.base@${id}~0011223344556677`), { base: 'root', kind: 'base', id, temp: true })
  t.is(parseImageName(`root.img.base@${id.toUpperCase()}`), null, 'ids are written in lowercase')
  t.is(parseImageName(`root.img.base@${id.slice(1)}`), null, '32 digits')
})

test('metadata names round-trip a vid and ignore temps', (t) => {
  const vid = 'vm-templates/deb-12/root'
  t.is(recordFileName(vid), 'vm-templates%2Fdeb-12%2Froot.json')
  t.deepEqual(parseMetaName(recordFileName(vid)), { vid, kind: 'record' })
  t.deepEqual(parseMetaName(lockFileName(vid)), { vid, kind: 'lock' })
  t.deepEqual(parseMetaName(importMarkFileName(vid)), { vid, kind: 'import' })
  t.is(parseMetaName(recordFileName(vid) + '~abc'), null)
  t.is(parseMetaName('pool.json'), null, 'not a vid')
})

// The invalid-vid table: each is refused with ERR_INVALID_VID (no I/O happens in parseVid).
const INVALID: Array<[string, unknown]> = [
  ['traversal', 'appvms/../etc'],
  ['traversal in name', 'appvms/vm/..'],
  ['dot component', 'appvms/./root'],
  ['absolute', '/appvms/vm/root'],
  ['trailing slash', 'appvms/vm/root/'],
  ['empty component', 'appvms//root'],
  ['too few components', 'appvms/root'],
  ['too many components', 'appvms/vm/sub/root'],
  ['unknown prefix', 'images/vm/root'],
  ['prefix only', 'appvms'],
  ['empty', ''],
  ['not a string', 42],
  ['undefined', undefined],
  ['dirty suffix', 'appvms/vm/root-dirty'],
  ['precache suffix', 'appvms/vm/root-precache'],
  ['import suffix', 'appvms/vm/root-import'],
  ['image suffix', 'appvms/vm/root.img'],
  ['dirty image suffix', 'appvms/vm/root-dirty.img'],
  ['vm with image suffix', 'appvms/vm.img/root'],
  ['temp mark', 'appvms/vm/root~x'],
  ['revision mark', 'appvms/vm/root@1'],
  ['hidden', 'appvms/.vm/root'],
  ['leading dash', 'appvms/vm/-root'],
  ['space', 'appvms/my vm/root'],
  ['NUL', 'appvms/vm/ro\0ot'],
  ['newline', 'appvms/vm/root\n'],
  ['backslash', 'appvms/vm\\..\\x/root'],
  ['component over NAME_MAX', `appvms/${'v'.repeat(256)}/root`],
  ['name whose revision temp name exceeds NAME_MAX', `appvms/vm/${'n'.repeat(200)}`],
  ['vm + name whose metadata names exceed NAME_MAX', `appvms/${'v'.repeat(128)}/${'n'.repeat(128)}`],
  ['vm-templates prefix tips the metadata name over NAME_MAX', `vm-templates/${'v'.repeat(120)}/${'n'.repeat(100)}`],
]
for (const [why, vid] of INVALID) {
  test(`invalid vid (${why}): ERR_INVALID_VID`, (t) => {
    t.throws(() => parseVid(vid), { code: 'ERR_INVALID_VID' })
  })
}

test('valid vids parse into prefix, vm and name', (t) => {
  t.deepEqual(parseVid('appvms/work-vm_2/private'), { prefix: 'appvms', vm: 'work-vm_2', name: 'private' })
  t.deepEqual(parseVid('vm-templates/debian-12.minimal/root'), { prefix: 'vm-templates', vm: 'debian-12.minimal', name: 'root' })
  t.notThrows(() => parseVid(`appvms/${'v'.repeat(128)}/root`))
})

test('a vid is accepted exactly when every name derived from it fits NAME_MAX (255 bytes)', (t) => {
  // The longest names: a revision's temp file (name + 59 bytes) and the import marker's temp file in .reflink-pool (vidKey + 24).
  const longestName = 255 - '.img.9007199254740990@0000-00-00T00:00:00Z~ffffffffffffffff'.length
  t.is(longestName, 196)
  t.notThrows(() => parseVid(`appvms/vm/${'n'.repeat(longestName)}`))
  t.throws(() => parseVid(`appvms/vm/${'n'.repeat(longestName + 1)}`), { code: 'ERR_INVALID_VID', message: /revision temp file name would be 256 bytes/ })
  const metaRoom = 255 - 'appvms%2F%2F.import~ffffffffffffffff'.length
  t.notThrows(() => parseVid(`appvms/${'v'.repeat(metaRoom - 100)}/${'n'.repeat(100)}`))
  t.throws(() => parseVid(`appvms/${'v'.repeat(metaRoom - 99)}/${'n'.repeat(100)}`), { code: 'ERR_INVALID_VID', message: /metadata temp file name would be 256 bytes/ })
  // Every derived name of an accepted vid fits, for every family.
  const vid = `vm-templates/${'v'.repeat(100)}/${'n'.repeat(100)}`
  t.notThrows(() => parseVid(vid))
  for (const { name } of derivedNames(vid)) t.true(Buffer.byteLength(name) <= NAME_MAX)
  // A kept base's temp file is exactly as long as the longest revision's: the same 196-byte limit covers it.
  t.is('.img.base@ffffffffffffffffffffffffffffffff~ffffffffffffffff'.length, '.img.9007199254740990@0000-00-00T00:00:00Z~ffffffffffffffff'.length)
  // The message of a refused long vid is bounded (no 64 KiB error strings).
  const err = t.throws(() => parseVid(`appvms/vm/${'n'.repeat(65536)}`), { code: 'ERR_INVALID_VID' })
  t.true(err!.message.length < 400)
})

test('revision numbers are bounded: above MAX_REVISION a revision name parses as out of range, without a number', (t) => {
  t.is(MAX_REVISION, 2 ** 53 - 2)
  t.is(parseImageName(`root.img.${MAX_REVISION}@2024-01-02T03:04:05Z`)?.rev, MAX_REVISION)
  for (const n of [`${MAX_REVISION + 1}`, '9999999999999999', '18446744073709551616', '1'.repeat(40)]) {
    t.deepEqual(parseImageName(`root.img.${n}@2024-01-02T03:04:05Z`), { base: 'root', kind: 'revision', outOfRange: true, timestamp: '2024-01-02T03:04:05', temp: false }, n)
  }
})

test('lock owners: this process is alive; dead pids, other boots and old empty files are stale', (t) => {
  t.true(ownerAlive(SELF_OWNER, Date.now()))
  const [boot] = SELF_OWNER.split(' ')
  t.false(ownerAlive(`${boot} 999999999 1`, Date.now()), 'no such pid')
  t.false(ownerAlive(`${boot} ${process.pid} 1`, Date.now()), 'pid reused by another process (start time differs)')
  t.false(ownerAlive(`other-boot ${process.pid} 1`, Date.now()), 'written before a reboot')
  t.true(ownerAlive('', Date.now()), 'an empty lock being written is alive for a while')
  t.false(ownerAlive('', Date.now() - 60_000))
  t.true(ownerAlive('something unknown', 0), 'never break what we do not understand')
})
