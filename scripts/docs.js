#!/usr/bin/env node
// Generates the README's input/output reference from each task.json, between
// the GENERATED markers, so the docs never drift from what ships.
//   node scripts/docs.js          rewrite README.md
//   node scripts/docs.js --check  exit 1 when README.md is stale
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const readme = path.join(root, 'README.md');
const BEGIN = '<!-- BEGIN GENERATED: task-reference (node scripts/docs.js) -->';
const END = '<!-- END GENERATED: task-reference -->';
const ORDER = ['CosignInstallerV1', 'DoRegistryGarbageCollectionV1', 'DoRegistryGcWaitV1', 'CosignV1', 'RegistryTagCheckV1', 'RegistryCleanupV1'];

function cell(text) {
  return String(text ?? '')
    .replace(/\r?\n/g, ' ')
    .replace(/\|/g, '\\|')
    .trim();
}

function taskSection(folder) {
  const task = JSON.parse(fs.readFileSync(path.join(root, 'tasks', folder, 'task.json'), 'utf8'));
  const groups = Object.fromEntries((task.groups || []).map((g) => [g.name, g.displayName]));
  const lines = [];
  lines.push(`### ${task.name}@${task.version.Major}: ${task.friendlyName}`, '', cell(task.description), '');
  lines.push('| input | type | default | group | description |', '|---|---|---|---|---|');
  for (const input of task.inputs) {
    let type = input.type;
    if (input.type === 'pickList' || input.type === 'radio')
      type +=
        ': ' +
        Object.keys(input.options || {})
          .map((o) => `\`${o}\``)
          .join(', ');
    const def = input.defaultValue === undefined || input.defaultValue === '' ? (input.required ? '(required)' : '') : `\`${input.defaultValue}\``;
    lines.push(`| \`${input.name}\` | ${cell(type)} | ${cell(def)} | ${cell(groups[input.groupName] || '')} | ${cell(input.helpMarkDown)} |`);
  }
  lines.push('', '| output | description |', '|---|---|');
  for (const out of task.outputVariables || []) lines.push(`| \`${out.name}\` | ${cell(out.description)} |`);
  lines.push('');
  return lines.join('\n');
}

function generate() {
  const folders = ORDER.filter((f) => fs.existsSync(path.join(root, 'tasks', f, 'task.json')));
  return [BEGIN, '', ...folders.map(taskSection), END].join('\n');
}

const text = fs.readFileSync(readme, 'utf8');
const start = text.indexOf(BEGIN);
const end = text.indexOf(END);
if (start < 0 || end < 0) {
  console.error(`docs: README.md has no ${BEGIN} ... ${END} block`);
  process.exit(1);
}
const updated = text.slice(0, start) + generate() + text.slice(end + END.length);
if (process.argv.includes('--check')) {
  if (updated !== text) {
    console.error('docs: README.md task reference is stale; run node scripts/docs.js');
    process.exit(1);
  }
  console.log('docs: README.md task reference is up to date');
} else {
  fs.writeFileSync(readme, updated);
  console.log('docs: README.md task reference regenerated');
}
