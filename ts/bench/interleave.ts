// Interleaved timing: each round runs every peer once, in a freshly shuffled
// (seeded) order whose first peer takes turns, so slow drift of the machine (writeback, other tenants) hits
// every peer alike and no peer always runs right after the same neighbour.
// Preparation, the `between` hook (sync, drop caches) and cleanup run outside
// the timed region; cleanups run after the whole round (or after all rounds),
// so the background work of a deletion (XFS inode inactivation, btrfs extent
// frees) does not land in the next peer's timing.
import { performance } from 'node:perf_hooks'
import { prng, shuffled } from './random'

export interface TimedPeer {
  id: string
  /** Untimed preparation for round `round` (e.g. choose a fresh destination). */
  prepare?(round: number): Promise<void> | void
  /**
   * The timed operation. Returning a number means the peer timed itself (in ms),
   * as the floor binary does; otherwise the harness times the call.
   */
  run(round: number): Promise<number | void> | number | void
  /** Untimed cleanup after the round (e.g. remove the destination). */
  cleanup?(round: number): Promise<void> | void
}

export interface InterleaveOptions {
  rounds: number
  /** Runs before every timed operation, untimed (flush and drop caches). */
  between?(): Promise<void> | void
  /**
   * Run every cleanup after the last round instead of after each round: for
   * results whose deletion leaves background work behind (a reflinked file
   * with 10 000 extents keeps XFS busy for a second after unlink, which syncfs
   * does not wait for, and which slowed the next clone from 0.1 s to 0.4–1 s).
   */
  deferCleanup?: boolean
  /** Called after each operation, for progress output. */
  onSample?(peer: string, round: number, ms: number): void
}

/** Time every peer `rounds` times, interleaved; returns the samples (ms) per peer id, in round order. */
export async function timeInterleaved(peers: readonly TimedPeer[], opts: InterleaveOptions): Promise<Map<string, number[]>> {
  const samples = new Map<string, number[]>(peers.map((p) => [p.id, []]))
  const rand = prng(opts.rounds * 7919 + peers.length)
  for (let round = 0; round < opts.rounds; round++) {
    // Shuffled, then turned so that each peer runs first equally often: with two peers a
    // shuffle alone put the same one first in every round of a run (always after the
    // previous round's writeback).
    const order = shuffled(peers, rand)
    const lead = order.indexOf(peers[round % peers.length])
    for (const peer of [...order.slice(lead), ...order.slice(0, lead)]) {
      await peer.prepare?.(round)
      await opts.between?.()
      const t0 = performance.now()
      const self = await peer.run(round)
      const ms = typeof self === 'number' ? self : performance.now() - t0
      samples.get(peer.id)!.push(ms)
      opts.onSample?.(peer.id, round, ms)
    }
    if (!opts.deferCleanup) for (const peer of peers) await peer.cleanup?.(round)
  }
  if (opts.deferCleanup) for (let round = 0; round < opts.rounds; round++) for (const peer of peers) await peer.cleanup?.(round)
  return samples
}
