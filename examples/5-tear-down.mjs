// Tear the fleet down in one batch: every clone and the template, running ones too
// (force). One barrier for the lot, and all or nothing: a snapshot volume made from
// the template elsewhere would refuse the batch, naming it (recursive takes it too).
import { ReflinkPool } from 'reflink-pool'

const pool = await ReflinkPool.open({ dirPath: process.env.REFLINK_POOL_DIR ?? '/var/lib/vms' })
try {
  const clones = (await pool.listVolumes()).filter((v) => v.vid.startsWith('appvms/web-'))
  const { removed } = await pool.removeVolumes([...clones, 'vm-templates/debian/root'], { force: true })
  console.log('removed', removed.length, 'volumes; left:', (await pool.listVolumes()).length)
} finally {
  await pool.close()
}
