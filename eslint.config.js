// ESLint for the whole tree: src/ and test/ (TypeScript, typescript-eslint's recommended rules) and bench/
// and scripts/ (plain ES modules). Formatting is Prettier's (.prettierrc.json); ESLint only finds mistakes.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import globals from 'globals'

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'build-asan/', 'node_modules/', 'bench/results/', '.tap/', '.clinic/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // Unused names are errors, except a leading underscore, which marks a parameter kept for its position.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-console': 'off',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'prefer-const': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      // Logs go through pino; the CLI's own user-facing output writes to io.stdout/io.stderr.
      'no-console': 'error',
    },
  },
)
