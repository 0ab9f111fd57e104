// The packaging test: build (or reuse) the dev VSIX, unpack it, check every
// task.json inside it the way tfx should but does not (tfx only warns), check
// the manifest's contributions and the DigitalOcean endpoint type, then run
// the installer from an unpacked copy with no node_modules anywhere above it.
// It iterates over whatever tasks the VSIX holds, so tasks added later are
// covered without touching this file.
import * as assert from 'assert';
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import { isBuiltin } from 'module';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { Mirror, readOnce, sha256, startMirror } from '../harness/mirror';
import { ROOT, tools } from '../harness/paths';
import { agentEnv, describeRun, runTask } from '../harness/run-task';
import { createTestSigstore } from '../harness/sigstore';
import { startEmulator } from '../harness/emulator';
import { onlyOn } from '../helpers/skip';

const TASK_CATEGORIES = [
  'Build',
  'Utility',
  'Test',
  'Package',
  'Deploy',
  'Azure Repos',
  'Azure Boards',
  'Azure Pipelines',
  'Azure Test Plans',
  'Azure Artifacts',
];
const INPUT_TYPES = ['boolean', 'filePath', 'multiLine', 'pickList', 'radio', 'secureFile', 'string', 'int', 'identities', 'querycontrol'];
/**
 * The lowest agent with the Node20_1 handler: "Agent version 3.232.1 is the first version that
 * supports Node20_1 handler" (microsoft/azure-pipelines-tasks, docs/migrateNode20.md). Agents from
 * 4.265.1 on also have Node24 (docs/migrateNode24.md) and pick it; older ones run Node20_1. Both
 * handlers point at the same bundle.
 */
const MIN_AGENT_FOR_NODE20_1 = '3.232.1';
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function vsixPath(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'vss-extension.json'), 'utf8'));
  const dev = JSON.parse(fs.readFileSync(path.join(ROOT, 'configs', 'dev.json'), 'utf8'));
  return path.join(ROOT, 'dist', 'dev', `${dev.publisher}.${manifest.id}-${manifest.version}.vsix`);
}

function newestMtime(p: string): number {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...fs.readdirSync(p).map((f) => newestMtime(path.join(p, f))));
}

/** The dev VSIX, repackaged when missing or older than anything it packs (CGG_VSIX=<file> checks another one as is). */
function ensureVsix(): string {
  if (process.env['CGG_VSIX']) return path.resolve(process.env['CGG_VSIX']);
  const vsix = vsixPath();
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'vss-extension.json'), 'utf8')) as { files: { path: string }[] };
  const inputs = ['vss-extension.json', 'overview.md', ...manifest.files.map((f) => f.path)].map((p) => path.join(ROOT, p)).filter((p) => fs.existsSync(p));
  if (!fs.existsSync(vsix) || fs.statSync(vsix).mtimeMs < Math.max(...inputs.map(newestMtime))) {
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'package.js'), '--dev'], { cwd: ROOT, stdio: 'pipe' });
  }
  assert.ok(fs.existsSync(vsix), `${vsix} was not written`);
  return vsix;
}

