//! Thin syscall wrappers (the only module with `unsafe`): FICLONE, LOOP_SET_CAPACITY, FIEMAP.
//! CONTRACT (implementation pending).
