// Which volumes depend on which (docs/design.md §3): a snapshot volume
// (snapOnStart) starts from its source's clean image, so removing the source
// would break it. Derived from the records each time, never stored: a record
// is the one truth about a volume, and a second list could disagree with it.
import type { ReflinkVolume } from '../volume/volume'

/** Source vid -> the vids of the volumes that start from it, sorted. */
export function dependentsIndex(volumes: Iterable<ReflinkVolume>): Map<string, string[]> {
  const index = new Map<string, string[]>()
  for (const v of volumes) {
    if (v.broken !== null || !v.snapOnStart || v.source === null) continue
    const list = index.get(v.source)
    if (list) list.push(v.vid)
    else index.set(v.source, [v.vid])
  }
  for (const list of index.values()) list.sort()
  return index
}

/** `vids` and, transitively, every volume that depends on one of them (a snapshot of a snapshot's source...). */
export function withDependents(index: Map<string, string[]>, vids: Iterable<string>): Set<string> {
  const out = new Set<string>(vids)
  const todo = [...out]
  for (let vid = todo.pop(); vid !== undefined; vid = todo.pop()) {
    for (const dep of index.get(vid) ?? []) {
      if (!out.has(dep)) {
        out.add(dep)
        todo.push(dep)
      }
    }
  }
  return out
}

/** Per vid of `vids`, its dependents that are not themselves in `vids` (only vids that have some). */
export function outsideDependents(index: Map<string, string[]>, vids: ReadonlySet<string>): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const vid of vids) {
    const outside = (index.get(vid) ?? []).filter((d) => !vids.has(d))
    if (outside.length) out.set(vid, outside)
  }
  return out
}
