// The ledger of what a workload did, kept OUTSIDE the filesystem under test
// (in the runner's temp dir on the root filesystem), so it survives the power
// cut and the SIGKILL that it is used to judge.
//
// One JSON line per event, appended synchronously before and after every pool
// operation: `begin` lists the clean-image checksums the operation may leave
// (old and new), `end` says whether it returned and what the clean image now
// holds. Replaying the lines gives, for every save-on-stop volume, the set of
// contents its clean image may legally have after a crash.
import { appendFileSync, existsSync, readFileSync } from 'node:fs'

export type JournalEvent =
  | { k: 'clean'; vid: string; hash: string }
  | { k: 'begin'; seq: number; vid: string; op: string; accept: string[]; t: number }
  | { k: 'end'; seq: number; ok: true; hash?: string; t: number }
  | { k: 'end'; seq: number; ok: false; code: string; t: number }

export class Journal {
  private seq = 0
  constructor(readonly path: string) {}

  record(ev: JournalEvent): void {
    appendFileSync(this.path, JSON.stringify(ev) + '\n')
  }

  clean(vid: string, hash: string): void {
    this.record({ k: 'clean', vid, hash })
  }

  /** Journal one operation on `vid`: `accept` are the clean contents it may leave; `run` returns the new one. */
  async op(vid: string, op: string, accept: string[], run: () => Promise<string | undefined>): Promise<void> {
    const seq = ++this.seq
    this.record({ k: 'begin', seq, vid, op, accept, t: Date.now() })
    let hash: string | undefined
    try {
      hash = await run()
    } catch (e) {
      const code = (e as { code?: unknown })?.code
      this.record({ k: 'end', seq, ok: false, code: typeof code === 'string' ? code : String((e as Error)?.message ?? e), t: Date.now() })
      throw e
    }
    this.record({ k: 'end', seq, ok: true, hash, t: Date.now() })
  }
}

export interface VolumeLedger {
  /** Content of the clean image after the last operation known to have returned. */
  committed: string
  /** When an operation was in flight (or failed): every content it may have left. */
  inflight: { op: string; accept: string[] } | null
  /** Every content the clean image has had or may have had: revisions must be among these. */
  history: Set<string>
}

export interface Replay {
  volumes: Map<string, VolumeLedger>
  /** Operations that returned successfully. */
  completed: number
  /** Operations that threw, with when (ms since epoch) and their code. */
  failures: Array<{ op: string; vid: string; code: string; t: number }>
  /** The operation in flight when the journal ends (or that failed last, as ops do once the power is cut), if any. */
  lastInflight: string | null
}

export function replayJournal(path: string): Replay {
  const volumes = new Map<string, VolumeLedger>()
  const begun = new Map<number, { vid: string; op: string; accept: string[] }>()
  const replay: Replay = { volumes, completed: 0, failures: [], lastInflight: null }
  if (!existsSync(path)) return replay
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue
    const ev = JSON.parse(line) as JournalEvent
    if (ev.k === 'clean') {
      const v = volumes.get(ev.vid)
      if (v) { v.committed = ev.hash; v.history.add(ev.hash) } else volumes.set(ev.vid, { committed: ev.hash, inflight: null, history: new Set([ev.hash]) })
    } else if (ev.k === 'begin') {
      begun.set(ev.seq, ev)
      replay.lastInflight = ev.op
      const v = volumes.get(ev.vid)
      if (v) {
        v.inflight = { op: ev.op, accept: ev.accept }
        for (const h of ev.accept) v.history.add(h)
      }
    } else {
      const b = begun.get(ev.seq)
      if (!b) continue
      const v = volumes.get(b.vid)
      if (ev.ok) {
        replay.lastInflight = null
        replay.completed++
        if (v) {
          if (ev.hash) { v.committed = ev.hash; v.history.add(ev.hash) }
          v.inflight = null
        }
      } else {
        replay.failures.push({ op: b.op, vid: b.vid, code: ev.code, t: ev.t })
        // A failed operation may still have committed: its accept set stands.
      }
    }
  }
  return replay
}
