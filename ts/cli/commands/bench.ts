// `reflink-pool bench`: delegates to the benchmark harness (ts/bench/main.ts,
// `runBench(argv)`), loaded only when asked for.
import type { Command } from 'commander'
import { examples } from '../args'
import { CLI_CODES, CliError } from '../errors'

interface BenchModule {
  runBench(argv: string[]): Promise<number | void>
}

function loadBench(): BenchModule {
  let mod: Partial<BenchModule>
  try {
    mod = require('../../bench/main') as Partial<BenchModule>
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err
    throw new CliError('the benchmark harness is not part of this build (ts/bench/main.ts missing)', CLI_CODES.benchUnavailable)
  }
  if (typeof mod.runBench !== 'function') {
    throw new CliError('the benchmark harness does not export runBench(argv)', CLI_CODES.benchUnavailable)
  }
  return mod as BenchModule
}

export function registerBenchCommand(program: Command): void {
  program
    .command('bench [args...]')
    .description('run the benchmark harness (arguments go to it; see `reflink-pool bench -- --help`); it writes JSON, markdown and a chart to --out')
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText('after', examples('reflink-pool bench', 'reflink-pool bench -- --help', 'npm run bench'))
    .action(async (args: string[]) => {
      // The harness always writes its JSON report (and markdown, chart) into its --out directory,
      // so --json needs no forwarding.
      const status = await loadBench().runBench(args)
      if (typeof status === 'number' && status !== 0) process.exitCode = status
    })
}
