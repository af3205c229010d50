// `reflink-pool clone <template> <target...>`: one template to many volumes.
import type { Command } from 'commander'
import { examples, intArg } from '../args'
import { cloneVolumes, expandTargets } from '../clone-runner'
import { humanDuration, humanSize, keyValues, percent } from '../format'
import { interrupt } from '../interrupt'
import { globalOptions, Output } from '../output'
import { withPool } from '../pool-access'
import { volumeUsageRows, sumUsage } from '../volume-view'
import { summarize } from '../../util/stats'

export function registerCloneCommand(program: Command): void {
  program
    .command('clone <template> <targets...>')
    .summary('clone a template volume to many new volumes, concurrently')
    .description(
      'clone a template volume to many new volumes, concurrently; targets may contain {n} with --count.\n' +
        'Default mode "copy" makes save-on-stop volumes holding a reflinked copy of the data now;\n' +
        '"snapshot" makes snap-on-start volumes of the template (the reflink happens at each start).',
    )
    .option('-n, --count <n>', 'make N volumes from each target pattern ({n} = 1..N)', intArg(1, 100000))
    .option('-j, --concurrency <n>', 'clones in flight at once', intArg(1, 1024), 8)
    .option('--snapshot', 'create snap-on-start volumes instead of copies')
    .addHelpText(
      'after',
      examples(
        "reflink-pool clone vm-templates/debian/root 'appvms/web-{n}/root' --count 100",
        'reflink-pool clone vm-templates/debian/root appvms/a/root appvms/b/root --snapshot',
        "reflink-pool clone vm-templates/debian/root 'appvms/ci-{n}/root' -n 20 -j 4 --json",
      ),
    )
    .action(async (templateVid: string, targets: string[], o: { count?: number; concurrency: number; snapshot?: boolean }, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = new Output(g.json)
      const vids = expandTargets(targets, o.count)
      await withPool(g, async (pool) => {
        const template = await pool.getVolume(templateVid)
        const before = await pool.usageDetails()
        const bar = out.progress({ label: 'clone', unit: 'items', total: vids.length })
        let result
        try {
          result = await cloneVolumes(pool, template, vids, {
            mode: o.snapshot ? 'snapshot' : 'copy',
            concurrency: o.concurrency,
            signal: interrupt.signal,
            onCloned: (done, total) => bar.update(done, total),
          })
        } finally {
          bar.done()
        }
        const after = await pool.usageDetails()
        const clones = []
        for (const vid of vids) clones.push(await pool.getVolume(vid))
        const space = sumUsage(await volumeUsageRows(clones))
        const perClone = summarize(result.perCloneMs)
        const data = {
          template: template.vid,
          mode: o.snapshot ? 'snapshot' : 'copy',
          count: vids.length,
          vids,
          concurrency: o.concurrency,
          methods: result.methods,
          totalMs: result.totalMs,
          perCloneMs: { median: perClone.median, min: perClone.min, max: perClone.max },
          space: {
            ...space,
            filesystemGrowth: before.dataUsage != null && after.dataUsage != null ? after.dataUsage - before.dataUsage : null,
          },
        }
        out.result(data, () =>
          keyValues([
            ['cloned', `${vids.length} × ${template.vid} (${data.mode}, ${o.concurrency} at a time)`],
            ['copy method', Object.entries(result.methods).map(([m, n]) => `${m} ×${n}`).join(', ') || 'none yet (snapshots are cloned at start)'],
            ['time', `${humanDuration(result.totalMs)} total, ${humanDuration(result.totalMs / vids.length)} per clone; each one took ${humanDuration(perClone.median)} (median; min ${humanDuration(perClone.min)}, max ${humanDuration(perClone.max)})`],
            ['data in clones', `${humanSize(space.allocated)} allocated: ${humanSize(space.shared)} shared (${percent(space.shared, space.allocated)}), ${humanSize(space.exclusive)} exclusive`],
            ['filesystem growth', humanSize(data.space.filesystemGrowth)],
          ]),
        )
      })
    })
}
