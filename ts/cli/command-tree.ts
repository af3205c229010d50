// The command definitions as data: the commands, options and arguments that
// commander holds, read from its own tree (buildProgram) so that --help, shell
// completion and the man page can never disagree. Loads no native code.
import type { Command } from 'commander'

export interface OptionNode {
  /** As written in the definition, e.g. "--ro, --read-only" or "-p, --pool <dir>". */
  flags: string
  /** Every spelling: ['--ro', '--read-only'], ['-p', '--pool']. */
  names: string[]
  description: string
  /** Takes a value (`<x>` or `[x]`). */
  takesValue: boolean
  /** The values it accepts, when it lists them. */
  choices: string[]
}

export interface ArgumentNode {
  name: string
  required: boolean
  variadic: boolean
}

export interface CommandNode {
  /** The words that reach it: [] for the program, ['volume', 'list'] for `volume list`. */
  path: string[]
  names: string[]
  description: string
  options: OptionNode[]
  args: ArgumentNode[]
  commands: CommandNode[]
}

/** The visible tree under `cmd` (hidden commands and options left out, as --help does). */
export function commandTree(cmd: Command, path: string[] = []): CommandNode {
  const help = cmd.createHelp()
  return {
    path,
    names: [cmd.name(), ...cmd.aliases()],
    description: cmd.description(),
    options: help.visibleOptions(cmd).map((o) => ({
      flags: o.flags,
      names: o.flags.split(/[ ,|]+/).filter((w) => w.startsWith('-')),
      description: o.description,
      takesValue: o.required || o.optional,
      choices: o.argChoices ?? [],
    })),
    args: cmd.registeredArguments.map((a) => ({ name: a.name(), required: a.required, variadic: a.variadic })),
    commands: help
      .visibleCommands(cmd)
      .filter((c) => c.name() !== 'help')
      .map((c) => commandTree(c, [...path, c.name()])),
  }
}

/** Every command of the tree, depth first, the program itself included. */
export function allCommands(node: CommandNode): CommandNode[] {
  return [node, ...node.commands.flatMap(allCommands)]
}
