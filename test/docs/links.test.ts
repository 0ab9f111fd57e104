// Every link into the README (from each task.json's help, the extension manifest, overview.md,
// SECURITY.md and the README itself) lands on a heading the README has, and every link to a file
// of the repository names a file that exists. A link that lands nowhere is what a user clicks on
// "More" in the task assistant.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT } from '../harness/paths';

const REPO = 'https://github.com/cosign-gc-guard/cosign-gc-guard';

/** GitHub's heading anchor: lower case, punctuation but '-' and '_' dropped, spaces as '-', repeats numbered. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const outsideCode = markdown.replace(/^\s*```[\s\S]*?^\s*```/gm, '');
  for (const m of outsideCode.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const text = m[1].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

interface Link {
  from: string;
  target: string;
}

/** Markdown links `[text](target)` and bare repository URLs in a text. */
function linksIn(text: string, from: string): Link[] {
  const out: Link[] = [];
  for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) out.push({ from, target: m[1] });
  for (const m of text.matchAll(new RegExp(`(?<!\\()${REPO.replace(/[.]/g, '\\.')}[^\\s)"'\`]*`, 'g'))) out.push({ from, target: m[0] });
  return out;
}

/** Every string in a JSON value (help texts, descriptions, labels). */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

function allLinks(): Link[] {
  const links: Link[] = [];
  for (const folder of fs.readdirSync(path.join(ROOT, 'tasks'))) {
    const file = path.join(ROOT, 'tasks', folder, 'task.json');
    if (fs.existsSync(file)) for (const s of strings(JSON.parse(fs.readFileSync(file, 'utf8')))) links.push(...linksIn(s, `tasks/${folder}/task.json`));
  }
  for (const s of strings(JSON.parse(fs.readFileSync(path.join(ROOT, 'vss-extension.json'), 'utf8')))) links.push(...linksIn(s, 'vss-extension.json'));
  for (const md of ['overview.md', 'README.md', 'SECURITY.md', 'CHANGELOG.md', 'docs/DEVELOPING.md']) {
    links.push(...linksIn(fs.readFileSync(path.join(ROOT, md), 'utf8'), md));
  }
  return links;
}

/** Why a link does not land (undefined when it does). */
function brokenBecause(link: Link, readmeAnchors: Set<string>): string | undefined {
  let { target } = link;
  const fromDir = path.posix.dirname(link.from);
  if (target.startsWith(REPO)) {
    const rest = target.slice(REPO.length);
    // GitHub's own pages, and #readme (GitHub's anchor for the README shown under the file list).
    if (rest === '' || rest === '/' || rest === '#readme' || /^\/(issues|pulls|releases|security)(\/|$)/.test(rest)) return undefined;
    const blob = /^\/blob\/main\/([^#]*)(#.*)?$/.exec(rest);
    if (rest.startsWith('#')) target = 'README.md' + rest;
    else if (blob) target = (blob[1] || 'README.md') + (blob[2] ?? '');
    else return `a repository URL of an unknown form`;
  } else if (/^[a-z]+:/i.test(target)) {
    return undefined; // another site: not ours to check offline
  } else if (target.startsWith('#')) {
    target = link.from + target;
  } else {
    target = path.posix.normalize(path.posix.join(fromDir === '.' ? '' : fromDir, target));
  }
  const [file, anchor] = target.split('#');
  if (!fs.existsSync(path.join(ROOT, file))) return `${file} does not exist`;
  if (anchor === undefined) return undefined;
  const anchors = file === 'README.md' ? readmeAnchors : headingAnchors(fs.readFileSync(path.join(ROOT, file), 'utf8'));
  return anchors.has(anchor) ? undefined : `${file} has no heading with the anchor #${anchor}`;
}

describe('docs: links land', () => {
  const readmeAnchors = headingAnchors(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));

  it("the anchor rule is GitHub's (punctuation dropped, repeats numbered, code blocks are not headings)", () => {
    const anchors = headingAnchors('# Cosign@1\n## Troubleshooting: 401 from `/v2/registry/auth`\n```sh\n# not a heading\n```\n## Cosign@1\n');
    assert.deepStrictEqual([...anchors], ['cosign1', 'troubleshooting-401-from-v2registryauth', 'cosign1-1']);
  });

  it("each task.json's More link goes to that task's own section of the README", () => {
    for (const folder of fs.readdirSync(path.join(ROOT, 'tasks'))) {
      const file = path.join(ROOT, 'tasks', folder, 'task.json');
      if (!fs.existsSync(file)) continue;
      const task = JSON.parse(fs.readFileSync(file, 'utf8')) as { name: string; version: { Major: number }; helpMarkDown: string };
      const anchor = `${task.name}${task.version.Major}`.toLowerCase();
      assert.ok(task.helpMarkDown.includes(`[More](${REPO}#${anchor})`), `${folder}: helpMarkDown links to #${anchor}`);
      assert.ok(readmeAnchors.has(anchor), `README has a section #${anchor}`);
    }
  });

  it('every link from a task.json, the manifest, overview.md and the Markdown files into the repository lands', () => {
    const links = allLinks();
    assert.ok(links.length > 20, `found ${links.length} links`);
    const broken = links.map((l) => [l, brokenBecause(l, readmeAnchors)] as const).filter(([, why]) => why);
    assert.deepStrictEqual(
      broken.map(([l, why]) => `${l.from}: ${l.target}: ${why}`),
      [],
    );
  });

  it('the check finds a link that lands nowhere', () => {
    assert.match(brokenBecause({ from: 'overview.md', target: `${REPO}#doregistrygcwait1-the-guard` }, readmeAnchors) ?? '', /no heading/);
    assert.match(brokenBecause({ from: 'README.md', target: 'docs/NOPE.md' }, readmeAnchors) ?? '', /does not exist/);
    assert.strictEqual(brokenBecause({ from: 'README.md', target: 'docs/DEVELOPING.md' }, readmeAnchors), undefined);
  });
});
