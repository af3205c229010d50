// typedoc (`npm run docs`): the API reference of the package root, with the
// README as its landing page. Every exported member must be documented: a
// warning (undocumented member, unexported referenced type, broken link) is an
// error. The properties of ERROR_CODES are documented by their own values (the
// table of codes, shown as literal types), so they are listed as intentional.
const { readFileSync } = require('node:fs')
const { join } = require('node:path')

const errors = readFileSync(join(__dirname, 'ts', 'errors.ts'), 'utf8')
const table = errors.slice(errors.indexOf('export const ERROR_CODES'), errors.indexOf('} as const'))
const codes = [...table.matchAll(/^ {2}([A-Z_]+): /gm)].map((m) => m[1])

/** @type {import('typedoc').TypeDocOptions} */
module.exports = {
  entryPoints: ['ts/index.ts'],
  tsconfig: 'tsconfig.build.json',
  out: 'docs/api',
  excludeInternal: true,
  excludePrivate: true,
  readme: 'README.md',
  name: 'reflink-pool API',
  disableSources: true,
  validation: { notDocumented: true, notExported: true, invalidLink: true },
  treatValidationWarningsAsErrors: true,
  intentionallyNotDocumented: codes.map((c) => `ERROR_CODES.__type.${c}`),
}
