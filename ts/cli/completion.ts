// Shell completion: `reflink-pool completion bash|zsh|fish` prints a small
// script that asks the hidden `reflink-pool __complete WORD...` for the
// candidates of the word under the cursor (the way cobra-based tools such as
// kubectl do), so the candidates come from the command definitions themselves
// (command-tree.ts) and the pool's vids are always current.
import { readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { CommandNode, OptionNode } from './command-tree'

export const SHELLS = ['bash', 'zsh', 'fish'] as const
export type Shell = (typeof SHELLS)[number]

/**
 * Candidates for the last of `words` (the words after the program name; the
 * last is the one being completed, possibly empty). Empty: let the shell
 * complete file names.
 */
export function complete(tree: CommandNode, words: string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const current = words[words.length - 1] ?? ''
  let node = tree
  let positional = 0
  let pool = env.REFLINK_POOL_DIR
  let pending: OptionNode | null = null
  for (const word of words.slice(0, -1)) {
    if (pending) {
      if (pending.names.includes('--pool')) pool = word
      pending = null
      continue
    }
    if (word.startsWith('-')) {
      const [name, inline] = word.split('=', 2)
      const option = optionsOf(tree, node).find((o) => o.names.includes(name))
      if (option?.takesValue && inline === undefined) pending = option
      if (option?.names.includes('--pool') && inline !== undefined) pool = inline
      continue
    }
    const sub = node.commands.find((c) => c.names.includes(word))
    if (sub) node = sub
    else positional++
  }
  const pick = (values: string[]) => values.filter((v) => v.startsWith(current))
  if (pending) {
    if (pending.choices.length) return pick(pending.choices)
    return /<vid>/.test(pending.flags) ? pick(poolVids(pool)) : []
  }
  if (current.startsWith('-')) return pick(optionsOf(tree, node).flatMap((o) => o.names.filter((n) => n.startsWith('--'))))
  if (node.commands.length) return pick(node.commands.map((c) => c.names[0]))
  const arg = node.args[Math.min(positional, node.args.length - 1)]
  return arg && /vid|source|template/.test(arg.name) ? pick(poolVids(pool)) : []
}

/** A command's own options and the program's (global) ones. */
function optionsOf(tree: CommandNode, node: CommandNode): OptionNode[] {
  return node === tree ? tree.options : [...node.options, ...tree.options]
}

/**
 * The vids of the pool, from the names of its record files: read-only and
 * without opening the pool (an open may recover, which writes). Nothing when
 * there is no pool or it cannot be read.
 */
export function poolVids(dir: string | undefined): string[] {
  if (!dir) return []
  const { parseMetaName } = require('../store/names') as typeof import('../store/names')
  const { isValidVid } = require('../store/vid') as typeof import('../store/vid')
  try {
    // Only valid vids: a planted record name with control characters must not reach the terminal.
    return readdirSync(join(resolve(dir), '.reflink-pool', 'volumes'))
      .map((name) => parseMetaName(name))
      .flatMap((m) => (m?.kind === 'record' && isValidVid(m.vid) ? [m.vid] : []))
      .sort()
  } catch {
    return []
  }
}

/** The script that `completion SHELL` prints. */
export function completionScript(shell: Shell, program: string): string {
  const fn = `_${program.replace(/[^A-Za-z0-9]/g, '_')}`
  switch (shell) {
    case 'bash':
      return `# ${program} completion for bash: source it, or put it in /etc/bash_completion.d/${program}
${fn}() {
  local IFS=$'\\n'
  local candidates
  candidates=($(${program} __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
  if [ \${#candidates[@]} -eq 0 ]; then
    COMPREPLY=($(compgen -f -- "\${COMP_WORDS[COMP_CWORD]}"))
  else
    COMPREPLY=("\${candidates[@]}")
  fi
}
complete -o filenames -F ${fn} ${program}
`
    case 'zsh':
      return `#compdef ${program}
# ${program} completion for zsh: put it in a directory of $fpath as _${program}
${fn}() {
  local -a candidates
  candidates=("\${(@f)$(${program} __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  candidates=(\${candidates:#})
  if (( \${#candidates} )); then
    compadd -Q -- "\${candidates[@]}"
  else
    _files
  fi
}
compdef ${fn} ${program}
`
    case 'fish':
      return `# ${program} completion for fish: put it in ~/.config/fish/completions/${program}.fish
function __${fn.slice(1)}_complete
  set -l words (commandline -opc) (commandline -ct)
  ${program} __complete -- $words[2..-1] 2>/dev/null
end
complete -c ${program} -a '(__${fn.slice(1)}_complete)'
`
  }
}
