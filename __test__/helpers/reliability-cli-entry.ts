// Entry used by the CLI bad-input properties to run the real command line
// from source (through tsx) in a child process, like bin/reflink-pool.js does
// from dist/.
import { main } from '../../ts/cli/main'

main(process.argv).then((status) => {
  process.exitCode = status
})
