import { open } from 'node:fs/promises';

/** Makes a directory's entries (created, renamed files) durable. */
export async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Group commit over one sync target: a caller is settled by a flush that started after it called,
 * and every caller arriving during a running flush shares the single next one, so N concurrent
 * writers cost about two real syncs instead of N.
 */
export class GroupSync {
  private current: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(private readonly flush: () => Promise<void>) {}

  sync(): Promise<void> {
    if (this.next) return this.next;
    if (!this.current) return this.start();
    const next = this.current
      .catch(() => undefined)
      .then(() => {
        this.next = null;
        return this.start();
      });
    this.next = next;
    return next;
  }

  /** Settles once no flush is running or queued (never rejects): lets a close wait for in-flight syncs. */
  idle(): Promise<void> {
    const last = this.next ?? this.current;
    return last ? last.then(() => this.idle(), () => this.idle()) : Promise.resolve();
  }

  private start(): Promise<void> {
    // The flush starts once the I/O callbacks already due have run: writers whose requests
    // arrived in the same turn join it instead of waiting for the next one.
    const run: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.flush())
      .finally(() => {
        if (this.current === run) this.current = null;
      });
    this.current = run;
    return run;
  }
}
