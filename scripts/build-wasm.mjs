// Compiles the project's WebAssembly text modules into TypeScript modules holding them as base64,
// with the WebAssembly Binary Toolkit's JavaScript build, which the project does not depend on:
//   npm install --no-save wabt@1.0.39 && node scripts/build-wasm.mjs
// Tests compare each module with its JavaScript twin: test/warp.test.ts (the same bytes) and
// test/domain/perceptual-hash.test.ts (the same hashes).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const MODULES = [
  { name: 'warp-rgb', constant: 'WARP_RGB_WASM_BASE64', features: { simd: true } },
  { name: 'perceptual-hash', constant: 'PERCEPTUAL_HASH_WASM_BASE64', features: {} },
];

const { default: wabtInit } = await import('wabt');
const wabt = await wabtInit();
for (const { name, constant, features } of MODULES) {
  const source = (extension) => fileURLToPath(new URL(`../src/domain/${name}${extension}`, import.meta.url));
  const module = wabt.parseWat(`${name}.wat`, readFileSync(source('.wat'), 'utf8'), features);
  module.validate();
  const { buffer } = module.toBinary({});
  const lines = Buffer.from(buffer).toString('base64').match(/.{1,100}/g).map((line) => `  '${line}'`);
  writeFileSync(
    source('.wasm.ts'),
    `// Generated from ${name}.wat by scripts/build-wasm.mjs: do not edit.\nexport const ${constant} =\n${lines.join(' +\n')};\n`,
  );
  process.stdout.write(`${name}.wasm: ${buffer.length} bytes\n`);
}