/** A small zip reader (central directory + stored/deflated entries), for machines without unzip. */
export function unzipWithNode(zipFile: string, dest: string): void {
  const buf = fs.readFileSync(zipFile);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${zipFile}: no end of central directory`);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  for (let n = 0; n < count; n++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`${zipFile}: bad central directory entry ${n}`);
    const method = buf.readUInt16LE(p + 10);
    const compressed = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    const target = path.resolve(dest, name);
    if (!target.startsWith(path.resolve(dest) + path.sep)) throw new Error(`${zipFile}: entry escapes the folder: ${name}`);
    if (name.endsWith('/')) {
      fs.mkdirSync(target, { recursive: true });
      continue;
    }
    if (buf.readUInt32LE(local) !== 0x04034b50) throw new Error(`${zipFile}: bad local header for ${name}`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(start, start + compressed);
    const data = method === 0 ? raw : method === 8 ? zlib.inflateRawSync(raw) : undefined;
    if (!data) throw new Error(`${zipFile}: ${name} uses compression method ${method}`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, data);
  }
}

function unpack(vsix: string, dest: string): void {
  const which = spawnSync('sh', ['-c', 'command -v unzip'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim() && !process.env['CGG_NO_UNZIP']) {
    execFileSync('unzip', ['-q', '-o', vsix, '-d', dest]);
  } else {
    unzipWithNode(vsix, dest);
  }
}

function walk(dir: string, base = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const full = path.join(dir, d.name);
    return d.isDirectory() ? walk(full, base) : [path.relative(base, full).split(path.sep).join('/')];
  });
}

/** A settableVariables pattern (may end in *) admits a name, case-insensitively. */
function allows(patterns: string[], name: string): boolean {
  return patterns.some((p) => {
    const re = new RegExp(
      '^' +
        p
          .split('*')
          .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
          .join('.*') +
        '$',
      'i',
    );
    return re.test(name);
  });
}

interface TaskJson {
  id: string;
  dataSourceBindings?: { target: string; endpointId: string; dataSourceName: string; resultTemplate?: string }[];
  name: string;
  friendlyName: string;
  description?: string;
  category: string;
  version: { Major: number; Minor: number; Patch: number };
  minimumAgentVersion?: string;
  instanceNameFormat: string;
  groups?: { name: string; displayName: string }[];
  inputs?: {
    name: string;
    label: string;
    type: string;
    helpMarkDown?: string;
    options?: Record<string, string>;
    groupName?: string;
    defaultValue?: string;
    required?: boolean;
  }[];
  outputVariables?: { name: string; description?: string }[];
  execution?: Record<string, { target: string }>;
  restrictions?: { commands?: { mode?: string }; settableVariables?: { allowed?: string[] } };
}

describe('VSIX packaging', function () {
  this.timeout(180_000);
  let vsix: string;
  let unpacked: string;
  let files: string[];
  let taskDirs: string[];
  let tasks: Map<string, TaskJson>;
  let vsoManifest: { contributions: { id: string; type: string; properties: Record<string, unknown> }[] };

  before(() => {
    vsix = ensureVsix();
    unpacked = fs.mkdtempSync(path.join(os.tmpdir(), 'cgg-vsix-'));
    unpack(vsix, unpacked);
    files = walk(unpacked);
    taskDirs = files
      .filter((f) => /^tasks\/[^/]+\/task\.json$/.test(f))
      .map((f) => path.posix.dirname(f))
      .sort();
    tasks = new Map(taskDirs.map((d) => [d, JSON.parse(fs.readFileSync(path.join(unpacked, d, 'task.json'), 'utf8')) as TaskJson]));
    vsoManifest = JSON.parse(fs.readFileSync(path.join(unpacked, 'extension.vsomanifest'), 'utf8'));
  });
  after(() => {
    if (unpacked) fs.rmSync(unpacked, { recursive: true, force: true });
  });

  it('the pure-Node zip reader unpacks the VSIX the same as unzip', function () {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'cgg-vsix-node-'));
    try {
      unzipWithNode(vsix, other);
      assert.deepStrictEqual(walk(other).sort(), [...files].sort());
      for (const f of files) assert.ok(fs.readFileSync(path.join(other, f)).equals(fs.readFileSync(path.join(unpacked, f))), f);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('holds every task folder of the repository, each with task.json, icon and bundle', () => {
    const repoTasks = fs
      .readdirSync(path.join(ROOT, 'tasks'))
      .filter((d) => fs.existsSync(path.join(ROOT, 'tasks', d, 'task.json')))
      .map((d) => `tasks/${d}`)
      .sort();
    assert.ok(taskDirs.length > 0, 'at least one task');
    assert.deepStrictEqual(taskDirs, repoTasks);
    for (const d of taskDirs) assert.ok(files.includes(`${d}/icon.png`), `${d}/icon.png`);
    assert.ok(!files.some((f) => f.includes('node_modules/')), 'no node_modules in the VSIX');
    assert.ok(!files.some((f) => f.endsWith('.ts')), 'no TypeScript sources in the VSIX');
  });

  it('every task.json passes the checks tfx only warns about, and more', () => {
    const ids = new Set<string>();
    const names = new Set<string>();
    for (const [dir, t] of tasks) {
      const where = `${dir}/task.json`;
      assert.match(t.id, GUID, `${where}: id is a GUID`);
      assert.ok(!ids.has(t.id.toLowerCase()), `${where}: id ${t.id} is unique`);
      ids.add(t.id.toLowerCase());
      assert.match(t.name, /^[A-Za-z0-9-]+$/, `${where}: name`);
      assert.ok(!names.has(t.name), `${where}: name ${t.name} is unique`);
      names.add(t.name);
      assert.ok(
        typeof t.friendlyName === 'string' && t.friendlyName.length > 0 && t.friendlyName.length <= 40,
        `${where}: friendlyName '${t.friendlyName}' is 1-40 characters`,
      );
      assert.ok(typeof t.instanceNameFormat === 'string' && t.instanceNameFormat.trim() !== '', `${where}: instanceNameFormat`);
      assert.ok(t.description && t.description.trim(), `${where}: description`);
      assert.ok(TASK_CATEGORIES.includes(t.category), `${where}: category '${t.category}'`);
      assert.ok(t.version && ['Major', 'Minor', 'Patch'].every((k) => Number.isInteger(t.version[k as 'Major'])), `${where}: version {Major, Minor, Patch}`);
      assert.strictEqual(t.minimumAgentVersion, MIN_AGENT_FOR_NODE20_1, `${where}: minimumAgentVersion is the first agent with Node20_1`);
      assert.strictEqual(t.execution?.Node20_1?.target, t.execution?.Node24?.target, `${where}: both handlers run the same bundle`);
      // A name that ends in an input's value reads "… " when that input is empty.
      const last = /\$\((\w+)\)\s*$/.exec(t.instanceNameFormat ?? '')?.[1];
      const lastInput = t.inputs?.find((i) => i.name === last);
      assert.ok(!last || lastInput?.required || (lastInput?.defaultValue ?? '') !== '', `${where}: instanceNameFormat ends in $(${last}), which may be empty`);

      // Handlers: Node20_1 and Node24, targets inside the VSIX, self-contained bundles.
      for (const h of ['Node20_1', 'Node24']) {
        const target = t.execution?.[h]?.target;
        assert.ok(target, `${where}: execution.${h}.target`);
        const file = path.posix.join(dir, target!.replace(/\\/g, '/'));
        assert.ok(files.includes(file), `${where}: ${h} target ${file} is in the VSIX`);
        const code = fs.readFileSync(path.join(unpacked, file), 'utf8');
        const requires = [...code.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]);
        const external = requires.filter((r) => !isBuiltin(r) && !(r.startsWith('.') && files.includes(path.posix.join(path.posix.dirname(file), r))));
        assert.deepStrictEqual([...new Set(external)], [], `${where}: ${file} requires only Node built-ins (a bundle)`);
      }
      for (const h of Object.keys(t.execution ?? {})) {
        assert.ok(!['Node', 'Node6', 'Node10', 'Node16'].includes(h), `${where}: deprecated handler ${h}`);
      }

      // Inputs: names, labels, help, pickList options, groups.
      const groups = new Set((t.groups ?? []).map((g) => g.name));
      const inputNames = new Set<string>();
      for (const i of t.inputs ?? []) {
        const at = `${where}: input '${i.name}'`;
        assert.match(i.name, /^[A-Za-z][A-Za-z0-9]*$/, `${at}: name`);
        assert.ok(!inputNames.has(i.name), `${at}: unique`);
        inputNames.add(i.name);
        assert.ok(typeof i.label === 'string' && i.label.trim() !== '', `${at}: label`);
        assert.ok(typeof i.helpMarkDown === 'string' && i.helpMarkDown.trim() !== '', `${at}: helpMarkDown`);
        assert.ok(INPUT_TYPES.includes(i.type) || /^connectedService:.+$/.test(i.type), `${at}: type '${i.type}'`);
        // An editable pickList filled by a data source binding has no fixed options.
        const bound = (t.dataSourceBindings ?? []).some((b) => b.target === i.name);
        if ((i.type === 'pickList' || i.type === 'radio') && !bound) {
          assert.ok(i.options && Object.keys(i.options).length > 0, `${at}: options`);
          if (i.defaultValue) assert.ok(Object.keys(i.options!).includes(i.defaultValue), `${at}: default '${i.defaultValue}' is an option`);
        }
        if (i.groupName) assert.ok(groups.has(i.groupName), `${at}: group '${i.groupName}' exists`);
      }

      // Outputs, and restrictions that would silently block them.
      const outputNames = new Set<string>();
      for (const o of t.outputVariables ?? []) {
        assert.match(o.name, /^[A-Za-z][A-Za-z0-9]*$/, `${where}: output '${o.name}'`);
        assert.ok(!outputNames.has(o.name), `${where}: output '${o.name}' unique`);
        outputNames.add(o.name);
        assert.ok(o.description && o.description.trim(), `${where}: output '${o.name}' description`);
      }
      const allowed = t.restrictions?.settableVariables?.allowed;
      if (allowed) {
        for (const o of outputNames) assert.ok(allows(allowed, o), `${where}: restrictions allow output '${o}'`);
      }
    }
    const installer = [...tasks.values()].find((t) => t.name === 'CosignInstaller');
    assert.ok(installer, 'CosignInstaller is in the VSIX');
    assert.deepStrictEqual((installer.outputVariables ?? []).map((o) => o.name).sort(), [
      'cacheHit',
      'cosignPath',
      'cosignSha256',
      'cosignVersion',
      'verifiedBy',
    ]);
    const allowed = installer.restrictions?.settableVariables?.allowed;
    if (allowed) assert.ok(allows(allowed, 'PATH'), 'the installer may prepend PATH under its restrictions');
  });

  it("the manifest's task contributions are exactly the task folders", () => {
    const ids = vsoManifest.contributions.map((c) => c.id);
    assert.strictEqual(new Set(ids).size, ids.length, 'contribution ids are unique');
    const contributed = vsoManifest.contributions
      .filter((c) => c.type === 'ms.vss-distributed-task.task')
      .map((c) => String(c.properties['name']).replace(/\\/g, '/').replace(/\/+$/, ''))
      .sort();
    assert.deepStrictEqual(contributed, taskDirs);
  });

  it('declares the digitalocean endpoint type with the token scheme and apitoken', () => {
    const endpoints = vsoManifest.contributions.filter((c) => c.type === 'ms.vss-endpoint.service-endpoint-type');
    const ep = endpoints.find((c) => c.properties['name'] === 'digitalocean');
    assert.ok(ep, 'endpoint type digitalocean');
    assert.deepStrictEqual((ep as { targets?: string[] }).targets, ['ms.vss-endpoint.endpoint-types']);
    const url = ep.properties['url'] as { value?: string } | undefined;
    assert.ok(url && url.value, 'the endpoint has an (overridable) URL with a default');
    const schemes = ep.properties['authenticationSchemes'] as { type: string; inputDescriptors?: { id: string; isConfidential?: boolean }[] }[];
    const token = schemes.find((s) => s.type === 'ms.vss-endpoint.endpoint-auth-scheme-token');
    assert.ok(token, 'token authentication scheme');
    const apitoken = token.inputDescriptors?.find((d) => d.id === 'apitoken');
    assert.ok(apitoken, 'apitoken input');
    assert.strictEqual(apitoken.isConfidential, true, 'apitoken is confidential');
    // Every connectedService input of a task refers to a declared or built-in endpoint type.
    const builtIn = ['azurerm', 'dockerregistry', 'github', 'generic', 'kubernetes', 'externalnpmregistry', 'ssh'];
    const declared = new Set([...builtIn, ...endpoints.map((e) => String(e.properties['name']).toLowerCase())]);
    for (const [dir, t] of tasks) {
      for (const i of t.inputs ?? []) {
        const m = /^connectedService:(.+)$/.exec(i.type);
        if (m)
          assert.ok(
            m[1].split(/[,:]/).every((t) => declared.has(t.trim().toLowerCase())),
            `${dir}: input '${i.name}' uses undeclared endpoint type ${m[1]}`,
          );
      }
    }
  });

  it('is publishable: LICENSE, links (repository, issues, license), repository, branding, categories, tags, the endpoint icon', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'vss-extension.json'), 'utf8'));
    const repo = manifest.repository?.uri as string;
    assert.match(repo, /^https:\/\/github\.com\/[\w.-]+\/[\w.-]+$/, 'repository uri');
    assert.strictEqual(manifest.repository.type, 'git');
    for (const k of ['repository', 'issues', 'license'])
      assert.ok(String(manifest.links?.[k]?.uri ?? '').startsWith(repo), `links.${k} points at the repository`);
    assert.match(manifest.branding?.color ?? '', /^#[0-9a-f]{6}$/i, 'branding color');
    assert.ok(['dark', 'light'].includes(manifest.branding?.theme), 'branding theme');
    assert.ok(manifest.categories.length > 0 && manifest.tags.length > 0, 'categories and tags');
    assert.strictEqual(manifest.content?.license?.path, 'LICENSE');
    assert.ok(files.includes('LICENSE'), 'LICENSE is in the VSIX');
    assert.match(fs.readFileSync(path.join(unpacked, 'LICENSE'), 'utf8'), /^MIT License/);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    assert.strictEqual(pkg.license, 'MIT', 'package.json and LICENSE agree');
    const ep = vsoManifest.contributions.find((c) => c.properties['name'] === 'digitalocean');
    const icon = String(ep?.properties['iconUrl'] ?? '');
    assert.ok(icon && files.includes(icon), `the endpoint icon ${icon} is in the VSIX`);
  });

  it('npm run package refuses a release VSIX without a publisher, in one line, and writes nothing', () => {
    const overrides = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cgg-pub-')), 'release.json');
    fs.writeFileSync(overrides, JSON.stringify({ publisher: 'YOUR-PUBLISHER-ID', public: true }));
    const before = fs.existsSync(path.join(ROOT, 'dist')) ? fs.readdirSync(path.join(ROOT, 'dist')).sort() : [];
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'package.js'), '--overrides', overrides], { encoding: 'utf8' });
    assert.strictEqual(r.status, 1);
    assert.match(r.stderr.trim(), /^package: no Marketplace publisher set: put your publisher id in .*release\.json/);
    assert.strictEqual(r.stderr.trim().split('\n').length, 1);
    const after = fs.existsSync(path.join(ROOT, 'dist')) ? fs.readdirSync(path.join(ROOT, 'dist')).sort() : [];
    assert.deepStrictEqual(after, before, 'nothing written to dist/');
    assert.ok(
      !vsix.startsWith(path.join(ROOT, 'dist') + path.sep + path.basename(vsix)),
      "the tests' VSIX is not in dist/ itself, where dist/*.vsix would publish it",
    );
  });

  /** The DigitalOcean endpoint type, as the VSIX declares it. */
  function doEndpointType(): {
    dataSources: { name: string; endpointUrl: string; resultSelector: string }[];
    authenticationSchemes: { type: string; headers?: { name: string; value: string }[] }[];
  } {
    const ep = vsoManifest.contributions.find((c) => c.type === 'ms.vss-endpoint.service-endpoint-type' && c.properties['name'] === 'digitalocean');
    return ep!.properties as never;
  }

  it('the DigitalOcean connection: a TestConnection data source ("Verify") and a Registries one, asked with Bearer <token>', () => {
    const ep = doEndpointType();
    const names = ep.dataSources.map((d) => d.name);
    assert.ok(names.includes('TestConnection'), 'TestConnection backs the Verify button');
    for (const d of ep.dataSources) {
      assert.ok(d.endpointUrl.startsWith('{{endpoint.url}}/v2/'), `${d.name}: on the connection's own URL`);
      assert.match(d.resultSelector, /^jsonpath:\$(\.[a-z_]+)+(\[\*\])?$/, `${d.name}: a JSONPath result selector`);
    }
    // The token scheme's default header is the bare token; DigitalOcean wants "Bearer <token>".
    const token = ep.authenticationSchemes.find((a) => a.type === 'ms.vss-endpoint.endpoint-auth-scheme-token');
    assert.deepStrictEqual(token?.headers, [{ name: 'Authorization', value: 'Bearer {{endpoint.apitoken}}' }]);
  });

  it('every data source binding names an existing input, a DigitalOcean connection input and a declared data source', () => {
    const declared = new Set(doEndpointType().dataSources.map((d) => d.name));
    let bindings = 0;
    for (const [dir, t] of tasks) {
      for (const b of t.dataSourceBindings ?? []) {
        bindings++;
        const target = t.inputs?.find((i) => i.name === b.target);
        assert.ok(target, `${dir}: binding target '${b.target}' is an input`);
        const m = /^\$\((\w+)\)$/.exec(b.endpointId);
        const conn = t.inputs?.find((i) => i.name === m?.[1]);
        assert.strictEqual(conn?.type, 'connectedService:digitalocean', `${dir}: binding endpointId ${b.endpointId} is a DigitalOcean connection input`);
        assert.ok(declared.has(b.dataSourceName), `${dir}: data source '${b.dataSourceName}' is declared by the endpoint type`);
        assert.ok(
          target.type === 'pickList' && (target as { properties?: Record<string, string> }).properties?.EditableOptions === 'True',
          `${dir}: '${b.target}' is an editable pickList`,
        );
      }
    }
    assert.strictEqual(bindings, 4, 'the four tasks that take a registry bind it');
  });

  it('the data sources, evaluated as Azure DevOps would against the emulated API, list its registries', async () => {
    const emu = await startEmulator({ registries: ['demo-registry', 'second-registry'] });
    try {
      const ep = doEndpointType();
      const header = ep.authenticationSchemes[0].headers![0];
      for (const d of ep.dataSources) {
        const res = await fetch(d.endpointUrl.replace('{{endpoint.url}}', emu.apiUrl), {
          headers: { [header.name]: header.value.replace('{{endpoint.apitoken}}', emu.token), accept: 'application/json' },
        });
        assert.strictEqual(res.status, 200, `${d.name} authenticates as DigitalOcean expects`);
        // The JSONPath of the selector: $.a.b or $.a[*].
        const body = (await res.json()) as Record<string, unknown>;
        const pathParts = d.resultSelector
          .replace(/^jsonpath:\$\./, '')
          .replace(/\[\*\]$/, '')
          .split('.');
        const selected = pathParts.reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], body);
        assert.ok(Array.isArray(selected), `${d.name} selects a list`);
        if (d.name === 'Registries') assert.deepStrictEqual((selected as { name: string }[]).map((r) => r.name).sort(), ['demo-registry', 'second-registry']);
      }
      const wrong = await fetch(`${emu.apiUrl}/v2/registries`, { headers: { Authorization: emu.token } });
      assert.strictEqual(wrong.status, 401, 'the bare token (the scheme default) is refused: the Bearer header is needed');
    } finally {
      await emu.stop();
    }
  });

  describe('running the unpacked installer with no node_modules', () => {
    let mirror: Mirror;
    let trustedRootJson = '';
    before(async function () {
      onlyOn(this, ['linux-x64'], 'the installer downloads the linux-amd64 cosign the tests provision');
      mirror = await startMirror();
      const sigstore = await createTestSigstore();
      trustedRootJson = sigstore.trustedRoot();
      mirror.addRelease('3.1.1', readOnce(tools.cosign3), { bundle: await sigstore.signBlob(readOnce(tools.cosign3)) });
    });
    after(async () => {
      await mirror?.close();
    });

    it('succeeds from a copy in the OS temp folder', async () => {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 'cgg-vsix-run-'));
      try {
        const copy = path.join(home, 'CosignInstallerV1');
        fs.cpSync(path.join(unpacked, 'tasks', 'CosignInstallerV1'), copy, { recursive: true });
        for (let d = copy; ; d = path.dirname(d)) {
          assert.ok(!fs.existsSync(path.join(d, 'node_modules')), `no node_modules at ${d}`);
          if (path.dirname(d) === d) break;
        }
        const entry = path.join(copy, 'index.js');
        const env = agentEnv(path.join(home, 'agent'));
        const sha = sha256(readOnce(tools.cosign3));
        const run = await runTask('CosignInstallerV1', {
          entry,
          inputs: { version: '3.1.1', checksum: sha, downloadBaseUrl: mirror.url },
          env: { ...env, NODE_PATH: undefined },
        });
        assert.strictEqual(run.result, 'Succeeded', describeRun(run));
        assert.strictEqual(run.outputs['cosignSha256'], sha);
        assert.strictEqual(run.outputs['cacheHit'], 'false');
        assert.ok(run.commands.some((c) => c.command === 'task.prependpath' && c.message === path.dirname(run.outputs['cosignPath'])));
        assert.strictEqual(mirror.count('/v3.1.1/cosign-linux-amd64'), 1);
      } finally {
        fs.rmSync(home, { recursive: true, force: true });
      }
    });

    it('verifies a release signature from the copy: @sigstore/verify and the shipped trusted root are inside the one bundled file', async () => {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 'cgg-vsix-sig-'));
      try {
        const copy = path.join(home, 'CosignInstallerV1');
        fs.cpSync(path.join(unpacked, 'tasks', 'CosignInstallerV1'), copy, { recursive: true });
        const root = path.join(home, 'trusted_root.json');
        fs.writeFileSync(root, trustedRootJson);
        const env = agentEnv(path.join(home, 'agent'));
        mirror.reset();
        const run = await runTask('CosignInstallerV1', {
          entry: path.join(copy, 'index.js'),
          inputs: { version: '3.1.1', downloadBaseUrl: mirror.url, trustedRoot: root },
          env: { ...env, NODE_PATH: undefined },
        });
        assert.strictEqual(run.result, 'Succeeded', describeRun(run));
        assert.strictEqual(run.outputs['verifiedBy'], 'signature:keyless@projectsigstore.iam.gserviceaccount.com');
        assert.strictEqual(mirror.count('/v3.1.1/cosign-linux-amd64.sigstore.json'), 1);
        // And the shipped public-good root (embedded in index.js) is loaded: our test CA is not in it.
        const refused = await runTask('CosignInstallerV1', {
          entry: path.join(copy, 'index.js'),
          inputs: { version: '3.1.1', downloadBaseUrl: mirror.url },
          env: { ...agentEnv(path.join(home, 'agent2')), NODE_PATH: undefined },
        });
        assert.strictEqual(refused.result, 'Failed', describeRun(refused));
        assert.match(refused.errors[0], /certificate authority of the Sigstore public-good trusted root shipped with the task/);
      } finally {
        fs.rmSync(home, { recursive: true, force: true });
      }
    });
  });
});
