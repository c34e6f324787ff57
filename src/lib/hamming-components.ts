import { startModuleWorker } from './module-worker.js';

/**
 * HammingIndex.components() on a worker thread: grouping a million hashes takes seconds of CPU,
 * which must not hold the event loop (requests and uploads carry on meanwhile). The hashes are
 * copied to the worker, which builds its own index and hands the labels back.
 */
export function componentsOffThread(hi: Uint32Array, lo: Uint32Array, distance: number): Promise<Int32Array> {
  return new Promise((resolve, reject) => {
    const worker = startModuleWorker(import.meta.url, 'hamming-components.worker', { workerData: { hi, lo, distance } });
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
