#!/usr/bin/env node
// Prints the longest functions and methods under tasks/ (lines, name, file), longest first:
// `node scripts/longest-functions.js [count]`. Lint holds each to 80 lines; this shows what is close.
const fs = require('fs');
const path = require('path');
const ts = require('typescript');

const root = path.resolve(__dirname, '..');
const found = [];

function scan(file) {
  const src = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const visit = (node) => {
    const isFunction =
      ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isArrowFunction(node) ||
      ts.isFunctionExpression(node) ||
      ts.isConstructorDeclaration(node);
    if (isFunction) {
      const first = src.getLineAndCharacterOfPosition(node.getStart()).line;
      const last = src.getLineAndCharacterOfPosition(node.getEnd()).line;
      const named = node.name ?? node.parent?.name;
      const name = ts.isConstructorDeclaration(node) ? 'constructor' : named ? named.getText() : '(anonymous)';
      found.push({ lines: last - first + 1, name, file: path.relative(root, file) });
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
}

function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(p);
    else if (entry.name.endsWith('.ts')) scan(p);
  }
}

walk(path.join(root, 'tasks'));
found.sort((a, b) => b.lines - a.lines);
for (const f of found.slice(0, Number(process.argv[2] || 10))) console.log(`${String(f.lines).padStart(4)}  ${f.name}  ${f.file}`);
