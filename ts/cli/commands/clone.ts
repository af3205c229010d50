// `reflink-pool clone <template> <target...>`: one template to many volumes,
// in batches (docs/design.md §7). Each batch is all or nothing; a failed or
// interrupted run says which volumes exist, and --skip-existing finishes it.
import type { Command } from 'commander'
import { examples, intArg } from '../args'
import { CloneIncompleteError, cloneVolumes, expandTargets } from '../clone-runner'
import { humanDuration, humanSize, keyValues, percent } from '../format'
import { interrupt } from '../interrupt'
import { globalOptions, Output } from '../output'
import { withPool } from '../pool-access'
import { volumeUsageRows, sumUsage } from '../volume-view'

/** Volumes per batch by default: one group commit for a typical run, bounded memory for a huge one. */
const DEFAULT_BATCH = 1000

/** `a, b, c` for a short list, else the first ones and how many more. */
function vidList(vids: string[], max = 20): string {
  if (vids.length === 0) return 'none'
  return vids.length <= max ? vids.join(', ') : `${vids.slice(0, max).join(', ')} and ${vids.length - max} more`
}

export function registerCloneCommand(program: Command): void {
  program
    .command('clone <template> <targets...>')
    .summary('clone a template volume to many new volumes, in batches')
    .description(
      // One line per paragraph: commander wraps each to the terminal's width.
      [
        'clone a template volume to many new volumes; targets may contain {n} with --count.',
        'Default mode "copy" makes save-on-stop volumes holding a reflinked copy of the data now; "snapshot" makes snap-on-start volumes of the template (the reflink happens at each start).',
        'The clones are made in batches (--batch volumes each): reflinks, one flush to disk, renames, records. A batch is all or nothing: a volume is listed only once it holds its data. If the run fails or is interrupted, it says which volumes exist; run it again with --skip-existing to finish.',
      ].join('\n\n'),
    )
    .option('-n, --count <n>', 'make N volumes from each target pattern: {n} = 1..N, {n:3} = 001..N (the names never depend on N)', intArg(1, 100000))
    .option('--batch <n>', 'volumes per batch (each one all or nothing)', intArg(1, 100000), DEFAULT_BATCH)
    .option('--skip-existing', 'skip targets that are volumes already (finish an interrupted run)')
    .option('--snapshot', 'create snap-on-start volumes instead of copies')
    .addHelpText(
      'after',
      examples(
        "reflink-pool clone vm-templates/debian/root 'appvms/web-{n}/root' --count 100",
        'reflink-pool clone vm-templates/debian/root appvms/a/root appvms/b/root --snapshot',
        "reflink-pool clone vm-templates/debian/root 'appvms/ci-{n}/root' -n 300 --skip-existing --json",
      ),
    )
    .action(async (templateVid: string, targets: string[], o: { count?: number; batch: number; skipExisting?: boolean; snapshot?: boolean }, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = new Output(g.json)
      const vids = expandTargets(targets, o.count)
      const mode = o.snapshot ? 'snapshot' : 'copy'
      await withPool(g, async (pool) => {
        const template = await pool.getVolume(templateVid)
        const before = await pool.usageDetails()
        const bar = out.progress({ label: 'clone', unit: 'items', total: vids.length })
        let result
        try {
          result = await cloneVolumes(pool, template, vids, {
            mode,
            batchSize: o.batch,
            skipExisting: o.skipExisting === true,
            signal: interrupt.signal,
            onCloned: (done, total) => bar.update(done, total),
          })
        } catch (e) {
          bar.done()
          if (e instanceof CloneIncompleteError && e.made.length && !g.json) {
            process.stderr.write(`volumes made by this run (${e.made.length}): ${vidList(e.made)}\n`)
            process.stderr.write(`not made (${e.missing.length}): ${vidList(e.missing)}\n`)
          }
          throw e
        }
        bar.done()
        const after = await pool.usageDetails()
        // FIEMAP of a sample (first and last clone) rather than of every clone: the summary
        // must not cost more than the clones (a thousand FIEMAPs would).
        const sample = [...new Set([vids[0], vids.at(-1)!])].map((vid) => pool.getVolume(vid))
        const space = sumUsage(await volumeUsageRows(sample))
        const count = result.made.length
        const data = {
          template: template.vid,
          mode,
          count,
          vids,
          made: result.made,
          skipped: result.skipped,
          counts: { made: count, skipped: result.skipped.length },
          batches: result.batches,
          methods: result.methods,
          totalMs: result.totalMs,
          perCloneMs: count ? result.totalMs / count : 0,
          space: {
            sampled: sample.map((v) => v.vid),
            ...space,
            filesystemGrowth: before.dataUsage != null && after.dataUsage != null ? after.dataUsage - before.dataUsage : null,
          },
        }
        out.result(data, () =>
          keyValues([
            ['cloned', `${count} × ${template.vid} (${mode}, ${result.batches} batch${result.batches === 1 ? '' : 'es'})`],
            ...(o.skipExisting ? [['skipped', `${result.skipped.length} that existed already`] as [string, string]] : []),
            ['copy method', Object.entries(result.methods).map(([m, n]) => `${m} ×${n}`).join(', ') || (count === 0 ? 'none (nothing cloned)' : 'none yet (snapshots are cloned at start)')],
            ['time', count ? `${humanDuration(result.totalMs)} total, ${humanDuration(data.perCloneMs)} per clone` : `${humanDuration(result.totalMs)} total`],
            [sample.length === 1 ? 'data in the clone' : `data in ${sample.length} clones (first, last)`, `${humanSize(space.allocated)} allocated: ${humanSize(space.shared)} shared (${percent(space.shared, space.allocated)}), ${humanSize(space.exclusive)} exclusive`],
            ['filesystem growth', humanSize(data.space.filesystemGrowth)],
          ]),
        )
      })
    })
}
