// Reading a byte stream ahead of its consumer (docs/design.md §8.3): while the core
// writes one piece of a received stream, the next chunks are read and queued, and the
// next piece is whatever arrived meanwhile. So a fast source gives large pieces (one
// task each, not one per 64 KiB pipe chunk) and a slow one small pieces, never held
// back to fill a size: a cut link or a Ctrl-C loses nothing that had arrived.
import { abortError } from '../errors'
import { chunkBytes } from '../validate'
import { keptBytes, raceAbort } from './stream'

export class ReadAhead {
  private parts: Buffer[] = []
  private have = 0
  private ended = false
  private failed: { error: unknown } | null = null
  private reading = false
  private wake: (() => void) | null = null

  /** `owned`: the source is a Node Readable, whose chunks are kept as they are (`keptBytes`). */
  constructor(
    private readonly it: AsyncIterator<unknown>,
    private readonly max: number,
    private readonly owned: boolean,
    private readonly signal?: AbortSignal,
  ) {}

  /** What arrived since the last take (waiting for at least one chunk); null once the source ended. A failure of the source is thrown once what came before it was taken. */
  async take(): Promise<Buffer | null> {
    this.pull()
    while (this.parts.length === 0) {
      if (this.failed) throw this.failed.error
      if (this.ended) return null
      if (this.signal?.aborted) throw abortError(this.signal)
      await new Promise<void>((resolve) => (this.wake = resolve))
      this.wake = null
    }
    const piece = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.have)
    this.parts = []
    this.have = 0
    this.pull()
    return piece
  }

  /** Read chunks in the background until `max` bytes wait, or the source ends or fails. */
  private pull(): void {
    if (this.reading || this.ended || this.failed) return
    this.reading = true
    void (async () => {
      try {
        while (this.have < this.max) {
          const next = await raceAbort(this.it.next(), this.signal)
          if (next.done) {
            this.ended = true
            break
          }
          const bytes = chunkBytes('chunk', next.value)
          if (bytes.length === 0) continue
          this.parts.push(keptBytes(bytes, this.owned))
          this.have += bytes.length
          this.wake?.()
        }
      } catch (e) {
        this.failed = { error: e }
      } finally {
        this.reading = false
        this.wake?.()
      }
    })()
  }
}
