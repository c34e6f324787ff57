export type Channels = 1 | 3;

export interface DatasetShape {
  readonly width: number;
  readonly height: number;
  readonly channels: Channels;
}

export const MAX_SIDE = 4096;
export const MAX_TEST_PERCENT = 50;

/** Bytes of one sample's pixels at the dataset's shape (one uint8 per channel). */
export function recordBytes(shape: DatasetShape): number {
  return shape.width * shape.height * shape.channels;
}

export function sameShape(a: DatasetShape, b: DatasetShape): boolean {
  return a.width === b.width && a.height === b.height && a.channels === b.channels;
}
