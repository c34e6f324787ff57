/** The thread of componentsOffThread (hamming-components.ts): builds the index, groups, answers the labels. */
import { parentPort, workerData } from 'node:worker_threads';
import { HammingIndex } from '../domain/hamming-index.js';

const { hi, lo, distance } = workerData as { hi: Uint32Array; lo: Uint32Array; distance: number };
const labels = new HammingIndex(hi, lo).components(distance);
parentPort!.postMessage(labels, [labels.buffer as ArrayBuffer]);
