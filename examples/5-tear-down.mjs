// Tear the fleet down: every clone, then the template.
import { ReflinkPool } from 'reflink-pool'

const pool = await ReflinkPool.open({ dirPath: process.env.REFLINK_POOL_DIR ?? '/var/lib/vms' })
try {
  const clones = (await pool.listVolumes()).filter((v) => v.vid.startsWith('appvms/web-'))
  for (const v of clones) await v.remove()
  await (await pool.loadVolume('vm-templates/debian/root')).remove()
  console.log('removed', clones.length + 1, 'volumes; left:', (await pool.listVolumes()).length)
} finally {
  await pool.close()
}
