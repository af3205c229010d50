// A template from a raw image, then 100 VMs cloned from it in one batch.
import { ReflinkPool } from 'reflink-pool'

const pool = await ReflinkPool.open({ dirPath: process.env.REFLINK_POOL_DIR ?? '/var/lib/vms' })
try {
  const template = await pool.createVolume({ vid: 'vm-templates/debian/root', name: 'root', saveOnStop: true })
  const imported = await template.importFile('debian.raw') // a reflink on the pool's filesystem, else a sparse copy
  console.log('template', imported.method) // template reflink
  const vids = Array.from({ length: 100 }, (_, i) => `appvms/web-${i + 1}/root`)
  // One batch: a reflink per clone, one flush for all of them, all or nothing.
  const report = await pool.cloneVolumes(template, vids)
  console.log('cloned', report.volumes.length, report.methods) // cloned 100 { reflink: 100 }
} finally {
  await pool.close()
}
