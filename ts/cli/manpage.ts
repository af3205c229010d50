// The man page, reflink-pool(1), rendered as roff from the command definitions
// (command-tree.ts) at build time (scripts/man.mjs): the same commands,
// options and descriptions as --help, never written a second time.
import { allCommands, type CommandNode } from './command-tree'

/** roff text: backslashes, leading dots and quotes made literal. */
function esc(text: string): string {
  return text.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^([.'])/gm, '\\&$1')
}

function usage(node: CommandNode, program: string): string {
  const args = node.args.map((a) => (a.required ? `<${a.name}${a.variadic ? '...' : ''}>` : `[${a.name}${a.variadic ? '...' : ''}]`))
  return [program, ...node.path, node.commands.length ? '<command>' : '', node.options.length ? '[options]' : '', ...args].filter(Boolean).join(' ')
}

function optionList(node: CommandNode): string[] {
  return node.options.filter((o) => node.path.length === 0 || !o.names.includes('--help')).flatMap((o) => ['.TP', `.B ${esc(o.flags)}`, esc(o.description + (o.choices.length ? ` (one of: ${o.choices.join(', ')})` : ''))])
}

export function manPage(tree: CommandNode, o: { program: string; version: string; date: string; exitStatus: string }): string {
  const lines = [
    `.TH ${o.program.toUpperCase()} 1 "${o.date}" "${o.program} ${o.version}" "User Commands"`,
    '.SH NAME',
    `${o.program} \\- ${esc(tree.description)}`,
    '.SH SYNOPSIS',
    `.B ${esc(o.program)}`,
    '[global options] <command> [options] [arguments]',
    '.SH DESCRIPTION',
    esc(tree.description),
    'The pool directory is given by \\fB\\-\\-pool\\fR or \\fBREFLINK_POOL_DIR\\fR. Every command takes \\fB\\-\\-json\\fR and \\fB\\-\\-help\\fR.',
    '.SH GLOBAL OPTIONS',
    ...optionList(tree),
    '.SH COMMANDS',
  ]
  for (const node of allCommands(tree).slice(1)) {
    lines.push('.SS ' + esc(usage(node, o.program)), esc(node.description))
    if (node.names.length > 1) lines.push('.br', esc(`Alias: ${node.names.slice(1).join(', ')}.`))
    if (node.options.length) lines.push('.RS', ...optionList(node), '.RE')
  }
  lines.push(
    '.SH ENVIRONMENT',
    '.TP',
    '.B REFLINK_POOL_DIR',
    'The pool directory when \\fB\\-\\-pool\\fR is not given.',
    '.TP',
    '.B NO_COLOR, FORCE_COLOR',
    'Turn colour off, or force it.',
    '.SH EXIT STATUS',
    esc(o.exitStatus),
    '.SH SEE ALSO',
    `${esc(o.program)} completion bash|zsh|fish; the README and docs/design.md of the package.`,
  )
  return lines.join('\n') + '\n'
}
