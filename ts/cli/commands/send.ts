// `reflink-pool volume send` and `volume receive`: a committed state as a send stream
// (docs/design.md §8) on stdout, and a stream from stdin committed as a new revision.
// ssh is the transport between hosts; nothing here listens on a network.
import { fstatSync } from 'node:fs'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Command } from 'commander'
import { examples, revisionArg } from '../args'
import { humanSize, table } from '../format'
import { globalOptions, Output } from '../output'
import { withPool } from '../pool-access'
import { interrupt } from '../interrupt'
import { UsageError } from '../errors'
import { reword } from '../messages'

export function registerSendCommands(volume: Command): void {
  volume
    .command('send <vid>')
    .description('write the committed state of a save-on-stop volume as a send stream to stdout (only the changes since --since or --base)')
    .option('--since <state>', 'the state the receiver holds (its `volume state` id): send only what changed since it')
    .option('--base <rev>', 'a revision of this volume the receiver holds: send only what changed since it', revisionArg)
    .option('--resume <token>', 'continue a cut receive: send only the rest (the token comes from `volume resume-token VID` on the receiving host)')
    .option('--compress', 'compress the data records with zstd (the receiver detects it)')
    .option('--key-file <file>', 'authenticate the stream with the key in this file (32 raw bytes or 64 hex digits, mode 600); the receiver needs the same file')
    .addHelpText(
      'after',
      examples(
        'reflink-pool volume send vm-templates/debian/root > full.stream',
        'reflink-pool volume send vm-templates/debian/root --since "$(ssh host reflink-pool volume state vm-templates/debian/root)" | ssh host reflink-pool volume receive vm-templates/debian/root',
        'reflink-pool volume send vm-templates/debian/root --base 3 | ssh host reflink-pool volume receive vm-templates/debian/root',
        'reflink-pool volume send vm-templates/debian/root --compress --key-file ~/.config/reflink-pool/stream.key | ssh host reflink-pool volume receive vm-templates/debian/root --key-file stream.key',
      ),
    )
    .action(async (vid: string, o: { base?: number; since?: string; resume?: string; compress?: boolean; keyFile?: string }, cmd: Command) => {
      const g = globalOptions(cmd)
      if (process.stdout.isTTY) throw new UsageError('refusing to write a send stream to a terminal: redirect stdout or pipe it')
      // stdout carries the stream: the result line goes to stderr.
      const out = new Output(g.json, process.stderr)
      await withPool(g, async (pool) => {
        const v = await pool.getVolume(vid)
        const total = await v.size()
        const bar = out.progress({ label: `send ${vid}`, unit: 'bytes', total })
        let bytes = 0
        const counter = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            bytes += chunk.length
            cb(null, chunk)
          },
        })
        process.stdout.on('error', (err: NodeJS.ErrnoException) => {
          // The reader went away (`| head`, a closed ssh): not our failure.
          if (err.code === 'EPIPE') process.exit(0)
        })
        const started = performance.now()
        try {
          const from = { ...(o.base !== undefined && { base: o.base }), ...(o.since !== undefined && { since: o.since }) }
          const stream = v.send({
            ...from,
            ...(o.resume !== undefined && { resume: o.resume }),
            ...(o.keyFile !== undefined && { keyFile: o.keyFile }),
            compress: o.compress === true,
            signal: interrupt.signal,
            onProgress: (done) => bar.update(done, total),
          })
          await pipeline(stream, counter, process.stdout, { signal: interrupt.signal, end: false })
        } finally {
          bar.done()
        }
        const seconds = (performance.now() - started) / 1000
        const since = o.base ? ` (changes since revision ${o.base})` : o.since ? ` (changes since state ${o.since})` : ''
        out.result({ vid, base: o.base ?? null, since: o.since ?? null, bytes, seconds }, () => `Sent ${vid}${since}: ${humanSize(bytes)} in ${seconds.toFixed(2)} s.`)
      })
    })

  volume
    .command('state <vid>')
    .description('print the id of the committed state of a save-on-stop volume (what send --since takes on the sending host)')
    .addHelpText('after', examples('reflink-pool volume state vm-templates/debian/root', 'reflink-pool volume state vm-templates/debian/root --json'))
    .action(async (vid: string, _o: unknown, cmd: Command) => {
      const g = globalOptions(cmd)
      await withPool(g, async (pool) => {
        const state = await (await pool.getVolume(vid)).state()
        // The plain form is the id alone: `--since "$(ssh host reflink-pool volume state VID)"`.
        new Output(g.json).result({ vid, ...state }, () => state.id)
      })
    })

  volume
    .command('bases <vid>')
    .description('list the kept bases of a volume: states sent whole, kept for the next send --since whatever pruning does, until a newer state is sent')
    .addHelpText('after', examples('reflink-pool volume bases vm-templates/debian/root', 'reflink-pool volume bases vm-templates/debian/root --json'))
    .action(async (vid: string, _o: unknown, cmd: Command) => {
      const g = globalOptions(cmd)
      await withPool(g, async (pool) => {
        const bases = await (await pool.getVolume(vid)).bases()
        new Output(g.json).result({ vid, bases }, () =>
          bases.length
            ? table(bases, [
                { header: 'STATE', value: (b) => b.id },
                { header: 'SENT (UTC)', value: (b) => b.time.slice(0, 19) },
                { header: 'SIZE', value: (b) => humanSize(b.size), align: 'right' },
              ])
            : `No kept bases of ${vid}.`,
        )
      })
    })

  volume
    .command('forget-base <vid> <state>')
    .description('drop the kept base of a state: a send --since it is then a full send, unless a revision still holds it')
    .addHelpText('after', examples('reflink-pool volume forget-base vm-templates/debian/root 4f0c2a9e1b7d3c5a6e8f0a1b2c3d4e5f'))
    .action(async (vid: string, state: string, _o: unknown, cmd: Command) => {
      const g = globalOptions(cmd)
      await withPool(g, async (pool) => {
        await (await pool.getVolume(vid)).forgetBase(state)
        new Output(g.json).result({ vid, forgotten: state }, () => `Dropped the kept base ${state} of ${vid}.`)
      })
    })

  volume
    .command('resume-token <vid>')
    .description('print the token that resumes the receive cut off into this volume (give it to `volume send --resume` on the sending host)')
    .action(async (vid: string, _o: unknown, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = new Output(g.json)
      await withPool(g, async (pool) => {
        const token = await pool.getVolume(vid).resumeToken()
        out.result({ vid, token }, () => token)
      })
    })

  volume
    .command('receive <vid>')
    .description('apply a send stream from stdin to a stopped save-on-stop volume and commit it as a new revision; a full stream creates the volume when the pool lacks it (size and kind from the stream)')
    .option('--key-file <file>', 'accept only a stream authenticated with the key in this file (mode 600); a keyed stream needs it')
    .option('--like <vid>', 'apply a full stream over a clone of this volume (e.g. an older version of the template): only the blocks that differ are written and the rest stays shared')
    .option('--abort', 'drop the partial receive kept for a resume (reads no stream)')
    .addHelpText(
      'after',
      examples(
        'ssh host reflink-pool volume send vm-templates/debian/root --base 3 | reflink-pool volume receive vm-templates/debian/root',
        'ssh host reflink-pool volume send vm-templates/debian/root --resume "$(reflink-pool volume resume-token vm-templates/debian/root)" | reflink-pool volume receive vm-templates/debian/root',
      ),
    )
    .action(async (vid: string, o: { keyFile?: string; like?: string; abort?: boolean }, cmd: Command) => {
      const g = globalOptions(cmd)
      if (o.abort) {
        const out = new Output(g.json)
        await withPool(g, async (pool) => {
          const dropped = await pool.getVolume(vid).abortReceive()
          out.result({ vid, dropped }, () => (dropped ? `Dropped the partial receive of ${vid}.` : `${vid} holds no partial receive.`))
        })
        return
      }
      if (process.stdin.isTTY) throw new UsageError('refusing to read a send stream from a terminal: pipe one into stdin')
      // Node reads a directory on stdin as an empty stream: say what it is.
      if (fstatSync(0).isDirectory()) throw new UsageError('stdin is a directory: redirect a send stream file into it or pipe one')
      const out = new Output(g.json)
      await withPool(g, async (pool) => {
        let total = 0
        const bar = out.progress({ label: `receive ${vid}`, unit: 'bytes' })
        const started = performance.now()
        let report
        try {
          report = await pool.receiveVolume(vid, process.stdin, {
            ...(o.keyFile !== undefined ? { keyFile: o.keyFile } : {}),
            ...(o.like !== undefined ? { like: o.like } : {}),
            signal: interrupt.signal,
            onProgress: (done, size) => {
              total = size
              bar.update(done, total)
            },
          })
        } catch (err) {
          throw reword(err, { command: 'receive', vid })
        } finally {
          bar.done()
        }
        const seconds = (performance.now() - started) / 1000
        out.result({ vid, ...report, seconds }, () =>
          `Received state ${report.id} into ${report.created ? 'the new volume ' : ''}${vid}${report.baseId ? ` (changes since ${report.baseId})` : report.like ? ` (full, over ${report.like})` : ' (full)'}: ${humanSize(report.size)} image in ${seconds.toFixed(2)} s.`,
        )
      })
    })
}
