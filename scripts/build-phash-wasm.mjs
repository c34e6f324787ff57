// Compiles src/domain/perceptual-hash.wat into src/domain/perceptual-hash.wasm.ts (the module as base64), with
// the WebAssembly Binary Toolkit's JavaScript build, which the project does not depend on:
//   npm install --no-save wabt@1.0.39 && node scripts/build-phash-wasm.mjs
// test/domain/perceptual-hash.test.ts checks that the module gives the same hashes as the JavaScript resample.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const { default: wabtInit } = await import('wabt');
const wabt = await wabtInit();
const watPath = fileURLToPath(new URL('../src/domain/perceptual-hash.wat', import.meta.url));
const module = wabt.parseWat('perceptual-hash.wat', readFileSync(watPath, 'utf8'), {});
module.validate();
const { buffer } = module.toBinary({});
const base64 = Buffer.from(buffer).toString('base64');
const lines = base64.match(/.{1,100}/g).map((line) => `  '${line}'`);
writeFileSync(
  fileURLToPath(new URL('../src/domain/perceptual-hash.wasm.ts', import.meta.url)),
  `// Generated from perceptual-hash.wat by scripts/build-phash-wasm.mjs: do not edit.\nexport const PERCEPTUAL_HASH_WASM_BASE64 =\n${lines.join(' +\n')};\n`,
);
process.stdout.write(`perceptual-hash.wasm: ${buffer.length} bytes\n`);
