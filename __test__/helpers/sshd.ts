// A real OpenSSH server for the tests that run replication over a link (docs/design.md §8):
// `sshd -D` with its own configuration on 127.0.0.1 and a free port, throw-away host and
// user keys, and `reflink-pool` on the session's PATH (a wrapper that runs this checkout's
// CLI as the other CLI tests do: compiled when dist/ is fresh, else through tsx), so a test can run `reflink-pool volume send ... | ssh ... reflink-pool volume
// receive ...` as an admin would.
//
// Why the directory is under /run and not /tmp: sshd's StrictModes refuses an
// authorized_keys file whose directory, or any directory above it, is writable by group or
// others, and /tmp is 1777. /run is 0755 root; the directory is 0700, its files 0600
// (the wrapper 0700). Needs root (sshd runs as root, the key logs in as root) and
// openssh-server (scripts/setup.sh installs it): `sshdUnavailable()` says why not.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import { cliNodeArgs } from './cli-run'

const SSHD = '/usr/sbin/sshd'

export interface Sshd {
  port: number
  /** The private key that logs in as root. */
  key: string
  /** `ssh` with the options that reach this server and trust only its host key; append the remote command. */
  ssh: string[]
  /** The same as one shell word list, for `sh -c` pipelines. */
  sshCommand: string
  /** A directory holding the `reflink-pool` wrapper (on the sessions' PATH; put it on a local one too). */
  bin: string
  stop(): Promise<void>
}

/** Why no sshd can be started here, or null when one can. */
export function sshdUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (sshd, and a key that logs in as root)'
  if (!existsSync(SSHD)) return `${SSHD} missing: install openssh-server (scripts/setup.sh does)`
  return null
}

/** A port that was free a moment ago on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/** Start sshd -D; resolves once it listens. */
export async function startSshd(): Promise<Sshd> {
  const why = sshdUnavailable()
  if (why) throw new Error(`cannot start sshd: ${why}`)
  // sshd's privilege separation directory; the package's service normally makes it.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 })
  const dir = mkdtempSync('/run/reflink-pool-sshd-')
  chmodSync(dir, 0o700)
  try {
    const hostKey = join(dir, 'host_key')
    const key = join(dir, 'id_ed25519')
    for (const [file, comment] of [[hostKey, 'host'], [key, 'user']]) {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `reflink-pool-test-${comment}`, '-f', file])
    }
    const authorized = join(dir, 'authorized_keys')
    writeFileSync(authorized, readFileSync(`${key}.pub`), { mode: 0o600 })
    const bin = join(dir, 'bin')
    mkdirSync(bin, { mode: 0o700 })
    writeFileSync(join(bin, 'reflink-pool'), `#!/bin/sh\nexec ${[process.execPath, ...cliNodeArgs()].map(quote).join(' ')} "$@"\n`, { mode: 0o700 })
    const port = await freePort()
    const config = join(dir, 'sshd_config')
    writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorized}`,
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes yes',
        'X11Forwarding no',
        'AllowTcpForwarding no',
        'PrintMotd no',
        `SetEnv PATH=${bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
        'LogLevel ERROR',
        '',
      ].join('\n'),
      { mode: 0o600 },
    )
    const knownHosts = join(dir, 'known_hosts')
    writeFileSync(knownHosts, `[127.0.0.1]:${port} ${readFileSync(`${hostKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`, { mode: 0o600 })
    const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] })
    await listening(child, port)
    const ssh = ['ssh', '-F', '/dev/null', '-p', String(port), '-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'LogLevel=ERROR', 'root@127.0.0.1']
    return {
      port,
      key,
      ssh,
      sshCommand: ssh.map(quote).join(' '),
      bin,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child.once('exit', r))
          child.kill('SIGTERM')
          await exited
        }
        rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
}

/** Resolve once a connection to `port` is accepted; reject with sshd's stderr when it exits first. */
function listening(child: ChildProcess, port: number): Promise<void> {
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d))
  return new Promise((resolve, reject) => {
    let done = false
    child.once('exit', (code) => {
      if (!done) reject(new Error(`sshd exited (${code}) before listening: ${stderr}`))
      done = true
    })
    const deadline = Date.now() + 10_000
    const probe = () => {
      if (done) return
      accepts(port).then((ok) => {
        if (done) return
        if (ok) {
          done = true
          resolve()
        } else if (Date.now() > deadline) {
          done = true
          child.kill('SIGTERM')
          reject(new Error(`sshd did not listen on 127.0.0.1:${port} within 10 s: ${stderr}`))
        } else setTimeout(probe, 50)
      })
    }
    probe()
  })
}

/** Whether 127.0.0.1:port accepts a connection. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}
