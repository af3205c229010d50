// adoptAll (docs/design.md §3, Adoption): register every image set of a
// directory laid out by the Qubes file-reflink driver that has no record. It
// never stops part-way: each VM directory and image set is judged on its own,
// and whatever cannot be adopted (a symlink, FIFO, device or directory where an
// image should be, a hardlinked clean image, a set without its clean image, an
// invalid name, a directory that cannot be read, a refused adoptVolume) lands
// in `skipped` with its reason, whatever the order of the entries.
import { join, resolve } from 'node:path'
import { isValidVid, VID_PREFIXES } from '../store/vid'
import { parseImageName, type ImageKind } from '../store/names'
import type { DirEntry } from '../store/files'
import type { RegistryContext } from './context'
import type { AdoptReport } from '../store/types'

/** The entries of one VM directory named as images of one volume. */
interface ImageSet {
  kinds: Set<ImageKind>
  /** Entries that are not regular files ("root.img is a symlink"). */
  odd: string[]
}

const ENTRY_KIND: Record<DirEntry['kind'], string> = {
  file: 'a regular file',
  directory: 'a directory',
  symlink: 'a symlink',
  other: 'a FIFO, socket or device',
}

/** Why an error stopped one entry (its code and first line). */
function because(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code
  const text = e instanceof Error ? e.message.split('\n')[0] : String(e)
  return typeof code === 'string' ? `${code}: ${text}` : text
}

const byName = <T>([a]: [string, T], [b]: [string, T]) => (a < b ? -1 : a > b ? 1 : 0)

export async function adoptAll(ctx: RegistryContext): Promise<AdoptReport> {
  const report: AdoptReport = { adopted: [], skipped: [] }
  const skip = (path: string, reason: string) => report.skipped.push({ path, reason })
  /** Entries of `dir`, or null (skipped with the reason) when it cannot be read. */
  const list = async (dir: string): Promise<DirEntry[] | null> => {
    try {
      return await ctx.files.list(dir)
    } catch (e) {
      skip(dir, `cannot be read (${because(e)})`)
      return null
    }
  }
  for (const prefix of VID_PREFIXES) {
    const prefixDir = resolve(ctx.dirPath, prefix)
    for (const vm of (await list(prefixDir)) ?? []) {
      const vmDir = join(prefixDir, vm.name)
      if (!vm.isDirectory()) {
        skip(vmDir, vm.kind === 'symlink' ? 'a symlink, not a VM directory' : 'not a VM directory')
        continue
      }
      const sets = new Map<string, ImageSet>()
      for (const ent of (await list(vmDir)) ?? []) {
        const parsed = parseImageName(ent.name)
        if (!parsed || parsed.temp) continue
        const set = sets.get(parsed.base) ?? { kinds: new Set(), odd: [] }
        sets.set(parsed.base, set)
        set.kinds.add(parsed.kind)
        if (!ent.isFile()) set.odd.push(`${ent.name} is ${ENTRY_KIND[ent.kind]}`)
      }
      for (const [base, set] of [...sets].sort(byName)) {
        const vid = `${prefix}/${vm.name}/${base}`
        const path = join(vmDir, base)
        try {
          const reason = await adoptSet(ctx, vid, path, set)
          if (reason === null) report.adopted.push(vid)
          else if (reason !== KNOWN) skip(path, reason)
        } catch (e) {
          skip(path, because(e))
        }
      }
    }
  }
  report.adopted.sort()
  report.skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return report
}

/** adoptSet's answer for a set that is a volume of the pool already (neither adopted nor skipped). */
const KNOWN = 'known'

/** Adopt one image set as an origin: null when adopted, KNOWN, or why it was skipped. */
async function adoptSet(ctx: RegistryContext, vid: string, path: string, set: ImageSet): Promise<string | null> {
  if (!isValidVid(vid)) return 'its name is not a valid volume id'
  if (ctx.cached(vid)) return KNOWN
  if (set.odd.length) return `${set.odd.join(', ')}: only regular files are adopted`
  if (!set.kinds.has('clean')) return `no clean image (${[...set.kinds].join(', ')} only): adopt it explicitly with its kind`
  // While its VM runs, the driver hardlinks a snapshot's clean image to its source's; an
  // origin always has a precache beside its clean image (unless snapshots are disabled).
  if (!set.kinds.has('precache') && ((await ctx.files.image(`${path}.img`))?.nlink ?? 1) > 1) {
    return 'its clean image is hardlinked and has no precache (a snapshot of another volume while its VM runs): adopt it explicitly with its kind, or stop the VM first'
  }
  await ctx.pool.adoptVolume({ vid })
  return null
}
