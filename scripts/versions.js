#!/usr/bin/env node
// The versioning rule, kept true by `npm test`: whatever ships changed => its version was bumped.
//
// configs/versions.json records, for each task, its version and a fingerprint of what ships of it
// (task.json without its version, the bundled index.js, icon.png), and for the extension its
// version and a fingerprint of the whole VSIX content (every task's fingerprint, vss-extension.json
// without its version, and the other files it lists). Agents cache a task by its version, and the
// Marketplace refuses a second publish of an extension version, so a change under an unchanged
// version never reaches anyone, or reaches some agents and not others.
//
//   node scripts/versions.js --check             exit 1 when what ships differs from the record, naming
//                                                each task (or the extension) and what to do
//   node scripts/versions.js --record            rewrite the record; refuses a changed fingerprint
//                                                whose version is not above the recorded one
//   node scripts/versions.js --record --base REF the same, but "the recorded one" is the record at the
//                                                git revision REF (e.g. main): a branch that already
//                                                bumped a task records later changes under that bump,
//                                                and a merge of two bumped branches records once
//   --root DIR                                   work on another copy of the repository (the tests)
//
// The fingerprint is of the built bundle, so run `node scripts/build.js` first. esbuild's output is
// a function of the sources and the lockfile's packages only (no absolute path, time or machine
// name reaches a minified bundle; --check refuses a bundle that names the folder it was built in).
'use strict';
const { execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const root = path.resolve(option('--root') || path.join(__dirname, '..'));
const RECORD = path.join(root, 'configs', 'versions.json');
const SHIPPED_PER_TASK = ['task.json', 'index.js', 'icon.png'];

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
const taskVersion = (task) => `${task.version.Major}.${task.version.Minor}.${task.version.Patch}`;

/** "1.2.10" above "1.2.9"; undefined when either is not three whole numbers. */
function compareVersions(a, b) {
  const pa = String(a).split('.').map(Number);
  const pb = String(b).split('.').map(Number);
  if (pa.length !== 3 || pb.length !== 3 || [...pa, ...pb].some((n) => !Number.isInteger(n) || n < 0)) return undefined;
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  return 0;
}

/** The task folders the extension ships, from vss-extension.json's task contributions. */
function shippedTasks(manifest) {
  return manifest.contributions
    .filter((c) => c.type === 'ms.vss-distributed-task.task')
    .map((c) => path.basename(c.properties.name))
    .sort();
}

/** A file's bytes as it ships; a task.json or the manifest without its version (JSON, so formatting does not count). */
function shippedBytes(file) {
  const bytes = fs.readFileSync(file);
  const base = path.basename(file);
  if (base !== 'task.json' && base !== 'vss-extension.json') return bytes;
  const json = JSON.parse(bytes.toString('utf8'));
  delete json.version;
  return Buffer.from(JSON.stringify(json));
}

/** sha256 over each file's name (relative to root, '/'-separated) and the sha256 of its shipped bytes. */
function fingerprintOf(files) {
  const lines = files.map((f) => `${path.relative(root, f).split(path.sep).join('/')} ${sha256(shippedBytes(f))}`);
  return 'sha256:' + sha256(lines.join('\n'));
}

function filesUnder(p) {
  if (!fs.statSync(p).isDirectory()) return [p];
  return fs
    .readdirSync(p)
    .sort()
    .flatMap((n) => filesUnder(path.join(p, n)));
}

/** What ships now: each task's version and fingerprint, and the extension's. */
function currentState() {
  const manifest = readJson(path.join(root, 'vss-extension.json'));
  const tasks = {};
  const problems = [];
  for (const folder of shippedTasks(manifest)) {
    const dir = path.join(root, 'tasks', folder);
    const files = SHIPPED_PER_TASK.map((f) => path.join(dir, f));
    const missing = files.filter((f) => !fs.existsSync(f));
    if (missing.length) throw new Error(`${missing.map((f) => path.relative(root, f)).join(', ')} missing: run node scripts/build.js first`);
    const bundle = fs.readFileSync(path.join(dir, 'index.js'), 'utf8');
    if (bundle.includes(root))
      problems.push(`${folder}: its index.js names the folder it was built in (${root}); the fingerprint would differ on every machine`);
    const task = readJson(path.join(dir, 'task.json'));
    if (typeof task.releaseNotes !== 'string' || task.releaseNotes.trim() === '') problems.push(`${folder}: task.json has no releaseNotes`);
    tasks[folder] = { version: taskVersion(task), fingerprint: fingerprintOf(files) };
  }
  const taskFolders = new Set(Object.keys(tasks).map((t) => `tasks/${t}`));
  const own = manifest.files
    .map((f) => f.path)
    .filter((p) => !taskFolders.has(path.posix.dirname(p)))
    .flatMap((p) => filesUnder(path.join(root, p)));
  const detailsPath = manifest.content?.details?.path;
  if (detailsPath && !own.includes(path.join(root, detailsPath))) own.push(path.join(root, detailsPath));
  const extensionFiles = [path.join(root, 'vss-extension.json'), ...own.sort()];
  const taskLines = Object.entries(tasks).map(([t, v]) => `${t} ${v.fingerprint}`);
  const extension = { version: manifest.version, fingerprint: 'sha256:' + sha256(fingerprintOf(extensionFiles) + '\n' + taskLines.join('\n')) };
  const changelog = path.join(root, 'CHANGELOG.md');
  const log = fs.existsSync(changelog) ? fs.readFileSync(changelog, 'utf8') : '';
  if (!new RegExp(`^## ${manifest.version.replace(/\./g, '\\.')}(\\s|$)`, 'm').test(log)) {
    problems.push(`CHANGELOG.md has no '## ${manifest.version}' section for the extension version in vss-extension.json`);
  }
  return { extension, tasks, problems };
}

function readRecord(base) {
  if (!base) return fs.existsSync(RECORD) ? readJson(RECORD) : { extension: {}, tasks: {} };
  try {
    execFileSync('git', ['rev-parse', '--verify', '--quiet', `${base}^{commit}`], { cwd: root, stdio: 'ignore' });
  } catch {
    throw new Error(`--base ${base} is not a git revision of ${root}`);
  }
  let text;
  try {
    text = execFileSync('git', ['show', `${base}:configs/versions.json`], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    // A revision from before the record existed bounds nothing: every version is new to it.
    return { extension: {}, tasks: {} };
  }
  return JSON.parse(text);
}

/**
 * The record as one line per entry with a blank line between entries: git merges changes to lines
 * that an unchanged line separates, so branches that change different tasks merge it cleanly.
 */
function writeRecord(state) {
  const line = (v) => `{ "version": ${JSON.stringify(v.version)}, "fingerprint": ${JSON.stringify(v.fingerprint)} }`;
  const taskLines = Object.entries(state.tasks).map(([t, v]) => `    ${JSON.stringify(t)}: ${line(v)}`);
  const text = `{\n  "extension": ${line(state.extension)},\n\n  "tasks": {\n${taskLines.join(',\n\n')}\n  }\n}\n`;
  fs.writeFileSync(RECORD, text);
}

/** Why `now` may not be recorded over `was` (undefined when it may). */
function refusal(what, was, now) {
  if (!was || !was.fingerprint) return undefined;
  const order = compareVersions(now.version, was.version);
  if (order === undefined) return `${what}: version ${now.version} or ${was.version} is not major.minor.patch`;
  if (order < 0) return `${what}: version ${now.version} is below the recorded ${was.version}`;
  if (now.fingerprint !== was.fingerprint && order === 0) {
    return `${what}: what ships changed, but its version is still ${was.version}: bump it (patch for a fix, minor for a new input or output)`;
  }
  return undefined;
}

function check(state) {
  const record = readRecord();
  const out = [...state.problems];
  const compare = (what, rec, now, bumpHint) => {
    if (!rec || !rec.fingerprint) out.push(`${what}: not in configs/versions.json: run node scripts/versions.js --record`);
    else if (rec.fingerprint !== now.fingerprint && rec.version === now.version)
      out.push(`${what}: what ships changed since ${rec.version} was recorded: ${bumpHint}`);
    else if (rec.fingerprint !== now.fingerprint || rec.version !== now.version) {
      out.push(`${what}: ${now.version} differs from the record (${rec.version}): run node scripts/versions.js --record`);
    }
  };
  for (const [t, now] of Object.entries(state.tasks)) {
    compare(t, record.tasks?.[t], now, `bump its version in tasks/${t}/task.json and its releaseNotes, then run node scripts/versions.js --record`);
  }
  for (const t of Object.keys(record.tasks ?? {})) if (!state.tasks[t]) out.push(`${t}: recorded but no longer shipped: run node scripts/versions.js --record`);
  compare(
    'extension',
    record.extension,
    state.extension,
    'bump version in vss-extension.json, add its CHANGELOG.md section, then run node scripts/versions.js --record',
  );
  return out;
}

function record(state, base) {
  const was = readRecord(base);
  const out = [...state.problems];
  for (const [t, now] of Object.entries(state.tasks)) {
    const why = refusal(t, was.tasks?.[t], now);
    if (why) out.push(why + ` in tasks/${t}/task.json`);
  }
  const why = refusal('extension', was.extension, state.extension);
  if (why) out.push(why + ' in vss-extension.json (and add its CHANGELOG.md section)');
  if (out.length === 0) writeRecord(state);
  return out;
}

function main() {
  const state = currentState();
  if (args.includes('--record')) {
    const problems = record(state, option('--base'));
    if (problems.length) {
      console.error(`versions: not recorded:\n  ${problems.join('\n  ')}`);
      process.exit(1);
    }
    console.log(`versions: recorded extension ${state.extension.version} and ${Object.keys(state.tasks).length} task(s) in configs/versions.json`);
    return;
  }
  const problems = check(state);
  if (problems.length) {
    console.error(`versions: what ships does not match configs/versions.json:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  const list = Object.entries(state.tasks).map(([t, v]) => `${t} ${v.version}`);
  console.log(`versions: up to date: extension ${state.extension.version}; ${list.join(', ')}`);
}

try {
  main();
} catch (err) {
  console.error(`versions: ${err.message || err}`);
  process.exit(1);
}
