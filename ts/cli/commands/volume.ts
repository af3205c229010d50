// Volume commands: `reflink-pool volume <create|adopt|config|list|info|start|
// stop|revert|revisions|resize|import|export|remove|verify|send|receive>`.
import { Command, Option } from 'commander'
import { examples, intArg, revisionArg, sizeArg, sizeHelp } from '../args'
import { humanSize, keyValues, pickColumns, scriptedRows, table, terminalWidth } from '../format'
import { naturalCompare } from '../../util/natural-order'
import { globMatcher, GlobSyntaxError } from '../../util/glob'
import { globalOptions, Output, type GlobalOptions } from '../output'
import { withPool, type Pool, type Volume } from '../pool-access'
import { FOOTPRINT_KINDS, hasState, STATE_FILTERS, volumeColumns, volumeJson, volumeJsonRows, volumeState, volumeUsage, type VolumeJson } from '../volume-view'
import type { VolumeFootprint } from '../../pool'
import { VOLUME_KINDS, kindFlags, type VolumeKind } from '../../store/kind'
import { exportVolume, importVolume, openImportSource } from '../transfer'
import { registerSendCommands } from './send'
import { CLI_CODES, CliError, UsageError } from '../errors'
import { interrupt } from '../interrupt'
import { beforeStop, stopLine, stopOutcome } from '../stop-report'
import { refuse, reword, type FailureContext } from '../messages'
import { selectVids, singleVolume, someVids, volumesProgress, withMatch } from '../fleet'


/**
 * Run `fn` on one volume of the pool given on the command line. A library
 * error is re-worded for the command line (messages.ts); `context` adds what
 * the command knows (sizes of a shrink).
 */
function onVolume<T>(
  cmd: Command,
  vid: string,
  fn: (v: Volume, pool: Pool, g: GlobalOptions, context: FailureContext) => Promise<T>,
): Promise<T> {
  const g = globalOptions(cmd)
  const context: FailureContext = { command: cmd.name(), vid }
  return withPool(g, async (pool) => {
    const v = await pool.loadVolume(vid)
    context.kind = v.kind
    return fn(v, pool, g, context)
  }).catch((err: unknown) => {
    throw reword(err, context)
  })
}

interface MatchOptions {
  match: string[]
}

/**
 * Run `fn` on the volumes the command line selects (vids and `--match`), in one
 * process; a library error is re-worded for the command line with the vid it names.
 */
function onVolumes(
  cmd: Command,
  vids: string[],
  o: MatchOptions,
  fn: (list: string[], pool: Pool, out: Output) => Promise<void>,
): Promise<void> {
  const g = globalOptions(cmd)
  return withPool(g, async (pool) => fn(await selectVids(pool, vids, o.match), pool, new Output(g.json))).catch((err: unknown) => {
    const vid = (err as { vid?: unknown } | null)?.vid
    throw reword(err, { command: cmd.name(), vid: typeof vid === 'string' ? vid : vids.length === 1 ? vids[0] : undefined })
  })
}

/** Refuse to stop a volume whose dirty image a loop device still uses (a VM may be writing). */
async function refuseInUse(v: Volume, discard: boolean): Promise<void> {
  // Loaded here, not at the top: --help must not load the native binding.
  const { loopDevicesBackedBy } = require('../../loopdev') as typeof import('../../loopdev')
  const devices = await loopDevicesBackedBy(v.path)
  if (devices.length) {
    throw new CliError(
      `refusing to stop ${v.vid}: its dirty image still backs ${devices.join(', ')}, so a VM may still be writing to it ` +
        `(the ${discard ? 'discard' : 'commit'} would lose those writes); detach it first (losetup -d ${devices[0]}) or add --force`,
      CLI_CODES.volumeInUse,
    )
  }
}

/** A --match pattern as a predicate over vids; a malformed one is a usage error. */
function vidMatcher(pattern: string): (vid: string) => boolean {
  try {
    return globMatcher(pattern)
  } catch (err) {
    if (err instanceof GlobSyntaxError) throw new UsageError(`--match: ${err.message}`)
    throw err
  }
}

interface KindOptions {
  kind: VolumeKind
  source?: string
  readOnly?: boolean
  revisionsToKeep?: number
}

