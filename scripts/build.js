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

function taskFolders() {
  return fs.readdirSync(tasksDir)
    .filter((d) => fs.existsSync(path.join(tasksDir, d, 'task.json')) && fs.existsSync(path.join(tasksDir, d, 'index.ts')));
}

async function main() {
  const started = Date.now();
  execFileSync(path.join(root, 'node_modules', '.bin', 'tsc'), ['-p', root], { stdio: 'inherit' });
  for (const task of taskFolders()) {
    await esbuild.build({
      entryPoints: [path.join(tasksDir, task, 'index.ts')],
      outfile: path.join(tasksDir, task, 'index.js'),
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      minify: true,
      keepNames: true,
      legalComments: 'eof',
      logLevel: 'warning',
    });
  }
  console.log(`build: compiled to out/ and bundled ${taskFolders().length} task(s) in ${Date.now() - started} ms`);
}

main().catch((err) => {
  console.error(err.message || err);
  process.exit(1);
});
