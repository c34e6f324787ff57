/** A dependency the service cannot work without, and how to ask whether it answers. */
export interface WatchedDependency {
  /** What the log calls it: "database", "broker". */
  readonly name: string;
  ping(): Promise<void>;
}

/** Where the transitions go: a warning when a dependency is lost, an info line when it is back. */
export interface WatchLog {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/** How often the dependencies are asked. */
export const WATCH_INTERVAL_MS = 2000;

/**
 * Asks each dependency every few seconds whether it answers and logs only the changes: one
 * warning when it stops answering (with the reason), one info line when it answers again (with
 * how long it was away). Requests meanwhile get 503s from the error edge; this is what tells an
 * operator reading the log when the outage began and ended.
 */
export class DependencyWatch {
  /** When each dependency was found down (absent: up). */
  private readonly downSince = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  constructor(
    private readonly dependencies: readonly WatchedDependency[],
    private readonly log: WatchLog,
    private readonly intervalMs = WATCH_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  /** One round of pings (a round still running is waited for, not doubled). */
  check(): Promise<void> {
    this.checking ??= Promise.all(this.dependencies.map((dependency) => this.checkOne(dependency))).then(
      () => {
        this.checking = undefined;
      },
      () => {
        this.checking = undefined;
      },
    );
    return this.checking;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async checkOne(dependency: WatchedDependency): Promise<void> {
    const since = this.downSince.get(dependency.name);
    try {
      await dependency.ping();
      if (since === undefined) return;
      this.downSince.delete(dependency.name);
      const seconds = Math.round((this.now() - since) / 100) / 10;
      this.log.info({ dependency: dependency.name, downSeconds: seconds }, `${dependency.name} connection is back after ${seconds} s`);
    } catch (error) {
      if (since !== undefined) return;
      this.downSince.set(dependency.name, this.now());
      const reason = error instanceof Error ? error.message : String(error);
      this.log.warn({ dependency: dependency.name, reason }, `${dependency.name} connection lost: ${reason}`);
    }
  }
}
