// ESLint for cloudbed: type-aware typescript-eslint rules, the determinism bans and the layer rules.
// The layers (README, "Layout") point inward: lib <- model <- ports <- control <- faults <- sim
// <- fuzz; adapters implement ports; staging wires control and adapters into OS processes; chaos
// drives staging and judges it with the simulator's checkers; cli and tests wire concrete things
// together.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Folders whose code must be deterministic: nondeterminism only through ports. */
const DETERMINISTIC = [
  'src/model/**',
  'src/control/**',
  'src/sim/**',
  'src/faults/**',
  'src/fuzz/**',
];

const determinismMessage =
  'nondeterminism enters only through ports (Clock, Random, Ids): see README "Determinism"';

const determinismRules = {
  'no-restricted-globals': [
    'error',
    ...[
      'setTimeout',
      'setInterval',
      'setImmediate',
      'clearTimeout',
      'clearInterval',
      'clearImmediate',
    ].map((name) => ({ name, message: `timers: use Clock.sleep — ${determinismMessage}` })),
    { name: 'performance', message: determinismMessage },
    { name: 'crypto', message: determinismMessage },
    { name: 'process', message: determinismMessage },
  ],
  'no-restricted-properties': [
    'error',
    {
      object: 'Date',
      property: 'now',
      message: `Date.now: use Clock.nowMs — ${determinismMessage}`,
    },
    {
      object: 'Math',
      property: 'random',
      message: `Math.random: use Random — ${determinismMessage}`,
    },
    ...['setTimeout', 'setInterval', 'setImmediate', 'performance', 'crypto', 'process'].map(
      (property) => ({
        object: 'globalThis',
        property,
        message: determinismMessage,
      }),
    ),
  ],
  'no-restricted-syntax': [
    'error',
    {
      selector: "NewExpression[callee.name='Date'][arguments.length=0]",
      message: `new Date() reads the wall clock: use Clock.nowMs — ${determinismMessage}`,
    },
    {
      selector: "CallExpression[callee.name='Date'][arguments.length=0]",
      message: `Date() reads the wall clock: use Clock.nowMs — ${determinismMessage}`,
    },
  ],
};

const nondeterministicModules = [
  'crypto',
  'node:crypto',
  'perf_hooks',
  'node:perf_hooks',
  'timers',
  'node:timers',
  'timers/promises',
  'node:timers/promises',
  'process',
  'node:process',
  'os',
  'node:os',
].map((name) => ({ name, message: determinismMessage }));

/** Network and host drivers: only src/adapters (and the cli and tests that wire them) may load them. */
const realDrivers = [
  'pg',
  'ioredis',
  'node-zookeeper-client',
  'child_process',
  'node:child_process',
  'net',
  'node:net',
  'http',
  'node:http',
  'fs',
  'node:fs',
  'fs/promises',
  'node:fs/promises',
].map((name) => ({ name, message: 'real I/O lives in src/adapters; this layer talks to ports' }));
/** In-process drivers: the simulator may host them, the control plane must not know them. */
const inProcessDrivers = ['pg-mem', 'ioredis-mock'].map((name) => ({
  name,
  message: 'in-process drivers are wired by src/sim, src/cli or tests, never used by this layer',
}));

const layer = (folder) => ({
  group: [`**/${folder}/**`, `**/${folder}`],
  message: `layer rule: this layer must not import src/${folder}`,
});

/** Per folder: which project layers it must not import. */
const layerBans = {
  'src/lib/**': [
    'model',
    'ports',
    'control',
    'sim',
    'faults',
    'fuzz',
    'adapters',
    'staging',
    'chaos',
    'cli',
  ],
  'src/model/**': [
    'ports',
    'control',
    'sim',
    'faults',
    'fuzz',
    'adapters',
    'staging',
    'chaos',
    'cli',
  ],
  'src/ports/**': ['control', 'sim', 'faults', 'fuzz', 'adapters', 'staging', 'chaos', 'cli'],
  'src/control/**': ['sim', 'faults', 'fuzz', 'adapters', 'staging', 'chaos', 'cli'],
  'src/faults/**': ['sim', 'fuzz', 'adapters', 'staging', 'chaos', 'cli'],
  'src/adapters/**': ['control', 'sim', 'faults', 'fuzz', 'staging', 'chaos', 'cli'],
  'src/sim/**': ['fuzz', 'staging', 'chaos', 'cli'],
  // The fuzzing and shrinking engine sits on top of the simulator; nothing below knows it.
  'src/fuzz/**': ['staging', 'chaos', 'cli'],
  // Staging runs the control plane on real services: beside the simulator, never inside it.
  'src/staging/**': ['sim', 'faults', 'fuzz', 'chaos', 'cli'],
  // Chaos experiments drive a staging deployment and judge it with the simulator's checkers.
  'src/chaos/**': ['fuzz', 'cli'],
};

const layerConfigs = Object.entries(layerBans).map(([files, banned]) => {
  const deterministic = DETERMINISTIC.includes(files);
  // The simulator and the fuzzer above it host the in-process SQL store and Redis bus.
  const isSim = files === 'src/sim/**' || files === 'src/fuzz/**';
  const doesIo = ['src/adapters/**', 'src/lib/**', 'src/staging/**', 'src/chaos/**'].includes(
    files,
  );
  const paths = [
    ...(deterministic ? nondeterministicModules : []),
    ...(doesIo ? [] : realDrivers),
    ...(deterministic && !isSim ? inProcessDrivers : []),
  ];
  const patterns = [
    ...banned.map(layer),
    // The simulator may host the in-process SQL store and Redis bus adapters, never the network ones.
    ...(isSim
      ? [
          {
            group: [
              '**/adapters/postgres*',
              '**/adapters/zookeeper*',
              '**/adapters/libvirt*',
              '**/adapters/zfs*',
              '**/adapters/http-server*',
            ],
            message:
              'the simulator never loads a network driver, libvirt, ZFS or ZooKeeper adapter',
          },
        ]
      : []),
  ];
  return {
    files: [files.replace('/**', '/**/*.ts')],
    rules: { 'no-restricted-imports': ['error', { paths, patterns }] },
  };
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'coverage/**', 'test/lint/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', 'bin/*.js', 'scripts/*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
      globals: {
        console: 'readonly',
        process: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      // Errors are passed through unchanged; their type is unknown by nature.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      eqeqeq: ['error', 'always'],
    },
  },
  { files: DETERMINISTIC.map((g) => g.replace('/**', '/**/*.ts')), rules: determinismRules },
  ...layerConfigs,
  {
    // The one place the simulator observes Node's queues; see the header of quiesce.ts.
    files: ['src/sim/quiesce.ts'],
    rules: { 'no-restricted-globals': 'off' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
      // Tests read untyped JSON (API responses, trace lines); typing every probe adds nothing.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
