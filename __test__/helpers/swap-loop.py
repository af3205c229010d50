#!/usr/bin/env python3
"""Swap two directory entries with renameat2(RENAME_EXCHANGE) in a tight loop.

Usage: swap-loop.py A B STOPFILE
Exchanges A and B (e.g. a VM directory and a symlink to a directory outside the
pool) until STOPFILE exists, then leaves A as it was at the start (an even
number of swaps) and prints the number of swaps done.
"""
import ctypes
import os
import sys

AT_FDCWD = -100
RENAME_EXCHANGE = 2

libc = ctypes.CDLL(None, use_errno=True)
renameat2 = libc.renameat2
renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]


def swap(a: bytes, b: bytes) -> None:
    if renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def main() -> None:
    a, b, stop = (os.fsencode(x) for x in sys.argv[1:4])
    swaps = 0
    print("READY", flush=True)
    while not os.path.exists(stop):
        swap(a, b)
        swaps += 1
    if swaps % 2:
        swap(a, b)
        swaps += 1
    print(swaps, flush=True)


main()
