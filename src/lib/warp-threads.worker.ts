import { parentPort } from 'node:worker_threads';
import { warpInto } from '../domain/augmentation.js';
import type { WarpJob, WarpReply } from './warp-threads.js';

// One thread of WarpThreads: warps the records of each job in the shared arena it names.
parentPort?.on('message', (job: WarpJob) => {
  let reply: WarpReply = { id: job.id };
  try {
    const size = job.shape.width * job.shape.height * job.shape.channels;
    const count = job.augments.length / 2;
    const source = new Uint8Array(job.memory, job.sourceOffset, count * size);
    const target = new Uint8Array(job.memory, job.targetOffset, count * size);
    for (let i = 0; i < count; i++) {
      warpInto(source.subarray(i * size, (i + 1) * size), job.shape, { rotation: job.augments[2 * i], scale: job.augments[2 * i + 1] }, target, i * size);
    }
  } catch (error) {
    reply = { id: job.id, error: error instanceof Error ? error.message : String(error) };
  }
  parentPort?.postMessage(reply);
});
