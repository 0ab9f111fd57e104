#!/usr/bin/env node
// Writes dist/<publisher>.cosign-gc-guard-<version>.vsix with tfx, offline.
// The publisher comes from an overrides file: configs/release.json by
// default, or any file with --overrides FILE. A release without a real
// publisher is refused. --dev (the tests' build) uses configs/dev.json and
// writes to dist/dev/, where `tfx extension publish --vsix dist/*.vsix`
// cannot pick it up by mistake.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
let overrides = path.join(root, 'configs', 'release.json');
if (args.includes('--dev')) overrides = path.join(root, 'configs', 'dev.json');
const i = args.indexOf('--overrides');
if (i >= 0 && args[i + 1]) overrides = path.resolve(args[i + 1]);

const manifest = JSON.parse(fs.readFileSync(path.join(root, 'vss-extension.json'), 'utf8'));
for (const f of manifest.files) {
  if (!fs.existsSync(path.join(root, f.path))) {
    console.error(`package: ${f.path} is missing; run npm run build first.`);
    process.exit(1);
  }
}
const dev = args.includes('--dev');
const publisher = JSON.parse(fs.readFileSync(overrides, 'utf8')).publisher;
if (!dev && (typeof publisher !== 'string' || !/^[A-Za-z0-9][\w.-]*$/.test(publisher) || /YOUR-PUBLISHER-ID/i.test(publisher))) {
  console.error(
    `package: no Marketplace publisher set: put your publisher id in ${path.relative(root, overrides)} ({"publisher": "<your id>", "public": false}) or pass --overrides FILE.`,
  );
  process.exit(1);
}
const out = dev ? path.join(root, 'dist', 'dev') : path.join(root, 'dist');
fs.mkdirSync(out, { recursive: true });
const tfx = path.join(root, 'node_modules', '.bin', 'tfx');
execFileSync(
  tfx,
  [
    'extension',
    'create',
    '--root',
    root,
    '--manifests',
    'vss-extension.json',
    '--overrides-file',
    overrides,
    '--output-path',
    out,
    '--no-prompt',
    '--no-color',
  ],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
);
const vsix = path.join(out, `${publisher}.${manifest.id}-${manifest.version}.vsix`);
if (!fs.existsSync(vsix)) {
  console.error(`package: tfx did not write ${vsix}`);
  process.exit(1);
}
console.log(`package: ${path.relative(root, vsix)} (${(fs.statSync(vsix).size / 1024).toFixed(0)} KiB)`);
