#!/usr/bin/env node
// Page-weight budget: the built app's JavaScript, gzipped, must stay under the limit.
// Usage: node scripts/check-size.mjs [distDir]   (env SIZE_LIMIT_KIB overrides 150)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(process.argv[2] ?? join(here, '..', 'dist'));
const limitKiB = Number(process.env.SIZE_LIMIT_KIB ?? 150);

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

let files;
try {
  files = walk(dist);
} catch {
  console.error(`size: no build at ${dist} — run \`npm run build\` first`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const rows = [];
let jsGzip = 0;
let jsRaw = 0;
let cssGzip = 0;
for (const f of files) {
  if (!/\.(m?js|css)$/.test(f)) continue;
  const buf = readFileSync(f);
  const gz = gzipSync(buf, { level: 9 }).length;
  rows.push({ file: relative(dist, f), raw: buf.length, gz });
  if (f.endsWith('.css')) cssGzip += gz;
  else {
    jsGzip += gz;
    jsRaw += buf.length;
  }
}
const kib = (n) => (n / 1024).toFixed(1);
for (const r of rows) console.log(`  ${r.file.padEnd(40)} ${kib(r.raw).padStart(7)} KiB  gzip ${kib(r.gz).padStart(6)} KiB`);
console.log(`JavaScript: ${kib(jsRaw)} KiB raw, ${kib(jsGzip)} KiB gzipped (limit ${limitKiB} KiB); CSS ${kib(cssGzip)} KiB gzipped`);
const jsCount = rows.filter((r) => !r.file.endsWith('.css')).length;
if (jsCount === 0) {
  console.error('size: no JavaScript found in the build');
  console.log('0 passed, 1 failed');
  process.exit(1);
}
if (jsGzip > limitKiB * 1024) {
  console.error(`size: FAIL — ${kib(jsGzip)} KiB gzipped is above ${limitKiB} KiB`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
console.log('size: ok');
console.log('1 passed, 0 failed');
