// Pool commands: init, config, info, usage.
import type { Command } from 'commander'
import { examples, intArg, minFreeArg } from '../args'
import { fittedTable, humanSize, keyValues, percent, terminalWidth, wrap } from '../format'
import { globalOptions, Output } from '../output'
import { isPoolDir, loadPoolModule, poolDir, withPool, type Pool } from '../pool-access'
import { reword } from '../messages'
import { CLI_CODES, CliError, EXIT, errorLine } from '../errors'
import { printable } from '../../util/quote'
import { footprintColumns, sumFootprint, volumeFootprintRows } from '../volume-view'

export function registerPoolCommands(program: Command): void {
  program
    .command('init')
    .description('create a pool (or reopen an existing one) and print its configuration')
    .option('--name <name>', 'pool name (default: the directory name)')
    .option('--revisions-to-keep <n>', 'revisions kept per volume; -1 disables snapshots (default: 1)', intArg(-1))
    .option('--no-setup-check', 'accept a filesystem without reflinks (slow full copies)')
    .option('--ephemeral-volatile', 'volatile volumes are ephemeral (encrypted by the VM layer)')
    .option('--adopt', 'register the images already in the directory (a Qubes file-reflink pool) as volumes, without changing them')
    .option('--min-free <size|N%>', 'keep this much of the filesystem free: clone, create, start and import refuse (ERR_LOW_SPACE) when they could take it below; 0 turns it off', minFreeArg)
    .addHelpText(
      'after',
      '\nOn an existing pool, init changes only the settings given and keeps the others; --revisions-to-keep sets the default of new volumes (existing ones keep theirs: see volume config).\n',
    )
    .addHelpText(
      'after',
      examples(
        'reflink-pool --pool /var/lib/vms init',
        'reflink-pool --pool /mnt/ext4/vms init --no-setup-check',
        'reflink-pool --pool /var/lib/vms init --revisions-to-keep 3 --json',
        'reflink-pool --pool /var/lib/qubes init --adopt',
        'reflink-pool --pool /var/lib/vms init --min-free 10%',
      ),
    )
    .action(async (o: { name?: string; revisionsToKeep?: number; setupCheck: boolean; ephemeralVolatile?: boolean; adopt?: boolean; minFree?: number | `${number}%` }, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = new Output(g.json)
      const dirPath = poolDir(g)
      const existed = isPoolDir(dirPath)
      const pool = await loadPoolModule()
        .ReflinkPool.open({
          dirPath,
          // Only what was given: on an existing pool the library replaces persisted settings with these.
          ...(o.name !== undefined ? { name: o.name } : {}),
          ...(o.revisionsToKeep !== undefined ? { revisionsToKeep: o.revisionsToKeep } : {}),
          ...(o.ephemeralVolatile !== undefined ? { ephemeralVolatile: true } : {}),
          ...(o.minFree !== undefined ? { minFree: o.minFree } : {}),
          setupCheck: o.setupCheck,
        })
        .catch((err: unknown) => {
          throw reword(err, { command: 'init', dir: dirPath })
        })
      try {
        const config = pool.config
        const adoption = o.adopt ? await pool.adoptAll() : undefined
        out.result({ created: !existed, config, ...(adoption && { adoption }) }, () =>
          [
            `${existed ? 'Opened existing' : 'Created'} pool ${config.name} at ${config.dirPath}`,
            '',
            configLines(pool),
            ...(adoption
              ? [
                  '',
                  `Adopted ${adoption.adopted.length} volume${adoption.adopted.length === 1 ? '' : 's'}${adoption.adopted.length ? ':' : '.'}`,
                  ...adoption.adopted.map((vid) => `  ${vid}`),
                  ...(adoption.skipped.length ? [`Skipped ${adoption.skipped.length}:`, ...adoption.skipped.map((s) => `  ${printable(s.path)}: ${s.reason}`)] : []),
                ]
              : []),
          ].join('\n'),
        )
        if (adoption && adoption.adopted.length === 0) {
          // The report is the output either way; the status tells scripts that nothing was adopted.
          process.stderr.write(errorLine(new CliError(`nothing was adopted (${adoption.skipped.length} skipped, listed above)`, CLI_CODES.nothingAdopted)) + '\n')
          process.exitCode = EXIT.failure
        }
      } finally {
        await pool.close()
      }
    })

  program
    .command('config')
    .description("change the pool's settings (only those given; none: print them), like volume config for a volume")
    .option('--min-free <size|N%>', 'keep this much of the filesystem free (see init --min-free); 0 turns the guard off', minFreeArg)
    .addHelpText('after', examples('reflink-pool config --min-free 10%', 'reflink-pool config --min-free 20G', 'reflink-pool config --json'))
    .action(async (o: { minFree?: number | `${number}%` }, cmd: Command) => {
      const g = globalOptions(cmd)
      await withPool(g, async (pool) => {
        const config = o.minFree === undefined ? pool.config : await pool.setConfig({ minFree: o.minFree })
        new Output(g.json).result({ config }, () => configLines(pool))
      })
    })

  program
    .command('info')
    .description('show the pool configuration, its filesystem usage and volume count')
    .addHelpText('after', examples('reflink-pool --pool /var/lib/vms info', 'REFLINK_POOL_DIR=/var/lib/vms reflink-pool info --json'))
    .action(async (_o: unknown, cmd: Command) => {
      const g = globalOptions(cmd)
      await withPool(g, async (pool) => {
        const space = await poolSpace(pool)
        const reflink = space.dataSize === null ? null : await canReflink(pool.dirPath)
        const data = { config: pool.config, volumes: (await pool.listVolumes()).length, ...space, reflink }
        new Output(g.json).result(data, () =>
          keyValues([
            ...configPairs(pool),
            ['volumes', String(data.volumes)],
            ['filesystem', data.dataSize === null ? 'missing (pool directory not available)' : `${humanSize(data.dataUsage)} used of ${humanSize(data.dataSize)} (${percent(data.dataUsage ?? 0, data.dataSize)})`],
            ['reflink', reflinkMeaning(reflink)],
          ]),
        )
      })
    })

  program
    .command('usage')
    .description('space used by every file of each volume (clean, precache, revisions, dirty, import), shared with other files (reflinks) or exclusive')
    .option('--if-removed <vid...>', 'instead: the bytes removing these volumes (together) would give back, revisions included')
    .addHelpText('after', examples('reflink-pool usage', 'reflink-pool usage --json | jq .total', 'reflink-pool usage --if-removed appvms/ci-1/root appvms/ci-2/root'))
    .action(async (o: { ifRemoved?: string[] }, cmd: Command) => {
      const g = globalOptions(cmd)
      await withPool(g, async (pool) => {
        if (o.ifRemoved) return ifRemovedReport(pool, o.ifRemoved, g.json)
        const rows = await volumeFootprintRows(await pool.listVolumes())
        const data = { ...(await poolSpace(pool)), volumes: rows, total: sumFootprint(rows) }
        new Output(g.json).result(data, () => {
          const width = terminalWidth()
          const fitted = fittedTable([...rows, { vid: 'total', ...data.total }], footprintColumns, { width })
          const left = fitted.dropped.length ? ` Left out to fit ${width} columns: ${fitted.dropped.join(', ')} (see --json).` : ''
          return [
            fitted.text,
            '',
            wrap(
              `Filesystem: ${humanSize(data.dataUsage)} used of ${humanSize(data.dataSize)}. ` +
                'Columns are allocated bytes per kind of file ("-": none). Shared bytes (reflinks) are counted in every file ' +
                `that shares them, so ALLOCATED can exceed what the volume costs; exclusive bytes are in one file only.${left}`,
              width,
            ),
          ].join('\n')
        })
      })
    })
}

