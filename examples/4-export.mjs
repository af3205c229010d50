// Export a VM's committed data as a raw image (holes read as zeros, never from disk).
import { createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { ReflinkPool } from 'reflink-pool'

const pool = await ReflinkPool.open({ dirPath: process.env.REFLINK_POOL_DIR ?? '/var/lib/vms' })
try {
  const vm = await pool.loadVolume('appvms/web-1/root')
  await pipeline(vm.exportStream(), createWriteStream('web-1.raw'), { signal: AbortSignal.timeout(60_000) })
  console.log('exported', vm.vid, 'to web-1.raw')
} finally {
  await pool.close()
}
