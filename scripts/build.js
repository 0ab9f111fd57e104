#!/usr/bin/env node
// Build: type-check and compile everything to out/ (L0 tests run that
// unbundled code), then bundle each task's entry into tasks/<Task>/index.js,
// the file its task.json handlers point at and the VSIX ships.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
const tasksDir = path.join(root, 'tasks');

// axios probes fetch/Request and FormData at load time, which makes Node
// load its built-in fetch stack (~20 ms of cold start) plus form-data and
// mime-db. The tasks only use axios' http adapter with JSON and streams, so
// the bundle leaves those out. (The L0 tests run the unbundled code, where
// axios is untouched.)
const FORMDATA_PROBE = "const FormDataCtor = typeof G.FormData !== 'undefined' ? G.FormData : undefined;";
const axiosLean = {
  name: 'axios-lean',
  setup(b) {
    b.onLoad({ filter: /axios[\\/]lib[\\/]adapters[\\/]fetch\.js$/ }, () => ({
      contents: 'export const getFetch = () => false; export default false;',
      loader: 'js',
    }));
    b.onLoad({ filter: /axios[\\/]lib[\\/]utils\.js$/ }, (a) => {
      const src = fs.readFileSync(a.path, 'utf8');
      if (!src.includes(FORMDATA_PROBE)) throw new Error('axios-lean: axios/lib/utils.js changed; review the plugin');
      return { contents: src.replace(FORMDATA_PROBE, 'const FormDataCtor = undefined;'), loader: 'js' };
    });
    b.onLoad({ filter: /axios[\\/]lib[\\/]platform[\\/]node[\\/]classes[\\/]FormData\.js$/ }, () => ({
      contents: 'export default null;',
      loader: 'js',
    }));
  },
};

function taskFolders() {
  return fs.readdirSync(tasksDir).filter((d) => fs.existsSync(path.join(tasksDir, d, 'task.json')) && fs.existsSync(path.join(tasksDir, d, 'index.ts')));
}

/** The esbuild options of one task's bundle (test/e2e/output-guard.test.ts bundles a probe with them). */
function bundleOptions(entry, outfile) {
  return {
    ...entry,
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minify: true,
    keepNames: true,
    legalComments: 'eof',
    logLevel: 'warning',
    plugins: [axiosLean],
  };
}

async function main() {
  const started = Date.now();
  // The native TypeScript compiler (7.x) builds; the `typescript` package (6.x) is only there for
  // typescript-eslint, which needs the compiler's JavaScript API that 7.x does not have.
  execFileSync(path.join(root, 'node_modules', 'typescript-native', 'bin', 'tsc'), ['-p', root], { stdio: 'inherit' });
  for (const task of taskFolders()) {
    await esbuild.build(bundleOptions({ entryPoints: [path.join(tasksDir, task, 'index.ts')] }, path.join(tasksDir, task, 'index.js')));
  }
  console.log(`build: compiled to out/ and bundled ${taskFolders().length} task(s) in ${Date.now() - started} ms`);
}

module.exports = { bundleOptions };

if (require.main === module) {
  main().catch((err) => {
    console.error(err.message || err);
    process.exit(1);
  });
}
