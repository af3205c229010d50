// reflink-pool: the package entry. Public functions are async and reject with
// ReflinkPoolError (Node-shaped: code, errno, syscall, path, dest).

// Native file primitives
export { copyFile, COPY_METHODS, type CopyFileOptions, type CopyResult, type CopyMethod, type ReflinkMode, type SparseMode } from './copy'
export { createSparseFile, resizeFile } from './files'
export { updateLoopDevSizes } from './loopdev'
export { isReflinkSupported } from './probe'
export { fileUsage, type FileUsage } from './usage'
export { setCopyConcurrency } from './limiter'

// Errors
export {
  ERROR_CODES,
  ReflinkPoolError,
  AbortError,
  isReflinkPoolError,
  type ErrorCode,
  type LibraryErrorCode,
  type ErrnoCode,
  type ErrorDetails,
} from './errors'

// Pool and volume policy (docs/design.md §3)
export * from './pool/index'
