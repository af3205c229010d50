// Start ten VMs in one batch, let them write, stop them (commit) in one batch.
import { open } from 'node:fs/promises'
import { ReflinkPool } from 'reflink-pool'

const pool = await ReflinkPool.open({ dirPath: process.env.REFLINK_POOL_DIR ?? '/var/lib/vms' })
try {
  const vids = Array.from({ length: 10 }, (_, i) => `appvms/web-${i + 1}/root`)
  const images = await pool.startVolumes(vids) // the dirty images, in order: hand each to its VM
  for (const image of images) {
    const disk = await open(image, 'r+') // here, this program plays the VMs
    await disk.write('written by the VM', 0)
    await disk.close()
  }
  await pool.stopVolumes(vids) // commit: the state before the run becomes a revision
  const vm = await pool.loadVolume(vids[0])
  console.log(vm.vid, await vm.revisions()) // appvms/web-1/root { '2': '2026-12-06T06:30:00Z' }
} finally {
  await pool.close()
}
