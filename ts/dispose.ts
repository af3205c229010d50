// `await using pool = await ReflinkPool.open(...)` needs Symbol.asyncDispose,
// which Node has since 20.4 (and 18.18). On an earlier 20.x it is defined here,
// only when missing, as the same registered symbol Node itself uses, so that
// TypeScript's and Node's disposal helpers find it.
export const asyncDispose: typeof Symbol.asyncDispose =
  typeof Symbol.asyncDispose === 'symbol'
    ? Symbol.asyncDispose
    : (Object.defineProperty(Symbol, 'asyncDispose', { value: Symbol.for('nodejs.asyncDispose') }).asyncDispose as typeof Symbol.asyncDispose)
