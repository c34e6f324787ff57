/**
 * Group commit: items submitted while a flush runs wait and go together in the next flush, so
 * N concurrent writers cost about two flushes (one durable commit each), not N.
 */
export class WriteBatcher<I, O> {
  private pending: { item: I; resolve: (value: O) => void; reject: (error: unknown) => void }[] = [];
  private flushing = false;

  constructor(
    private readonly flush: (items: I[]) => Promise<O[]>,
    private readonly maxItems = 256,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.flushing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        // Let the I/O callbacks already due run first: their items join this group.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const group = this.pending.splice(0, this.maxItems);
        try {
          const results = await this.flush(group.map((entry) => entry.item));
          group.forEach((entry, i) => entry.resolve(results[i]));
        } catch (error) {
          group.forEach((entry) => entry.reject(error));
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
