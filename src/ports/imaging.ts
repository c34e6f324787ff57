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

/** An upload's SHA-256 and, where they could be worked out beside it, its pixels and their perceptual hash. */
export interface Digest {
  readonly sha256: string;
  /** Undefined for what only toDatasetPixels decodes (or refuses). */
  readonly decoded?: DecodedImage & { readonly perceptualHash: string };
  /**
   * When given, the pixels lie in memory lent for this upload: they stay as they are until this
   * is called, once they are written (or not needed), and must not be read after.
   */
  readonly release?: () => void;
}

/** The CPU of an upload (hashing, decoding) off the event loop: for bulk uploads, on every core. */
export interface ImageDigests {
  /** Rejects only when the work itself failed (a thread died): never for the image, which toDatasetPixels judges. */
  digest(bytes: Buffer, shape: DatasetShape): Promise<Digest>;
}
