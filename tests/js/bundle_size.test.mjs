// SPDX-License-Identifier: Apache-2.0
// Download budget of the browser bundles (issue 6: the .wasm at most 400 KB raw and 160 KB
// gzipped). A size, not a time: it only changes when the code does. A new dependency that drags
// in, say, iostreams' locale tables (about 90 KB) fails here rather than in a user's network tab.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const core = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web/core');
const kMaxRaw = 400 * 1000;
const kMaxGzip = 160 * 1000;

for (const name of ['anomalens_core', 'anomalens_core_mt', 'anomalens_core_nosimd']) {
  test(`${name}.wasm fits the download budget`, () => {
    const file = path.join(core, `${name}.wasm`);
    assert.ok(existsSync(file), `${file} is missing: ./scripts/build.sh wasm builds it`);
    const bytes = readFileSync(file);
    const gz = gzipSync(bytes, { level: 9 }).length;
    assert.ok(bytes.length <= kMaxRaw, `${name}.wasm is ${bytes.length} bytes (budget ${kMaxRaw})`);
    assert.ok(gz <= kMaxGzip, `${name}.wasm is ${gz} bytes gzipped (budget ${kMaxGzip})`);
  });
}
