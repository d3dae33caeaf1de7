// Lint (`npm run lint`): typescript-eslint's type-checked rules; the layers of STYLE.md as import
// rules, so a wrong arrow fails CI; and the code's own layout (@stylistic, set to how the code is
// written: single quotes, semicolons, two-space indent, trailing commas in multi-line lists, long
// lines and short one-line blocks allowed; `npm run format` applies it). Import cycles, counted
// with type imports, are dependency-cruiser's (.dependency-cruiser.cjs): import-x's no-cycle
// skips `import type`, and the cycles that matter here are made of those.
import js from '@eslint/js';
import stylistic from '@stylistic/eslint-plugin';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** Everything of ours except `folders` (paths under src/). */
const srcExcept = (...folders) => ({ from: './src', except: folders.map((f) => `./${f}`) });

/** Server-side folders, which the client side (client library, `ntls-client`) never imports. */
const SERVER_SIDE = ['admin', 'daemon', 'datapath', 'hsm', 'metrics', 'processor', 'registry', 'store', 'tokens'].map((f) => `./src/${f}`);

/**
 * The layers (STYLE.md, "Layout shows the architecture" and "Front doors"), as zones of
 * import-x/no-restricted-paths: a file under `target` may not import from `from`.
 */
const LAYERS = [
  // The vocabulary and the codecs depend on nothing of ours (the codec speaks PKCS#11's words).
  // The error base is below everything and imports nothing of ours; everything may use it.
  { target: './src/errors', ...srcExcept('errors'), message: 'src/errors is the base of every error: it imports nothing of ours.' },
  { target: './src/pkcs11', ...srcExcept('pkcs11', 'errors'), message: 'src/pkcs11 is the vocabulary below everything: it imports nothing of ours.' },
  { target: './src/log', ...srcExcept('log', 'errors'), message: 'src/log depends on nothing of ours.' },
  { target: './src/protocol', ...srcExcept('protocol', 'pkcs11', 'errors'), message: 'src/protocol is the wire codec: it depends on nothing of ours but the PKCS#11 vocabulary.' },
  { target: './src/store', ...srcExcept('store', 'pkcs11', 'log', 'errors'), message: 'src/store is below the HSM: it knows nothing above it.' },
  // The token model (PKCS#11's semantics over devices) sits on the vocabulary alone.
  { target: './src/token', ...srcExcept('token', 'pkcs11', 'errors'), message: 'src/token is the token model: it depends on the PKCS#11 vocabulary only, never on a device.' },
  // The devices implement the token model's contract; they know nothing of sockets, connections
  // or the processor, and never reach into the model itself.
  { target: './src/hsm', ...srcExcept('hsm', 'pkcs11', 'log', 'store', 'token', 'errors'), message: 'src/hsm knows nothing of sockets, the datapath or the processor.' },
  // operation-memory.ts: the one budget a device's kept input and the model's pending outputs both count in.
  { target: './src/hsm', from: './src/token', except: ['./device.ts', './roles.ts', './operation-memory.ts'], message: 'A device implements src/token/device.ts; it does not use the model above it.' },
  // Shared helpers below everything that uses them.
  { target: ['./src/files', './src/home'], ...srcExcept('files', 'home', 'config', 'errors'), message: 'src/files and src/home are helpers below the daemon, the admin channel and the client.' },
  // Tokens use the HSM through its front door, not the store under it, and nothing client-side.
  { target: './src/tokens', from: ['./src/store', './src/client', './src/datapath', './src/processor', './src/admin', './src/daemon', './src/cli'], message: 'src/tokens uses the HSM through src/hsm/index.ts, not its store, and no client or server plumbing.' },
  // The datapath delivers frames; it knows nothing of PKCS#11.
  { target: './src/datapath', from: ['./src/hsm', './src/pkcs11', './src/protocol/p11kit', './src/store', './src/tokens'], message: 'src/datapath knows nothing of PKCS#11: it reaches the processor through src/processor/contract.ts.' },
  // The processor joins the datapath's frames to the HSM; nothing below it imports what is above.
  { target: './src/processor', from: ['./src/datapath', './src/client', './src/admin', './src/daemon', './src/cli'], message: 'src/processor sits below the datapath, the admin channel and the daemon.' },
  { target: './src/admin', from: ['./src/daemon', './src/cli'], message: 'src/admin is used by the daemon and the CLI; it does not import them.' },
  // The client side never imports server-side folders.
  { target: ['./src/client', './src/cli/ntls-client.ts', './src/cli/ntls-client-commands.ts', './src/cli/client-program.ts', './src/cli/relay-commands.ts', './src/cli/ha-relay.ts', './src/cli/p11-relay.ts', './src/index.ts'], from: SERVER_SIDE, message: 'The client side (library, ntls-client) does not import server-side folders.' },
  // Front doors: a folder with an index.ts is used through it.
  { target: ['./src/!(hsm)/**', './src/*.ts'], from: './src/hsm', except: ['./index.ts', './mechanisms/index.ts'], message: 'Use src/hsm through its front door, src/hsm/index.ts.' },
  { target: ['./src/!(protocol)/**', './src/protocol/*.ts', './src/*.ts'], from: './src/protocol/p11kit', except: ['./index.ts'], message: 'Use the p11-kit codec through src/protocol/p11kit/index.ts.' },
  { target: ['./src/!(processor)/**', './src/*.ts'], from: './src/processor', except: ['./contract.ts', './loader.ts'], message: 'The processor is reached through its contract (src/processor/contract.ts) and loader.' },
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'native/', 'ntls-home/', '.tmp/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['vitest.config.ts'] }, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      'import-x/no-self-import': 'error',
      'import-x/no-duplicates': 'error',
      // Unused arguments named _x are deliberate (a signature to honour).
      // The log's format has double spaces (syslog's "local5 info  NTLS"); regexes spell them out.
      'no-regex-spaces': 'off',
      // An async function that does not await is how a call keeps one failure path: what it
      // throws becomes a rejection (the device contract's Promise-returning methods rely on it).
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  { files: ['src/**/*.ts'], rules: { 'import-x/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones: LAYERS }] } },
  {
    files: ['src/hsm/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ['net', 'tls', 'dgram', 'http', 'https', 'http2'].flatMap((m) => [`node:${m}`, m]).map((name) => ({ name, message: 'src/hsm knows nothing of sockets.' })),
      }],
    },
  },
  {
    // Tests and benches read the JSON that CLIs print (JSON.parse gives \`any\`) and check it with
    // expect(); typing each parse would add casts, not checks.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  stylistic.configs.customize({
    indent: 2, quotes: 'single', semi: true, jsx: false, braceStyle: '1tbs', commaDangle: 'always-multiline',
    arrowParens: true, blockSpacing: true, quoteProps: 'consistent-as-needed',
  }),
  {
    rules: {
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true, allowTemplateLiterals: 'always' }],
      // Comments aligned at the ends of lines.
      '@stylistic/no-multi-spaces': ['error', { ignoreEOLComments: true }],
      // The code puts several short properties or statements on a line, breaks ternaries and
      // long expressions where they read best, and keeps one-line forwarders together.
      '@stylistic/list-style': 'off',
      '@stylistic/max-statements-per-line': 'off',
      '@stylistic/multiline-ternary': 'off',
      '@stylistic/operator-linebreak': 'off',
      '@stylistic/lines-between-class-members': 'off',
    },
  },
  {
    // Plain JavaScript (scripts that run before npm install, configuration): no type information.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' },
    },
  },
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } } },
);
