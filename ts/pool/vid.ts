// Volume ids: `<prefix>/<vm>/<name>` (docs/design.md §2). A vid names files inside the
// pool directory, so everything that could leave it (`..`, absolute paths,
// extra components) or alias another volume's files (a name ending in an image
// suffix, `~` of temp names, `@` of revision names) is refused up front,
// before anything touches the disk.
import { RESERVED_ENDINGS } from './names'
import { poolError } from './fail'

export const VID_PREFIXES = ['appvms', 'vm-templates'] as const
export type VidPrefix = (typeof VID_PREFIXES)[number]

/** Longest vm or volume name: leaves room below NAME_MAX (255) for image suffixes, revisions and temp marks. */
export const MAX_COMPONENT_LENGTH = 128

// Letters, digits, `_`, `.`, `-`; not starting with `.` or `-` (hidden files, options).
const COMPONENT_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/

/** Why `component` is not a valid vm or volume name, or null when it is. */
export function componentProblem(component: string): string | null {
  if (component === '') return 'empty component'
  if (component === '.' || component === '..') return `'${component}' component`
  if (component.length > MAX_COMPONENT_LENGTH) return `component longer than ${MAX_COMPONENT_LENGTH} characters`
  if (!COMPONENT_RE.test(component)) {
    return `component '${component}' may contain only letters, digits, '_', '.', '-' and may not start with '.' or '-'`
  }
  const ending = RESERVED_ENDINGS.find((e) => component.endsWith(e))
  if (ending) return `component '${component}' ends in '${ending}', which the image file names use`
  return null
}

export interface ParsedVid {
  prefix: VidPrefix
  vm: string
  name: string
}

/** Parse and validate a vid; throws ERR_INVALID_VID. */
export function parseVid(vid: unknown): ParsedVid {
  const bad = (why: string): never => {
    throw poolError('ERR_INVALID_VID', `Invalid volume id ${JSON.stringify(vid)}: ${why}`, { vid: String(vid) })
  }
  if (typeof vid !== 'string') return bad('not a string')
  const parts = vid.split('/')
  if (parts.length !== 3) return bad("expected '<appvms|vm-templates>/<vm>/<name>'")
  const [prefix, vm, name] = parts
  if (!(VID_PREFIXES as readonly string[]).includes(prefix)) return bad(`prefix must be one of ${VID_PREFIXES.join(', ')}`)
  for (const c of [vm, name]) {
    const problem = componentProblem(c)
    if (problem) return bad(problem)
  }
  return { prefix: prefix as VidPrefix, vm, name }
}

/** Whether `vid` is valid (no throw): for names found on disk, which may have been planted. */
export function isValidVid(vid: unknown): boolean {
  try {
    parseVid(vid)
    return true
  } catch {
    return false
  }
}
