// Volume ids: `<prefix>/<vm>/<name>` (docs/design.md §2). A vid names files inside the
// pool directory, so everything that could leave it (`..`, absolute paths,
// extra components) or alias another volume's files (a name ending in an image
// suffix, `~` of temp names, `@` of revision names) is refused up front,
// before anything touches the disk.
import { RESERVED_ENDINGS, NAME_MAX, derivedNames } from './names'
import { poolError } from './fail'
import { quote } from '../util/quote'

/** The first component of every vid: VM volumes and template volumes. */
export const VID_PREFIXES = ['appvms', 'vm-templates'] as const
/** One of VID_PREFIXES. */
export type VidPrefix = (typeof VID_PREFIXES)[number]

// Letters, digits, `_`, `.`, `-`; not starting with `.` or `-` (hidden files, options).
const COMPONENT_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/

/** Why `component` is not a valid vm or volume name, or null when it is. */
export function componentProblem(component: string): string | null {
  if (component === '') return 'empty component'
  const shown = quote(component, 40)
  if (component === '.' || component === '..') return `${shown} component`
  if (!COMPONENT_RE.test(component)) {
    return `component ${shown} may contain only letters, digits, '_', '.', '-' and may not start with '.' or '-'`
  }
  const ending = RESERVED_ENDINGS.find((e) => component.endsWith(e))
  if (ending) return `component ${shown} ends in '${ending}', which the image file names use`
  return null
}

/** The three components of a vid. */
export interface ParsedVid {
  /** 'appvms' or 'vm-templates'. */
  prefix: VidPrefix
  /** The VM's name. */
  vm: string
  /** The volume's name. */
  name: string
}

/** Parse and validate a vid; throws ERR_INVALID_VID. */
export function parseVid(vid: unknown): ParsedVid {
  const bad = (why: string): never => {
    if (typeof vid !== 'string') throw poolError('ERR_INVALID_VID', `Invalid volume id of type ${vid === null ? 'null' : typeof vid}: ${why}`)
    throw poolError('ERR_INVALID_VID', `Invalid volume id ${quote(vid)}: ${why}`, { vid })
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
  // Every name the pool may make for it must fit a directory entry, or some
  // operation would fail with ENAMETOOLONG half way (after others succeeded).
  for (const { what, name: derived } of derivedNames(vid)) {
    const bytes = Buffer.byteLength(derived)
    if (bytes > NAME_MAX) return bad(`its ${what} name would be ${bytes} bytes, over the ${NAME_MAX}-byte limit of a file name; use shorter names`)
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
