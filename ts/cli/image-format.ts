// Recognising disk images that are not raw. The pool stores raw images; a
// qcow2 (or vmdk, vhdx, vdi) file imported as raw would start a VM on its
// container header. The magic numbers are those qemu-img probes (block/*.c).
import { closeSync, constants, openSync, readSync } from 'node:fs'

interface Magic {
  /** qemu-img's name for the format (`-f`). */
  format: string
  offset: number
  bytes: Buffer
}

const MAGICS: Magic[] = [
  { format: 'qcow2', offset: 0, bytes: Buffer.from('QFI\xfb', 'latin1') }, // also qcow (v1): same magic
  { format: 'vmdk', offset: 0, bytes: Buffer.from('KDMV') }, // a sparse extent
  { format: 'vmdk', offset: 0, bytes: Buffer.from('# Disk DescriptorFile') },
  { format: 'vhdx', offset: 0, bytes: Buffer.from('vhdxfile') },
  { format: 'vdi', offset: 64, bytes: Buffer.from([0x7f, 0x10, 0xda, 0xbe]) }, // 0xbeda107f, little-endian
]

const HEADER_BYTES = Math.max(...MAGICS.map((m) => m.offset + m.bytes.length))

/** The container format whose header starts `header`, or null (raw, as far as we can tell). */
export function containerFormat(header: Buffer): string | null {
  return MAGICS.find((m) => header.subarray(m.offset, m.offset + m.bytes.length).equals(m.bytes))?.format ?? null
}

/** The container format of the regular file at `path` (its first bytes only). */
export function fileContainerFormat(path: string): string | null {
  // O_NONBLOCK: a FIFO swapped in after the caller's stat cannot hang us.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  try {
    const header = Buffer.alloc(HEADER_BYTES)
    const n = readSync(fd, header, 0, HEADER_BYTES, 0)
    return containerFormat(header.subarray(0, n))
  } finally {
    closeSync(fd)
  }
}
