/** Time, for the services that decide by it (expiry, leases, waiting polls): a fake one in tests. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  sleep(ms: number): Promise<void>;
}
