// What `volume stop` did to each volume, said plainly: committed (and which
// revision now holds the state before the run), nothing to commit, or the
// changes dropped, including a resize made while it ran (docs/design.md §3).
import { humanSize } from './format'
import type { Volume } from './pool-access'

/** What a volume looked like just before its stop. */
export interface BeforeStop {
  running: boolean
  /** The size the VM saw (the running image's). */
  size: number
  revisions: Set<string>
}

export interface StopOutcome {
  /** A save-on-stop volume's running image became its committed state. */
  committed: boolean
  /** The revision that now holds the state before the run, or null (none kept, or nothing committed). */
  revision: number | null
  /** The running image was dropped: --discard, or a kind that keeps nothing. */
  discarded: boolean
  /** A resize made while it ran and dropped with it: {from, to} as the VM saw it, else null. */
  droppedResize: { from: number; to: number } | null
}

export async function beforeStop(v: Volume): Promise<BeforeStop> {
  const running = await v.isRunning()
  return { running, size: await v.size(), revisions: new Set(v.saveOnStop ? Object.keys(await v.revisions()) : []) }
}

export async function stopOutcome(v: Volume, before: BeforeStop, discard: boolean): Promise<StopOutcome> {
  if (!before.running) return { committed: false, revision: null, discarded: false, droppedResize: null }
  if (v.saveOnStop && !discard) {
    const added = Object.keys(await v.revisions()).filter((r) => !before.revisions.has(r))
    return { committed: true, revision: added.length ? Number(added[added.length - 1]) : null, discarded: false, droppedResize: null }
  }
  // A volatile volume keeps a resize made while it ran (its record takes the new size); the others drop it.
  const after = v.saveOnStop ? await v.size() : before.size
  return { committed: false, revision: null, discarded: true, droppedResize: after !== before.size ? { from: after, to: before.size } : null }
}

/** One line per stopped volume. */
export function stopLine(vid: string, o: StopOutcome, kind: string): string {
  if (o.committed) return `${vid}: committed${o.revision !== null ? ` (revision ${o.revision} holds the state before it)` : ' (no revision kept)'}`
  if (!o.discarded) return `${vid}: nothing to commit (it was not running)`
  const what = kind === 'origin' || kind === 'origin-snapshot' ? 'its changes were discarded' : `a ${kind} volume keeps nothing: its changes were dropped`
  const resize = o.droppedResize ? `; the resize to ${humanSize(o.droppedResize.to)} is dropped too (back to ${humanSize(o.droppedResize.from)})` : ''
  return `${vid}: ${what}${resize}`
}
