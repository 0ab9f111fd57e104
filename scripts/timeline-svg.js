#!/usr/bin/env node
// Draws images/timeline.svg for the Marketplace page: a registry GC in one
// stage, an attest job in parallel, and what the guard does between them.
'use strict';
const fs = require('fs');
const path = require('path');

const W = 1000;
const scale = 12; // px per second of the story
const x0 = 250;
const lanes = [
  {
    label: 'RegistryMaintenance',
    sub: 'DoRegistryGarbageCollection@1',
    bars: [
      { from: 0, to: 8, text: 'JWTs expire', color: '#f59e0b' },
      { from: 8, to: 30, text: 'GC: registry read-only, push tokens refused', color: '#ef4444' },
      { from: 30, to: 31, text: '', color: '#10b981' },
    ],
  },
  {
    label: 'AttestStaging',
    sub: 'Cosign@1 with the guard',
    bars: [
      { from: 2, to: 31, text: 'guard waits: GC active (no writes)', color: '#94a3b8' },
      { from: 31, to: 41, text: 'settle', color: '#cbd5e1' },
      { from: 41, to: 49, text: 'attest@digest', color: '#2563eb' },
      { from: 49, to: 54, text: 'verify', color: '#10b981' },
    ],
  },
  {
    label: 'Without the guard',
    sub: 'plain cosign attest',
    bars: [
      { from: 2, to: 5, text: '401', color: '#b91c1c' },
      { from: 8, to: 11, text: '401', color: '#b91c1c' },
      { from: 20, to: 23, text: '401', color: '#b91c1c' },
      { from: 32, to: 39, text: '401 tail', color: '#b91c1c' },
    ],
  },
];
const laneH = 64;
const H = 70 + lanes.length * laneH + 40;
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
const out = [];
out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Segoe UI, Helvetica, Arial, sans-serif">`);
out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
out.push(
  `<text x="20" y="32" font-size="18" font-weight="600" fill="#0f172a">Cosign GC Guard: never write to the registry while its garbage collection runs</text>`,
);
lanes.forEach((lane, i) => {
  const y = 60 + i * laneH;
  out.push(`<text x="20" y="${y + 22}" font-size="14" font-weight="600" fill="#0f172a">${esc(lane.label)}</text>`);
  out.push(`<text x="20" y="${y + 40}" font-size="11" fill="#475569">${esc(lane.sub)}</text>`);
  out.push(`<line x1="${x0}" y1="${y + 46}" x2="${W - 20}" y2="${y + 46}" stroke="#e2e8f0"/>`);
  for (const b of lane.bars) {
    const bx = x0 + b.from * scale;
    const bw = Math.max(6, (b.to - b.from) * scale);
    out.push(`<rect x="${bx}" y="${y + 12}" width="${bw}" height="28" rx="4" fill="${b.color}"/>`);
    if (b.text) out.push(`<text x="${bx + 6}" y="${y + 31}" font-size="11" fill="#ffffff">${esc(b.text)}</text>`);
  }
});
const axisY = 60 + lanes.length * laneH + 10;
for (let t = 0; t <= 60; t += 10) {
  const x = x0 + t * scale;
  out.push(`<line x1="${x}" y1="${axisY - 4}" x2="${x}" y2="${axisY + 4}" stroke="#64748b"/>`);
  out.push(`<text x="${x - 8}" y="${axisY + 18}" font-size="10" fill="#64748b">${t}s</text>`);
}
out.push(`<text x="${x0 + 31 * scale + 4}" y="${axisY - 8}" font-size="10" fill="#059669">GC succeeded</text>`);
out.push('</svg>');
fs.writeFileSync(path.join(__dirname, '..', 'images', 'timeline.svg'), out.join('\n') + '\n');
console.log('timeline-svg: wrote images/timeline.svg');
// The Marketplace renders PNG everywhere; convert when librsvg is installed.
try {
  require('child_process').execFileSync('rsvg-convert', [
    path.join(__dirname, '..', 'images', 'timeline.svg'),
    '-o',
    path.join(__dirname, '..', 'images', 'timeline.png'),
  ]);
  console.log('timeline-svg: wrote images/timeline.png');
} catch {
  console.log('timeline-svg: rsvg-convert not found (apt-get install librsvg2-bin); images/timeline.png left as it was');
}
