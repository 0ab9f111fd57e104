#!/usr/bin/env node
// Which Debian mirror this machine's apt uses, so the test tools are fetched from the mirror the
// machine already trusts (a corporate mirror, a cloud provider's) instead of a host written here.
// Reads the one-line format (/etc/apt/sources.list and sources.list.d/*.list: `deb [opts] URI
// suite components`) and the deb822 format (sources.list.d/*.sources: `Types:`, `URIs:`, `Suites:`,
// `Enabled:` fields), both described in sources.list(5):
// https://manpages.debian.org/bookworm/apt/sources.list.5.en.html
// The security archive is skipped: it serves only the *-security suites.
//   node scripts/apt-mirror.js          prints the mirror (CGG_DEBIAN_MIRROR when set), or one line
//                                       on stderr saying how to set it, and exits 2
'use strict';
const fs = require('fs');
const path = require('path');

/** The deb URIs of a one-line sources file, with their suite. */
function fromOneLine(text) {
  const out = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (m) out.push({ uri: m[1], suites: [m[2]] });
  }
  return out;
}

/** The deb URIs of a deb822 .sources file, stanza by stanza (Enabled: no skipped). */
function fromDeb822(text) {
  const out = [];
  for (const stanza of text.split(/\r?\n\s*\r?\n/)) {
    const fields = {};
    let last;
    for (const raw of stanza.split(/\r?\n/)) {
      if (/^\s*#/.test(raw) || raw.trim() === '') continue;
      const m = /^([A-Za-z][\w-]*):\s*(.*)$/.exec(raw);
      if (m) fields[(last = m[1].toLowerCase())] = m[2].trim();
      else if (last && /^\s/.test(raw)) fields[last] += ` ${raw.trim()}`;
    }
    if (!(fields.types ?? '').split(/\s+/).includes('deb')) continue;
    if (/^(no|false|0)$/i.test(fields.enabled ?? '')) continue;
    const suites = (fields.suites ?? '').split(/\s+/).filter(Boolean);
    for (const uri of (fields.uris ?? '').split(/\s+/).filter(Boolean)) out.push({ uri, suites });
  }
  return out;
}

/** An archive of the distribution itself (not its security archive, which has only *-security suites). */
function isMainArchive(entry) {
  return /^https?:\/\//.test(entry.uri) && !/-security\/?$/.test(entry.uri) && entry.suites.some((s) => !/-security$/.test(s));
}

/** Every mirror apt is configured with under `etc` (default /etc/apt), in the order apt reads them. */
function debianMirrors(etc = '/etc/apt') {
  const entries = [];
  const read = (f) => {
    try {
      return fs.readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  entries.push(...fromOneLine(read(path.join(etc, 'sources.list'))));
  const dir = path.join(etc, 'sources.list.d');
  let names = [];
  try {
    names = fs.readdirSync(dir).sort();
  } catch {
    /* no sources.list.d */
  }
  for (const n of names) {
    if (n.endsWith('.list')) entries.push(...fromOneLine(read(path.join(dir, n))));
    else if (n.endsWith('.sources')) entries.push(...fromDeb822(read(path.join(dir, n))));
  }
  const uris = entries.filter(isMainArchive).map((e) => e.uri.replace(/\/+$/, ''));
  return [...new Set(uris)];
}

module.exports = { debianMirrors, fromOneLine, fromDeb822 };

if (require.main === module) {
  const override = (process.env.CGG_DEBIAN_MIRROR ?? '').trim();
  if (override) {
    console.log(override.replace(/\/+$/, ''));
  } else {
    const found = debianMirrors(process.argv[2]);
    if (found.length === 0) {
      console.error(
        'provision: no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d/; set CGG_DEBIAN_MIRROR to one (e.g. CGG_DEBIAN_MIRROR=https://<your mirror>/debian npm test).',
      );
      process.exit(2);
    }
    console.log(found[0]);
  }
}
