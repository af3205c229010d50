// ESLint flat config: typescript-eslint's recommended rules over the hand-written
// TypeScript and the test/scripts JavaScript. Generated files (native/) and build
// output are not linted.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import globals from 'globals'

export default tseslint.config(
  { ignores: ['dist/', 'native/', 'target/', 'npm/', 'docs/api/', 'bench-results/', '.tmp/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // Public types are string unions (house style): a const enum would leak into consumers.
      'no-restricted-syntax': ['error', { selector: 'TSEnumDeclaration[const=true]', message: 'Use a string union, not a const enum.' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Best-effort cleanup (`try { unlink } catch {}`) is a deliberate pattern here.
      'no-empty': ['error', { allowEmptyCatch: true }],
      '@typescript-eslint/no-explicit-any': 'warn',
      // Lazy require() of our own modules keeps `--help`/`--version` from loading the addon.
      '@typescript-eslint/no-require-imports': ['error', { allow: ['^\\.{1,2}/'] }],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
)
