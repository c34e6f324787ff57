import { Worker } from 'node:worker_threads';

/**
 * HammingIndex.components() on a worker thread: grouping a million hashes takes seconds of CPU,
 * which must not hold the event loop (requests and uploads carry on meanwhile). The hashes are
 * copied to the worker, which builds its own index and hands the labels back.
 */
// Compiled, the thread runs the .js beside this file; from the sources (tests under tsx), the .ts.
const FROM_SOURCES = import.meta.url.endsWith('.ts');
const WORKER = new URL(`./hamming-components.worker${FROM_SOURCES ? '.ts' : '.js'}`, import.meta.url);

export function componentsOffThread(hi: Uint32Array, lo: Uint32Array, distance: number): Promise<Int32Array> {
  return new Promise((resolve, reject) => {
    const worker = FROM_SOURCES
      ? // Loaders registered with --import do not reach worker threads: the thread registers tsx itself.
        new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER.href)}); })`, { eval: true, workerData: { hi, lo, distance } })
      : new Worker(WORKER, { workerData: { hi, lo, distance } });
    let settled = false;
    worker.once('message', (labels: Int32Array) => {
      settled = true;
      resolve(labels);
      void worker.terminate();
    });
    worker.once('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the grouping thread exited with code ${code}`));
    });
  });
}
