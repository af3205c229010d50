#!/usr/bin/env node
// reflink-pool command line: parses arguments (commander), runs one command,
// prints its result (aligned tables or --json) and maps errors to one stderr
// line and an exit status (errors.ts). The library is loaded lazily so that
// --help and --version work even before the native binding is built.
import { Argument, Command, CommanderError } from 'commander'
import { commandTree } from './command-tree'
import { complete, completionScript, SHELLS, type Shell } from './completion'
import { CliError, EXIT, EXIT_STATUS_TEXT, UsageError, errorJson, errorLine, exitStatusOf } from './errors'
import { toJson } from './output'
import { registerPoolCommands } from './commands/pool'
import { registerVolumeCommands } from './commands/volume'
import { registerCloneCommand } from './commands/clone'
import { registerDemoCommand } from './commands/demo'
import { registerBenchCommand } from './commands/bench'
import { examples } from './args'
import { interrupt } from './interrupt'
import { exitQuietlyOnClosedPipe } from './pipe'
import { painter } from '../util/style'
import { abortError } from '../errors'

function packageVersion(): string {
  // Same relative path from ts/cli (tsx) and dist/cli (compiled); the bundle has it inlined.
  return (require('../../package.json') as { version: string }).version
}

export function buildProgram(): Command {
  const program = new Command('reflink-pool')
  program
    .description('Store VM disk images as plain files and clone them in O(metadata) with reflinks.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('-p, --pool <dir>', 'pool directory (default: $REFLINK_POOL_DIR)')
    .option('--json', 'machine-readable output on stdout')
    .option('--debug', 'print stack traces on errors')
    .exitOverride()
    .configureOutput({ outputError: () => {} }) // we print usage errors ourselves, in our format
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      examples(
        'reflink-pool demo',
        'reflink-pool --pool /var/lib/vms init',
        'export REFLINK_POOL_DIR=/var/lib/vms',
        'reflink-pool volume create vm-templates/debian/root --size 10G',
        'reflink-pool volume import vm-templates/debian/root debian.img',
        "reflink-pool clone vm-templates/debian/root 'appvms/web-{n}/root' --count 20",
        'reflink-pool volume list --json',
      ) +
        `\nExit status: ${EXIT_STATUS_TEXT}\n`,
    )
  registerPoolCommands(program)
  registerVolumeCommands(program)
  registerCloneCommand(program)
  registerDemoCommand(program)
  registerBenchCommand(program)
  registerCompletionCommands(program)
  return program
}

/** `completion SHELL` and the hidden `__complete WORD...` its scripts call (completion.ts). */
function registerCompletionCommands(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script (commands, options, and the vids of the pool)')
    .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
    .addHelpText(
      'after',
      examples(
        'reflink-pool completion bash > /etc/bash_completion.d/reflink-pool',
        'reflink-pool completion zsh > "${fpath[1]}/_reflink-pool"',
        'reflink-pool completion fish > ~/.config/fish/completions/reflink-pool.fish',
      ),
    )
    .action((shell: Shell) => {
      process.stdout.write(completionScript(shell, program.name()))
    })
  program
    .command('__complete', { hidden: true })
    .description('the candidates for the last word (used by the completion scripts)')
    .argument('[words...]')
    .allowUnknownOption()
    .helpOption(false)
    .action((words: string[]) => {
      const found = complete(commandTree(program), words.length ? words : [''])
      if (found.length) process.stdout.write(found.join('\n') + '\n')
    })
}

/** Run the CLI with `argv` (as process.argv); resolves to the exit status. */
export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram()
  const debug = argv.includes('--debug')
  const json = argv.includes('--json')
  exitQuietlyOnClosedPipe()
  const stopListening = interrupt.listen()
  try {
    await program.parseAsync(argv)
    // A delegated command (bench) may have set its own status.
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return EXIT.ok // --help, --version
      // A group called without a subcommand: commander has printed its help on stderr.
      if (err.code === 'commander.help') return report(new UsageError('missing command (see the list above)'), { json, debug })
      // commander says "error: unknown option '--x'\n(Did you mean --y?)": one line, our way, hint kept.
      return report(new UsageError(err.message.replace(/^error: /, '').split('\n').map((l) => l.trim()).filter(Boolean).join(' ')), { json, debug })
    }
    // The reader of a native export (stdout, a FIFO) went away: quiet, as pipe.ts does for Node's writes.
    if ((err as NodeJS.ErrnoException)?.code === 'EPIPE') return EXIT.closedPipe
    // Interrupted: that is the cause of whatever failed since, e.g. a sender that Ctrl-C closed
    // (it reaches both ends of a pipe) before the abort was seen: never blame the stream.
    if (interrupt.aborted) {
      if (json) process.stdout.write(toJson(errorJson((err as Error)?.name === 'AbortError' ? err : abortError(interrupt.signal))) + '\n')
      // A command may say what the interruption left (a receive: what it kept for a resume).
      const said = err instanceof CliError && err.code === 'ABORT_ERR' ? err.message : 'interrupted'
      process.stderr.write(`reflink-pool: ${said} (ABORT_ERR)\n`)
      return EXIT.interrupted
    }
    return report(err, { json, debug })
  } finally {
    stopListening()
  }
}

function report(err: unknown, opts: { json: boolean; debug: boolean }): number {
  if (opts.json) process.stdout.write(toJson(errorJson(err)) + '\n')
  process.stderr.write(painter(process.stderr)('error', errorLine(err)) + '\n')
  if (opts.debug && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n')
  return exitStatusOf(err)
}

if (require.main === module) {
  main().then(
    (status) => {
      process.exitCode = status
    },
    (err) => {
      process.stderr.write(errorLine(err) + '\n')
      process.exitCode = EXIT.failure
    },
  )
}
