// Compiled by tsc in __test__/api-types.test.ts (and by `npm run lint`): the
// error codes are a closed union, so a misspelt code does not compile.
import { isReflinkPoolError, ReflinkPoolError, type ErrorCode } from '../../ts/index'

export function classify(e: unknown): string {
  if (isReflinkPoolError(e, 'ERR_UNKNOWN_VOLUME')) return 'unknown volume'
  if (isReflinkPoolError(e, 'ENOSPC')) return 'disk full'
  // @ts-expect-error a typo in a library code is a compile error
  if (isReflinkPoolError(e, 'ERR_UNKNWON_VOLUME')) return 'never'
  // @ts-expect-error so is one in an errno name
  if (isReflinkPoolError(e, 'ENOSPACE')) return 'never'
  if (e instanceof ReflinkPoolError) {
    const code: ErrorCode = e.code
    // @ts-expect-error code is the union, not any string
    const wrong: 'ERR_X' = e.code
    return `${code}${String(wrong)}`
  }
  return 'other'
}
