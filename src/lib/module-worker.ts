import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * A worker thread running the module `name` beside `besideUrl` (the caller's import.meta.url):
 * compiled, the .js beside it; from the sources (tests under tsx), the .ts.
 */
export function startModuleWorker(besideUrl: string, name: string, options: WorkerOptions = {}): Worker {
  const fromSources = besideUrl.endsWith('.ts');
  const module = new URL(`./${name}${fromSources ? '.ts' : '.js'}`, besideUrl);
  return fromSources
    ? // Loaders registered with --import do not reach worker threads: the thread registers tsx itself.
      new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(module.href)}); })`, { ...options, eval: true })
    : new Worker(module, options);
}
