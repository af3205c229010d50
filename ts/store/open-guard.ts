// After `pool.close()`, every call on the pool or on one of its volumes is
// refused with ERR_POOL_CLOSED, before its arguments are read: an async call
// rejects, a sync one throws (docs/design.md §3). One guard, wrapped around the
// listed public methods of a class once, at load; the lists are checked
// against the classes' public methods by the compiler (see `Unguarded`), so a
// new method cannot be forgotten. Internal steps are never wrapped: an
// operation that was running when close() began still finishes.
import { poolError } from './fail'

/** The public method names of T. */
export type Methods<T> = { [K in keyof T]: T[K] extends (...args: never[]) => unknown ? K : never }[keyof T] & string

/** Public methods of T that are neither guarded nor exempt: must be `never`. */
export type Unguarded<T, Guarded extends readonly string[], Exempt extends string> = Exclude<Methods<T>, Guarded[number] | Exempt>

/** ERR_POOL_CLOSED naming the pool. */
export function poolClosedError(poolName: string): Error {
  return poolError('ERR_POOL_CLOSED', `Pool ${poolName} is closed`)
}

/**
 * Wrap `methods` of `cls` so that each first asks `closedPool(this)` for the
 * name of its closed pool (null while open) and refuses when there is one.
 */
export function guardWhileOpen<T extends object>(cls: { prototype: T }, methods: readonly (Methods<T>)[], closedPool: (self: T) => string | null): void {
  const proto = cls.prototype as Record<string, unknown>
  for (const name of methods) {
    const fn = proto[name] as (...args: unknown[]) => unknown
    const async = fn.constructor.name === 'AsyncFunction'
    proto[name] = {
      [name](this: T, ...args: unknown[]) {
        const pool = closedPool(this)
        if (pool !== null) {
          const err = poolClosedError(pool)
          if (async) return Promise.reject(err)
          throw err
        }
        return fn.apply(this, args)
      },
    }[name]
  }
}
