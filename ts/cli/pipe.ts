// A reader that goes away (`reflink-pool volume list | head -3`) is not a
// failure of ours: Node ignores SIGPIPE, so a write to the closed pipe fails
// with EPIPE, emitted as an 'error' event that would otherwise end the process
// with a stack trace. We end quietly instead, with the status a shell reports
// for a command killed by SIGPIPE (EXIT.closedPipe = 128 + 13), as `cat` does.
//
// The handlers stay for the life of the process: the failing write of a result
// is reported after the command has returned.
import { EXIT } from './errors'

let installed = false

export function exitQuietlyOnClosedPipe(): void {
  if (installed) return
  installed = true
  const onError = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.closedPipe)
    throw err
  }
  process.stdout.on('error', onError)
  process.stderr.on('error', onError)
}
