// `usage --if-removed` (docs/design.md §7): what removing a set of volumes would
// give back. Every image file in the pool's VM directories is sorted into the
// set's (named after one of its vids: images, precache, revisions, imports and
// temp files) or the others' (every other volume's, and files the pool did not
// make: a reflink there keeps extents alive too); the native walk
// (crates/core/src/freed.rs) counts the extents only the set maps.
import { join, resolve } from 'node:path'
import { parseImageName } from '../store/names'
import { VID_PREFIXES } from '../store/vid'
import type { PoolContext } from '../store/context'
import type { IfRemovedReport } from '../store/types'

export async function ifRemoved(ctx: PoolContext, vids: readonly string[]): Promise<IfRemovedReport> {
  const set = new Set(vids)
  const removed: string[] = []
  const others: string[] = []
  for (const prefix of VID_PREFIXES) {
    const prefixDir = resolve(ctx.dirPath, prefix)
    if (!(await ctx.files.checkDir(prefixDir))) continue
    for (const vm of await ctx.files.list(prefixDir)) {
      if (!vm.isDirectory()) continue // a symlink is never followed: what it leads to is not the pool's
      const vmDir = join(prefixDir, vm.name)
      for (const ent of await ctx.files.list(vmDir)) {
        if (!ent.isFile()) continue
        const parsed = parseImageName(ent.name)
        const path = join(vmDir, ent.name)
        if (parsed !== null && set.has(`${prefix}/${vm.name}/${parsed.base}`)) removed.push(path)
        else others.push(path)
      }
    }
  }
  const { bytes, files } = await ctx.files.freedBytes(removed, others)
  return { vids: [...set].sort(), freed: bytes, files }
}
