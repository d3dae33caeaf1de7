// Import cycles, counted with `import type` too (`npm run lint` runs depcruise on src/).
// eslint-plugin-import-x's no-cycle skips type-only imports, and a contract that takes its
// vocabulary from its implementations is a circle made of exactly those (STYLE.md: "A contract
// imports nothing from its implementations").
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A module imports (values or types) a module that imports it back, directly or through others. Move what both need below both.',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
