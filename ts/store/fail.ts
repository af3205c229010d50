// The one place the pool layer builds its errors. Codes come from the shared
// table in ts/errors.ts; this only attaches the pool's context (the vid).
import { libraryError, type ErrorDetails, type LibraryErrorCode, type ReflinkPoolError } from '../errors'

export interface PoolErrorProps extends ErrorDetails {
  vid?: string
}

export function poolError(code: LibraryErrorCode, detail: string, props: PoolErrorProps = {}): ReflinkPoolError {
  const { vid, ...details } = props
  const err = libraryError(code, detail, details)
  if (vid !== undefined) Object.defineProperty(err, 'vid', { value: vid, enumerable: true })
  return err
}

/** True when `e` is an error with one of `codes` (errno names or library codes). */
export function hasCode(e: unknown, ...codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes((e as { code?: string }).code ?? '')
}
