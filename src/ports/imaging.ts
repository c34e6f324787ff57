import type { DatasetShape } from '../domain/dataset-shape.js';

export interface DecodedImage {
  /** image/png, image/jpeg, image/webp, image/gif or image/tiff. */
  readonly mediaType: string;
  /** H×W×C uint8 at the dataset's shape: stretched to width × height, converted to the channel count. */
  readonly pixels: Uint8Array;
}

export interface DecodeOptions {
  /**
   * Decode off the event loop even where the lean path would not: for bulk uploads, where
   * another core is worth a thread hop per image. Single uploads decode in place.
   */
  readonly offload?: boolean;
}

export interface Imaging {
  /** Throws SENSORY_ERR_NOT_AN_IMAGE for anything but a decodable PNG, JPEG, WebP, GIF (first frame) or TIFF. */
  toDatasetPixels(bytes: Buffer, shape: DatasetShape, options?: DecodeOptions): Promise<DecodedImage>;
  /**
   * A small WebP preview: the image fitted inside size × size (aspect kept, never enlarged),
   * turned upright by its EXIF orientation, first frame only. Throws like toDatasetPixels.
   */
  thumbnail(bytes: Buffer, size: number): Promise<Buffer>;
}
