export type Split = 'train' | 'test' | 'all';

/**
 * A sample's split bucket (0–99) from its SHA-256: the first 32 bits modulo 100. It depends on
 * nothing but the bytes, so the split never changes as the dataset grows.
 */
export function splitBucket(sha256Hex: string): number {
  return Number.parseInt(sha256Hex.slice(0, 8), 16) % 100;
}

export function isTestBucket(bucket: number, testPercent: number): boolean {
  return bucket < testPercent;
}

export function inSplit(bucket: number, testPercent: number, split: Split): boolean {
  if (split === 'all') return true;
  return isTestBucket(bucket, testPercent) === (split === 'test');
}
