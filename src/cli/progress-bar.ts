/** A one-line progress bar on a terminal; a line every few seconds elsewhere (logs, CI). */
export class ProgressBar {
  private done = 0;
  private lastLine = 0;
  private readonly started = Date.now();

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  tick(detail = ''): void {
    this.advance(1, detail);
  }

  /** `count` more done. */
  advance(count: number, detail = ''): void {
    this.set(this.done + count, detail);
  }

  /** `done` done in all (a job's progress read from elsewhere). */
  set(done: number, detail = ''): void {
    if (done === this.done && detail === '' && !this.out.isTTY) return;
    this.done = done;
    const now = Date.now();
    if (this.out.isTTY) {
      const width = 30;
      const filled = this.total === 0 ? width : Math.round((this.done / this.total) * width);
      this.out.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done}/${this.total} ${this.rate()} ${detail}`.padEnd(100).slice(0, 120));
    } else if (now - this.lastLine > 2000 || this.done === this.total) {
      this.lastLine = now;
      this.out.write(`${this.label}: ${this.done}/${this.total} ${this.rate()}\n`);
    }
  }

  finish(): void {
    if (this.out.isTTY) this.out.write('\n');
  }

  private rate(): string {
    const seconds = (Date.now() - this.started) / 1000;
    return seconds > 0 ? `${(this.done / seconds).toFixed(0)}/s` : '';
  }
}