/** The library's volume options from `volume create`/`adopt` options. */
function volumeOptions(vid: string, o: KindOptions) {
  return {
    vid,
    rw: o.readOnly !== true,
    kind: o.kind,
    ...(o.source !== undefined ? { source: o.source } : {}),
    ...(o.revisionsToKeep !== undefined ? { revisionsToKeep: o.revisionsToKeep } : {}),
  }
}

function show(g: GlobalOptions, v: VolumeJson, extra: Array<[string, string]> = []): void {
  new Output(g.json).result(v, () => volumeLines(v, extra))
}

function volumeLines(v: VolumeJson, extra: Array<[string, string]> = []): string {
  return keyValues([
    ['vid', v.vid],
    ['kind', `${v.kind} (saveOnStop ${v.saveOnStop}, snapOnStart ${v.snapOnStart})`],
    ['access', v.rw ? 'read-write' : 'read-only'],
    ['size', `${humanSize(v.size)} (${v.size} bytes${v.snapOnStart && !v.running ? `, its source's` : ''})`],
    ['state', v.running ? `${volumeState(v)}: its dirty image is in use` : 'stopped'],
    ...(v.source ? ([['source', `${v.source}${v.outdated ? ' (outdated: source changed since start)' : ''}`]] as Array<[string, string]>) : []),
    ['revisions to keep', String(v.revisionsToKeep)],
    ['image while running', v.path],
    ...extra,
  ])
}

/** "clean 200 MiB, precache 200 MiB, 1 revision 0 B: 400 MiB (400 MiB shared)". */
function footprintLine(f: VolumeFootprint): string {
  const parts = FOOTPRINT_KINDS.filter((k) => f.byKind[k].files > 0).map((k) => {
    const u = f.byKind[k]
    const name = k === 'revisions' || k === 'bases' ? `${u.files} ${k === 'bases' ? 'kept base' : 'revision'}${u.files === 1 ? '' : 's'}` : k
    return `${name} ${humanSize(u.allocated)}`
  })
  return `${parts.join(', ') || 'none'}: ${humanSize(f.total.allocated)} allocated (${humanSize(f.total.shared)} shared, ${humanSize(f.total.exclusive)} exclusive)`
}

export function registerVolumeCommands(program: Command): void {
  const volume = program
    .command('volume')
    .description('create, list, start, stop, revert, resize, import, export and remove volumes')
    .addHelpText('after', examples('reflink-pool volume list', 'reflink-pool volume create appvms/work/private --size 2G', 'reflink-pool volume --help'))

  volume
    .command('create <vid>')
    .description('create a volume (vid: appvms/<vm>/<name> or vm-templates/<vm>/<name>)')
    .addOption(new Option('--kind <kind>', 'origin (save on stop), snapshot (of --source, discarded on stop), volatile, origin-snapshot').choices(VOLUME_KINDS).default('origin'))
    .option('--size <size>', 'nominal size, e.g. 10G (10 GiB) or 10GB (10^9 bytes)', sizeArg, 0)
    .addHelpText('after', sizeHelp())
    .option('--source <vid>', 'source volume of a snapshot kind')
    .option('--ro, --read-only', 'the VM sees the volume read-only')
    .option('--revisions-to-keep <n>', 'revisions kept (default: the pool setting)', intArg(-1))
    .addHelpText(
      'after',
      examples(
        'reflink-pool volume create vm-templates/debian/root --size 10G',
        'reflink-pool volume create appvms/web/root --kind snapshot --source vm-templates/debian/root',
        'reflink-pool volume create appvms/web/volatile --kind volatile --size 1G --json',
      ),
    )
    .action(async (vid: string, o: KindOptions & { size: number }, cmd: Command) => {
      const g = globalOptions(cmd)
      const snapshotKind = kindFlags(o.kind).snapOnStart
      if (snapshotKind && o.source === undefined) throw new UsageError(`--kind ${o.kind} needs --source <vid>: the volume it starts from`)
      if (!snapshotKind && o.source !== undefined) throw new UsageError(`--source goes with --kind snapshot or origin-snapshot, not ${o.kind}`)
      await withPool(g, async (pool) => {
        const v = await pool.createVolume({ ...volumeOptions(vid, o), size: o.size })
        show(g, await volumeJson(v))
      })
    })

  volume
    .command('adopt <vid>')
    .description('register existing images of a volume (e.g. of a Qubes file-reflink pool) without changing them')
    .addOption(new Option('--kind <kind>', 'origin needs <vid>.img (or its dirty image); the other kinds own no image while stopped').choices(VOLUME_KINDS).default('origin'))
    .option('--source <vid>', 'source volume of a snapshot kind')
    .option('--ro, --read-only', 'the VM sees the volume read-only')
    .option('--revisions-to-keep <n>', 'revisions kept (default: the pool setting)', intArg(-1))
    .addHelpText('after', examples('reflink-pool volume adopt appvms/work/private', 'reflink-pool --pool /var/lib/qubes init --adopt   # every image set at once'))
    .action(async (vid: string, o: KindOptions, cmd: Command) => {
      const g = globalOptions(cmd)
      await withPool(g, async (pool) => {
        const v = await pool.adoptVolume(volumeOptions(vid, o))
        show(g, await volumeJson(v))
      })
    })

  volume
    .command('config <vid>')
    .description("change a volume's own settings: revisions kept, read-write or read-only (like qvm-volume config)")
    .option('--revisions-to-keep <n>', 'revisions kept from the next commit on; -1 disables snapshots', intArg(-1))
    .addOption(new Option('--rw, --read-write', 'the VM sees the volume read-write').conflicts('readOnly'))
    .addOption(new Option('--ro, --read-only', 'the VM sees the volume read-only').conflicts('readWrite'))
    .addHelpText('after', examples('reflink-pool volume config appvms/web/private --revisions-to-keep 3', 'reflink-pool volume config appvms/web/private --ro'))
    .action((vid: string, o: { revisionsToKeep?: number; readWrite?: boolean; readOnly?: boolean }, cmd: Command) =>
      onVolume(cmd, vid, async (v, _pool, g) => {
        await v.setConfig({
          ...(o.revisionsToKeep !== undefined ? { revisionsToKeep: o.revisionsToKeep } : {}),
          ...(o.readWrite || o.readOnly ? { rw: o.readWrite === true } : {}),
        })
        show(g, await volumeJson(v))
      }),
    )

  volume
    .command('list')
    .alias('ls')
    .description('list the volumes of the pool, in natural order (ci-2 before ci-10)')
    .option('--match <glob>', 'only vids matching a shell pattern (* and ? within a component, ** across /)')
    .addOption(new Option('--kind <kind>', 'only volumes of this kind').choices([...VOLUME_KINDS, 'broken']))
    .addOption(new Option('--state <state>', 'only volumes in this state (outdated: running, its source changed since)').choices(STATE_FILTERS))
    .option('-H', 'for scripts: no header, fields separated by one tab, nothing cut (as zfs list -H)')
    .option('-o <columns>', `columns to show, comma-separated: ${volumeColumns.map((c) => c.header.toLowerCase()).join(',')}`)
    .addHelpText(
      'after',
      examples(
        'reflink-pool volume list',
        "reflink-pool volume list --match 'appvms/ci-*/root' --state running",
        'reflink-pool volume list -H -o vid,size | while IFS=$\'\\t\' read -r vid size; do ...; done',
        'reflink-pool volume list --json | jq -r ".[].vid"',
      ),
    )
    .action(async (o: { match?: string; kind?: string; state?: (typeof STATE_FILTERS)[number]; H?: boolean; o?: string }, cmd: Command) => {
      const g = globalOptions(cmd)
      const columns = o.o === undefined ? volumeColumns : pickColumns(volumeColumns, o.o)
      const matches = o.match === undefined ? () => true : vidMatcher(o.match)
      await withPool(g, async (pool) => {
        const volumes = (await pool.listVolumes()).filter((v) => matches(v.vid))
        const rows = (await volumeJsonRows(volumes)).filter((v) => (o.kind === undefined || v.kind === o.kind) && (o.state === undefined || hasState(v, o.state)))
        rows.sort((a, b) => naturalCompare(a.vid, b.vid))
        new Output(g.json).result(rows, () => {
          if (o.H) return scriptedRows(rows, columns)
          return rows.length ? table(rows, columns, { width: terminalWidth() }) : 'No volumes.'
        })
      })
    })

  volume
    .command('info <vid>')
    .description('show one volume: kind, size, state, revisions and space used')
    .addHelpText('after', examples('reflink-pool volume info appvms/web/private', 'reflink-pool volume info appvms/web/private --json'))
    .action((vid: string, _o: unknown, cmd: Command) =>
      onVolume(cmd, vid, async (v, pool, g) => {
        const revisions = await v.revisions()
        const footprint = await v.footprint()
        const dependents = await pool.dependents(v.vid)
        const data = { ...(await volumeJson(v)), revisions, usage: await volumeUsage(v), footprint, dependents }
        new Output(g.json).result(data, () =>
          volumeLines(data, [
            ['revisions', Object.keys(revisions).length ? Object.entries(revisions).map(([r, t]) => `${r}@${t}`).join(', ') : 'none'],
            ['dependents', dependents.length ? `${dependents.length} (start from it: ${someVids(dependents, 10)})` : 'none'],
            ['allocated', `${humanSize(data.usage.allocated)} (shared ${humanSize(data.usage.shared)}, exclusive ${humanSize(data.usage.exclusive)}, ${data.usage.extents} extents)`],
            ['all its files', footprintLine(footprint)],
          ]),
        )
      }),
    )

  withMatch(
    volume
      .command('start [vids...]')
      .description('start volumes: prepare each dirty image (a reflink of the clean one) and print its path; many in one batch'),
  )
    .addHelpText('after', examples('reflink-pool volume start appvms/web/root', 'losetup --find --show "$(reflink-pool volume start appvms/web/root)"', "reflink-pool volume start --match 'appvms/ci-*/root'"))
    .action((vids: string[], o: MatchOptions, cmd: Command) => {
      if (singleVolume(vids, o.match)) {
        return onVolume(cmd, vids[0], async (v, _pool, g) => {
          const path = await v.start({ signal: interrupt.signal })
          new Output(g.json).result({ vid: v.vid, path }, () => path)
        })
      }
      return onVolumes(cmd, vids, o, async (list, pool, out) => {
        const { bar, onProgress } = volumesProgress(out, 'start', list.length)
        const paths = await pool.startVolumes(list, { signal: interrupt.signal, onProgress }).finally(() => bar.done())
        const rows = list.map((vid, i) => ({ vid, path: paths[i] }))
        out.result(rows, () => rows.map((r) => `${r.vid}\t${r.path}`).join('\n'))
      })
    })

  withMatch(
    volume
      .command('stop [vids...]')
      .description('stop volumes: commit each dirty image (save-on-stop) or drop it; many in one batch')
      .option('--discard', 'drop the dirty image of a save-on-stop volume without committing')
      .option('--force', 'stop even though a loop device still uses the dirty image'),
  )
    .addHelpText('after', examples('reflink-pool volume stop appvms/web/private', 'reflink-pool volume stop appvms/web/private --discard', "reflink-pool volume stop --match 'appvms/ci-*/root'"))
    .action((vids: string[], o: MatchOptions & { discard?: boolean; force?: boolean }, cmd: Command) => {
      if (singleVolume(vids, o.match)) {
        return onVolume(cmd, vids[0], async (v, _pool, g) => {
          if (o.force !== true) await refuseInUse(v, o.discard === true)
          const before = await beforeStop(v)
          await v.stop({ discard: o.discard === true, signal: interrupt.signal })
          const outcome = await stopOutcome(v, before, o.discard === true)
          const data = { ...(await volumeJson(v)), ...outcome }
          new Output(g.json).result(data, () => stopLine(v.vid, outcome, data.kind))
        })
      }
      return onVolumes(cmd, vids, o, async (list, pool, out) => {
        const vols = list.map((vid) => pool.getVolume(vid))
        if (o.force !== true) for (const v of vols) await refuseInUse(v, o.discard === true)
        const { bar, onProgress } = volumesProgress(out, 'stop', list.length)
        try {
          if (o.discard === true) {
            // No batch form of a discard: one by one, each as `volume stop --discard` would.
            for (const [i, v] of vols.entries()) {
              await v.stop({ discard: true, signal: interrupt.signal })
              onProgress(i + 1, vols.length)
            }
          } else {
            await pool.stopVolumes(vols, { signal: interrupt.signal, onProgress })
          }
        } finally {
          bar.done()
        }
        const rows = await volumeJsonRows(vols)
        out.result(rows, () => `Stopped ${rows.length} volumes: ${someVids(list)}.`)
      })
    })

  volume
    .command('revert')
    .argument('<vid>', 'volume id')
    .argument('[revision]', 'revision number (default: the newest)', revisionArg)
    .description('put a revision back as the clean image (default: the newest); the current one becomes a revision')
    .addHelpText('after', examples('reflink-pool volume revert appvms/web/private', 'reflink-pool volume revert appvms/web/private 3'))
    .action((vid: string, rev: number | undefined, _o: unknown, cmd: Command) =>
      onVolume(cmd, vid, async (v, _pool, g) => {
        // Name the revision that was used: the newest one when none is given.
        const chosen = rev !== undefined ? String(rev) : Object.keys(await v.revisions()).pop()
        await v.revert(rev, { signal: interrupt.signal })
        const data = { ...(await volumeJson(v)), revertedTo: chosen ?? null, revisions: await v.revisions() }
        new Output(g.json).result(data, () => `Reverted ${v.vid} to revision ${chosen}; the previous image is kept as a new revision.`)
      }),
    )

  volume
    .command('revisions <vid>')
    .description('list the saved revisions of a volume')
    .addHelpText('after', examples('reflink-pool volume revisions appvms/web/private', 'reflink-pool volume revisions appvms/web/private --json'))
    .action((vid: string, _o: unknown, cmd: Command) =>
      onVolume(cmd, vid, async (v, _pool, g) => {
        const revisions = await v.revisions()
        const stray = await v.strayRevisions()
        const rows = Object.entries(revisions).map(([revision, time]) => ({ revision, time: String(time) }))
        new Output(g.json).result({ vid: v.vid, revisions, ...(stray.length && { strayRevisions: stray }) }, () =>
          [
            rows.length
              ? table(rows, [
                  { header: 'REVISION', value: (r) => r.revision, align: 'right' },
                  { header: 'TIME (UTC)', value: (r) => r.time },
                ])
              : `No revisions of ${v.vid}.`,
            ...(stray.length
              ? ['', `Ignored (revision number out of range, not made by the pool; move them away): ${stray.join(', ')}`]
              : []),
          ].join('\n'),
        )
      }),
    )

  volume
    .command('resize')
    .argument('<vid>', 'volume id')
    .argument('<size>', 'new size, e.g. 20G (20 GiB)', sizeArg)
    .addHelpText('after', sizeHelp())
    .description('grow (or with --allow-shrink, shrink) a volume; a running one is resized in place')
    .option('--allow-shrink', 'allow a smaller size (data past the end is lost)')
    .addHelpText('after', examples('reflink-pool volume resize appvms/web/private 20G', 'reflink-pool volume resize appvms/web/private 1G --allow-shrink'))
    .action((vid: string, size: number, o: { allowShrink?: boolean }, cmd: Command) =>
      onVolume(cmd, vid, async (v, _pool, g, context) => {
        Object.assign(context, { from: await v.size(), to: size })
        await v.resize(size, { allowShrink: o.allowShrink === true, signal: interrupt.signal })
        show(g, await volumeJson(v))
      }),
    )

  volume
    .command('import <vid> <file>')
    .description(
      'replace the committed data of a save-on-stop volume with a raw image: a file is reflinked when on the pool\'s filesystem, else its data is copied ' +
        '(holes never read); - (stdin) and FIFOs stream, with zero blocks left as holes',
    )
    .option('--size <size>', 'image size (default: the file size; for stdin, the volume size)', sizeArg)
    .option('--allow-shrink', 'allow an image smaller than the volume (the volume shrinks to it)')
    .option('--sparse', 'also turn all-zero blocks of a file into holes (for fully allocated raw files; reads all its data, never reflinks)')
    .addOption(new Option('--format <format>', 'import a file as raw even though its header says qcow2, vmdk, vhdx or vdi').choices(['raw']))
    .addHelpText('after', sizeHelp())
    .addHelpText(
      'after',
      examples(
        'reflink-pool volume import vm-templates/debian/root debian-12.raw',
        'xzcat debian.raw.xz | reflink-pool volume import vm-templates/debian/root - --size 10G',
      ),
    )
    .action((vid: string, file: string, o: { size?: number; allowShrink?: boolean; sparse?: boolean; format?: 'raw' }, cmd: Command) => {
      const source = openImportSource(file, o.size, o.format)
      return onVolume(cmd, vid, async (v, _pool, g, context) => {
        const current = await v.size()
        if (source.size !== undefined && source.size < current && o.allowShrink !== true) {
          throw refuse('ERR_SHRINK_REFUSED', { ...context, from: current, to: source.size })
        }
        const out = new Output(g.json)
        const result = await importVolume(v, source, { output: out, sparse: o.sparse === true })
        out.result({ vid: v.vid, ...result }, () => `Imported ${humanSize(result.bytes)} into ${v.vid} in ${result.seconds.toFixed(2)} s (${result.method}).`)
      }).finally(() => source.close())
    })

  volume
    .command('export <vid> <file>')
    .description(
      'write the committed data of a save-on-stop volume to a file (reflinked when on the pool\'s filesystem, else its data copied, holes kept; durable) ' +
        'or stream it to - (stdout) or a FIFO (holes never read)',
    )
    .option('--force', 'replace FILE when it exists')
    .addHelpText('after', examples('reflink-pool volume export appvms/web/private backup.raw', 'reflink-pool volume export appvms/web/private - | zstd > backup.raw.zst'))
    .action((vid: string, file: string, o: { force?: boolean }, cmd: Command) =>
      onVolume(cmd, vid, async (v, _pool, g) => {
        // Exporting to stdout: stdout carries the data, so the result line goes to stderr.
        const out = new Output(g.json, file === '-' ? process.stderr : process.stdout)
        const result = await exportVolume(v, file, { output: out, force: o.force === true })
        out.result({ vid: v.vid, ...result }, () => (file === '-' ? '' : `Exported ${humanSize(result.bytes)} of ${v.vid} to ${file} in ${result.seconds.toFixed(2)} s (${result.method}).`))
      }),
    )

  withMatch(
    volume
      .command('remove [vids...]')
      .alias('rm')
      .description('delete volumes with all their images and revisions, in one batch: all of them or, on any refusal, none')
      .option('--force', 'remove running volumes too (what the VM wrote since it started is lost)')
      .option('--recursive', 'also remove the volumes that start from these (the snapshot volumes of a template)'),
  )
    .addHelpText(
      'after',
      examples('reflink-pool volume remove appvms/web/private', "reflink-pool volume remove --match 'appvms/ci-*/**'", 'reflink-pool volume remove --recursive vm-templates/debian/root'),
    )
    .action((vids: string[], o: MatchOptions & { force?: boolean; recursive?: boolean }, cmd: Command) =>
      onVolumes(cmd, vids, o, async (list, pool, out) => {
        const kinds = new Map((await pool.listVolumes()).map((v) => [v.vid, v.kind]))
        const { bar, onProgress } = volumesProgress(out, 'remove', list.length)
        const r = await pool
          .removeVolumes(list, { force: o.force === true, recursive: o.recursive === true, signal: interrupt.signal, onProgress })
          .finally(() => bar.done())
        if (singleVolume(vids, o.match) && r.removed.length === 1) {
          out.result({ vid: list[0], removed: true }, () => `Removed ${kinds.get(list[0])} volume ${list[0]}.`)
          return
        }
        const rows = r.removed.map((vid) => ({ vid, removed: true, kind: kinds.get(vid) }))
        out.result(rows, () => `Removed ${rows.length} volumes: ${someVids(r.removed)}.`)
      }),
    )

  volume
    .command('verify <vid>')
    .description('check that the images a volume needs to start exist')
    .addHelpText('after', examples('reflink-pool volume verify appvms/web/root && echo ready'))
    .action((vid: string, _o: unknown, cmd: Command) =>
      onVolume(cmd, vid, async (v, _pool, g) => {
        await v.verify()
        new Output(g.json).result({ vid, ok: true }, () => `${vid}: ok`)
      }),
    )

  registerSendCommands(volume)
}
