// `reflink-pool demo` (also `npm start`): the main job on a temporary pool,
// then everything it made is removed again.
import type { Command } from 'commander'
import { examples, intArg } from '../args'
import { humanDuration } from '../format'
import { interrupt } from '../interrupt'
import { globalOptions, Output } from '../output'
import { prepareDemoPlace } from '../demo/place'
import { runDemoScenario } from '../demo/scenario'

/** Copy mode moves every byte: keep its demo small so it still ends in seconds. */
const COPY_MODE_DEFAULTS = { clones: 10, dataMiB: 64 }

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('clone a template to 100 VMs on a temporary pool, run them, revert one, show time and space; then clean up')
    .option('--clones <n>', 'number of VM volumes (default: 100; 10 in copy mode)', intArg(1, 1000))
    .option('--data-mib <n>', 'MiB of data in the template (default: 256; 64 in copy mode)', intArg(1, 4096))
    .option('-j, --concurrency <n>', 'operations in flight at once', intArg(1, 256), 8)
    .option('--no-xfs-image', 'never make a loop-mounted XFS image: copy mode where the current filesystem cannot reflink')
    .addHelpText('after', examples('reflink-pool demo', 'npm start', 'reflink-pool demo --clones 10 --json'))
    .action(async (o: { clones?: number; dataMib?: number; concurrency: number; xfsImage: boolean }, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = new Output(g.json)
      // The demo's story is its result: human lines go to stdout as they happen (JSON at the end instead).
      const say = (line: string) => {
        if (!g.json) process.stdout.write(line + '\n')
      }
      const started = performance.now()
      const place = await prepareDemoPlace({ xfsImage: o.xfsImage })
      const forget = interrupt.onHardExit(() => place.cleanup())
      let report
      try {
        const copyMode = place.kind === 'copy'
        const clones = o.clones ?? (copyMode ? COPY_MODE_DEFAULTS.clones : 100)
        const dataMiB = o.dataMib ?? (copyMode ? COPY_MODE_DEFAULTS.dataMiB : 256)
        say(`reflink-pool demo: ${place.description}`)
        if (copyMode && (o.clones === undefined || o.dataMib === undefined)) {
          say(`           copy mode copies every byte, so this run uses ${clones} clones of ${dataMiB} MiB (--clones/--data-mib to change)`)
        }
        try {
          report = await runDemoScenario(place.pool, { clones, dataMiB, concurrency: o.concurrency, signal: interrupt.signal }, out, say)
        } finally {
          await place.pool.close()
        }
      } finally {
        place.cleanup()
        forget()
      }
      say(`cleanup    removed the temporary pool${place.kind === 'xfs-loop' ? ', unmounted the XFS image and detached its loop device' : ''}`)
      say(`done in ${humanDuration(performance.now() - started)} (setup and cleanup included)`)
      out.result({ place: place.kind, description: place.description, made: place.made, ...report }, () => '')
    })
}
