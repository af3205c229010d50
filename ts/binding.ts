// Loads the generated napi-rs binding (`native/index.js`, never hand-edited).
// Only this module touches the loader, so a better "missing platform package"
// error can be added here without touching the rest. The binding itself is not
// public API: its functions resolve with outcome objects (errors as data) that
// `ts/outcome.ts` unwraps.
import type * as Native from '../native/index.js'
import { nativeLoadError } from './platform-package'

export type { NativeError, NativeSendHeader } from '../native/index.js'

function load(): typeof Native {
  // From ts/ (tsx) and from dist/ alike, the binding is one directory up.
  try {
    // require() inside a function so a load failure can be caught and explained.
    return require('../native/index.js') as typeof Native
  } catch (err) {
    throw nativeLoadError(err) // names the missing platform package (ts/platform-package.ts)
  }
}

export const native: typeof Native = load()
