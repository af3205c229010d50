// Undo the run of one VM: the newest revision becomes its committed state again.
import { isReflinkPoolError, ReflinkPool } from 'reflink-pool'

const pool = await ReflinkPool.open({ dirPath: process.env.REFLINK_POOL_DIR ?? '/var/lib/vms' })
try {
  const vm = await pool.loadVolume('appvms/web-1/root')
  try {
    await vm.revert()
  } catch (e) {
    if (isReflinkPoolError(e, 'ERR_VOLUME_DIRTY')) console.error(`${vm.vid} is running: stop it first`)
    throw e
  }
  console.log('reverted', vm.vid, await vm.revisions())
} finally {
  await pool.close()
}
