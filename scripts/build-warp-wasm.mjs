// Compiles src/domain/warp-rgb.wat into src/domain/warp-rgb.wasm.ts (the module as base64), with
// the WebAssembly Binary Toolkit's JavaScript build, which the project does not depend on:
//   npm install --no-save wabt@1.0.39 && node scripts/build-warp-wasm.mjs
// test/warp.test.ts checks that the module gives the same bytes as the JavaScript warp.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const { default: wabtInit } = await import('wabt');
const wabt = await wabtInit();
const watPath = fileURLToPath(new URL('../src/domain/warp-rgb.wat', import.meta.url));
const module = wabt.parseWat('warp-rgb.wat', readFileSync(watPath, 'utf8'), { simd: true });
module.validate();
const { buffer } = module.toBinary({});
const base64 = Buffer.from(buffer).toString('base64');
const lines = base64.match(/.{1,100}/g).map((line) => `  '${line}'`);
writeFileSync(
  fileURLToPath(new URL('../src/domain/warp-rgb.wasm.ts', import.meta.url)),
  `// Generated from warp-rgb.wat by scripts/build-warp-wasm.mjs: do not edit.\nexport const WARP_RGB_WASM_BASE64 =\n${lines.join(' +\n')};\n`,
);
process.stdout.write(`warp-rgb.wasm: ${buffer.length} bytes\n`);
