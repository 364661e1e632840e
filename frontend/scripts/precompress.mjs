#!/usr/bin/env node
// Writes `.br` and `.gz` siblings next to the built text assets. glasshouse serves a
// precompressed sibling when the client's Accept-Encoding allows it, so the page costs
// no compression work at request time. A sibling is kept only if it is smaller.
import { readdirSync, readFileSync, statSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(process.argv[2] ?? join(here, '..', 'dist'));
const walk = (d) => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));

let count = 0;
for (const f of walk(dist)) {
  if (!/\.(js|mjs|css|html|svg|json|txt|map)$/.test(f)) continue;
  const buf = readFileSync(f);
  const variants = [
    ['.br', brotliCompressSync(buf, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: buf.length } })],
    ['.gz', gzipSync(buf, { level: 9 })],
  ];
  for (const [ext, out] of variants) {
    if (out.length < buf.length) {
      writeFileSync(f + ext, out);
      count++;
    } else if (existsSync(f + ext)) rmSync(f + ext);
  }
}
console.log(`precompress: ${count} .br/.gz siblings written in ${dist}`);
