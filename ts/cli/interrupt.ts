// Ctrl-C handling. The first SIGINT/SIGTERM aborts the running operation through
// an AbortSignal (the library cleans up its temp files and rejects); a second one
// runs the registered synchronous cleanups (e.g. the demo's unmount) and exits.
import { EXIT } from './errors'

class Interrupt {
  private controller = new AbortController()
  private cleanups = new Set<() => void>()

  get signal(): AbortSignal {
    return this.controller.signal
  }

  get aborted(): boolean {
    return this.controller.signal.aborted
  }

  /** Register a synchronous cleanup for a hard exit; returns its unregister function. */
  onHardExit(fn: () => void): () => void {
    this.cleanups.add(fn)
    return () => this.cleanups.delete(fn)
  }

  /** Install the signal handlers for the duration of one command. */
  listen(): () => void {
    const onSignal = () => {
      if (!this.controller.signal.aborted) {
        this.controller.abort()
        return
      }
      for (const fn of this.cleanups) {
        try {
          fn()
        } catch {}
      }
      process.exit(EXIT.interrupted)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    return () => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }
}

export const interrupt = new Interrupt()
