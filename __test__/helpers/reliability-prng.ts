// Seeded pseudo-random generator for the reliability suites.
//
// Every trial is driven by one 32-bit seed: the workload, the data written and
// the moment of the fault all come from it, so a failing trial is replayed by
// passing its seed back (RELIABILITY_SEED=<seed>). sfc32 is small, fast and has
// no bad seeds, which is all a test oracle needs.

export class Prng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(readonly seed: number) {
    this.a = 0x9e3779b9
    this.b = 0x243f6a88
    this.c = 0xb7e15162
    this.d = seed >>> 0
    for (let i = 0; i < 15; i++) this.next()
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next() / 0x100000000
  }

  /** An integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1))
  }

  bool(p = 0.5): boolean {
    return this.float() < p
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list')
    return items[this.int(0, items.length - 1)]
  }

  /** `n` pseudo-random bytes (never all zero in practice, so holes stay distinguishable). */
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n)
    let i = 0
    for (; i + 4 <= n; i += 4) out.writeUInt32LE(this.next(), i)
    for (; i < n; i++) out[i] = this.next() & 0xff
    return out
  }

  /** A child generator whose stream does not depend on how much of this one is used later. */
  fork(label: number): Prng {
    return new Prng((this.seed ^ Math.imul(label + 1, 0x85ebca6b)) >>> 0)
  }
}

/** The seeds of a run: fixed by RELIABILITY_SEED (one trial replayed) or derived from a base seed. */
export function trialSeeds(count: number, base: number): number[] {
  const fixed = process.env.RELIABILITY_SEED
  if (fixed) return [Number(fixed) >>> 0]
  const g = new Prng(base)
  return Array.from({ length: count }, () => g.next())
}