/** `usage --if-removed`: what removing the volumes would give back, and the free space it would make. */
async function ifRemovedReport(pool: Pool, vids: string[], json: boolean): Promise<void> {
  const report = await pool.usageIfRemoved(vids)
  const data = { ...report, ...(await poolSpace(pool)) }
  const n = report.vids.length
  new Output(json).result(data, () =>
    wrap(
      `Removing ${n} volume${n === 1 ? '' : 's'} (${report.files} file${report.files === 1 ? '' : 's'}) would give back ${humanSize(report.freed)}: ` +
        'their data that no other volume shares (reflinks to other volumes stay). ' +
        (data.dataSize === null ? '' : `The filesystem has ${humanSize(data.dataUsage)} used of ${humanSize(data.dataSize)}.`),
      terminalWidth(),
    ),
  )
}

/** statvfs of the pool directory; nulls when it is missing (a removable disk), as the pool reports it. */
async function poolSpace(pool: Pool): Promise<{ dataSize: number | null; dataUsage: number | null }> {
  const details = await pool.usageDetails()
  return { dataSize: details.dataSize ?? null, dataUsage: details.dataUsage ?? null }
}

/** Probe the pool directory with real bytes; null when it cannot be probed (the answer is unknown). */
async function canReflink(dirPath: string): Promise<boolean | null> {
  const { isReflinkSupported } = require('../../probe') as typeof import('../../probe')
  try {
    return await isReflinkSupported(dirPath)
  } catch {
    return null
  }
}

/** What the filesystem's reflink support means for the pool, in one line. */
function reflinkMeaning(reflink: boolean | null): string {
  if (reflink === null) return 'unknown (the pool directory could not be probed)'
  if (reflink) return 'yes: clones, starts and revisions share blocks (metadata-only, fast); only data written after costs space'
  return (
    'no: every clone and start is a full sparse copy (time grows with the data); ' +
    'revisions are hard links of the replaced image, no precache is kept; a running volume holds its data twice (clean + dirty)'
  )
}

function configLines(pool: Pool): string {
  return keyValues(configPairs(pool))
}

function configPairs(pool: Pool): Array<[string, string]> {
  const c = pool.config
  return [
    ['name', c.name],
    ['directory', c.dirPath],
    ['driver', c.driver],
    ['revisions to keep', c.revisionsToKeep === -1 ? '-1 (snapshots disabled)' : String(c.revisionsToKeep)],
    ['ephemeral volatile', String(c.ephemeralVolatile)],
    ['min free', c.minFree === 0 ? '0 (no space guard)' : typeof c.minFree === 'number' ? humanSize(c.minFree) : `${c.minFree} of the filesystem`],
  ]
}
