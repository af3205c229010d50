// Child process for the pool's cross-process tests (run with tsx):
//   list DIR                   print the pool's config and volumes as JSON
//   cycle DIR VID N TAG BARRIER   N times: start, write TAG at offset 0 (if still dirty), stop
//   lockloop DIR N LOG BARRIER    N times under one lock: append "enter PID", wait, append "exit PID"
// BARRIER (a directory) lets two children, each slow to start, begin their loops together.
//   crash DIR VID IMPORTVID TEMP   leave a crashed pool behind (and TEMP, a temp file without lock) and die by SIGKILL
//   killcreate DIR VID SIZE        createVolume of an origin, SIGKILLed after its files exist, before its record is final
import { appendFileSync, openSync, writeSync, closeSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { ReflinkPool, ReflinkVolume } from '../../ts/index'
import { Locks } from '../../ts/store/lock'
import { PoolFiles } from '../../ts/store/files'
import { lockFileName } from '../../ts/store/names'

const [cmd, dir, ...args] = process.argv.slice(2)

function writeIfPresent(path: string, text: string): void {
  let fd: number
  try {
    fd = openSync(path, 'r+')
  } catch {
    return // another process committed it meanwhile
  }
  writeSync(fd, Buffer.from(text), 0, undefined, 0)
  closeSync(fd)
}

/** Announce this process in `dir`, then wait until two processes have. */
async function barrier(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, String(process.pid)), '')
  while (readdirSync(dir).length < 2) await new Promise((r) => setTimeout(r, 5))
}

async function main() {
  const pool = await ReflinkPool.open({ dirPath: dir })
  if (cmd === 'list') {
    const volumes = []
    for (const v of await pool.listVolumes()) {
      volumes.push({ vid: v.vid, config: v.config, revisions: await v.revisions(), size: await v.size(), dirty: await v.isDirty() })
    }
    process.stdout.write(JSON.stringify({ config: pool.config, volumes, recovery: pool.recovery }))
  } else if (cmd === 'cycle') {
    const [vid, n, tag, at] = args
    const v = pool.getVolume(vid)
    await barrier(at)
    for (let i = 0; i < Number(n); i++) {
      const dirty = await v.start()
      writeIfPresent(dirty, `${tag}-${i}`)
      await v.stop()
    }
  } else if (cmd === 'lockloop') {
    const [n, log, at] = args
    const locks = new Locks(await PoolFiles.open(dir, false), join(dir, '.reflink-pool', 'locks'))
    await barrier(at)
    for (let i = 0; i < Number(n); i++) {
      await locks.with(lockFileName('appvms/lock/test'), async () => {
        appendFileSync(log, `enter ${process.pid}\n`)
        await new Promise((r) => setTimeout(r, 15))
        appendFileSync(log, `exit ${process.pid}\n`)
      })
      // Work between lock holds, as real callers have, so the other process gets its turns too.
      await new Promise((r) => setTimeout(r, 10))
    }
  } else if (cmd === 'crash') {
    const [vid, importVid, lostLockTemp] = args
    // A leftover whose lock file was lost (as after a power cut): only the dead session points at it.
    writeFileSync(lostLockTemp, 'temp whose lock was lost')
    const v = pool.getVolume(vid)
    const dirty = await v.start()
    writeIfPresent(dirty, 'crashed-while-running')
    const imp = await pool.getVolume(importVid).importData(1 << 20)
    writeIfPresent(imp, 'half-written import')
    // An operation in flight: its temp file exists and it holds the volume's lock.
    writeFileSync(dirty.replace(/-dirty\.img$/, '.img~deadbeef'), 'temp of a crashed commit')
    const locks = new Locks(await PoolFiles.open(dir, false), join(dir, '.reflink-pool', 'locks'))
    await locks.with(lockFileName(vid), async () => {
      process.kill(process.pid, 'SIGKILL')
      await new Promise(() => {})
    })
  } else if (cmd === 'killcreate') {
    const [vid, size] = args
    const createFiles = ReflinkVolume.prototype.createFiles
    ReflinkVolume.prototype.createFiles = async function (this: ReflinkVolume) {
      await createFiles.call(this)
      process.kill(process.pid, 'SIGKILL')
      await new Promise(() => {})
    }
    await pool.createVolume({ vid, name: vid.split('/').pop()!, size: Number(size), saveOnStop: true })
  } else {
    throw new Error(`unknown command ${cmd}`)
  }
  await pool.close()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
