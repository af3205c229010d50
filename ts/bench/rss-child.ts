// Child process of the memory scenario: loads the package root, copies
// `src` to `dst` with copyFile (or, with `idle`, only loads it), then prints
// its own peak resident set (VmHWM) as JSON. Run with plain node on the
// compiled file where possible, so no TypeScript loader inflates the figure.
import { readFileSync } from 'node:fs'
import { loadProduct } from './product'
import { peakRss } from './system'

async function main(): Promise<void> {
  const [mode, src, dst] = process.argv.slice(2)
  const product = loadProduct()
  let copy: { method: string; bytes: number } | null = null
  if (mode === 'copy') {
    if (!product.copyFile) throw new Error(product.problems.join('; '))
    copy = await product.copyFile(src, dst)
  }
  const peak = peakRss(readFileSync('/proc/self/status', 'utf8'))
  process.stdout.write(JSON.stringify({ peakRssBytes: peak, method: copy?.method ?? null, bytes: copy?.bytes ?? null }) + '\n')
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`)
  process.exit(1)
})
