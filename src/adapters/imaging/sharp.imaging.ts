import sharp, { type Metadata } from 'sharp';
import type { DatasetShape } from '../../domain/dataset-shape.js';
import { recordBytes } from '../../domain/dataset-shape.js';
import { SensoryError } from '../../domain/errors.js';
import type { DecodedImage, DecodeOptions, Imaging } from '../../ports/imaging.js';
import { decodePng, decodePngOffThread, pngFrameCount, readPngHeader } from './png.decoder.js';

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const BLACK = { r: 0, g: 0, b: 0 };
/** Formats that may hold several frames (pages): their count is read before decoding. */
const MULTI_FRAME = new Set(['image/gif', 'image/webp', 'image/tiff']);

function startsWith(bytes: Buffer, magic: readonly number[], at = 0): boolean {
  if (bytes.length < at + magic.length) return false;
  return magic.every((b, i) => bytes[at + i] === b);
}

function ascii(text: string): number[] {
  return [...text].map((c) => c.charCodeAt(0));
}

/** The media type named by the magic number, or undefined: sharp never sees other bytes (SVG, PDF, HEIF...). */
export function sniffMediaType(bytes: Buffer): string | undefined {
  if (startsWith(bytes, PNG)) return 'image/png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'image/webp';
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return 'image/gif';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'image/tiff';
  return undefined;
}

function notAnImage(message: string): SensoryError {
  return new SensoryError('SENSORY_ERR_NOT_AN_IMAGE', message);
}

export interface ImageLimits {
  /** Width × height of one frame; larger images are refused from their header, before decoding. */
  readonly maxPixels: number;
  /** Frames (pages) of an animated image. */
  readonly maxFrames: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxPixels: 50_000_000, maxFrames: 1000 };

/**
 * Decodes uploads to the dataset's shape. A PNG already at the dataset's size takes the lean
 * path in this process (png.decoder.ts: inflate and unfilter, no thread hop, pixel-exact with
 * sharp by test); everything else goes through sharp. Sizes and frame counts are checked from
 * the header first, so a decompression bomb costs milliseconds, not a decode.
 */
export class SharpImaging implements Imaging {
  constructor(private readonly limits: ImageLimits = DEFAULT_IMAGE_LIMITS) {}

  async toDatasetPixels(bytes: Buffer, shape: DatasetShape, options: DecodeOptions = {}): Promise<DecodedImage> {
    const mediaType = sniffMediaType(bytes);
    if (!mediaType) throw notAnImage('The bytes are not a PNG, JPEG, WebP, GIF or TIFF image.');
    if (mediaType === 'image/png') {
      const header = readPngHeader(bytes);
      if (header) {
        this.checkSize(header.width, header.height);
        this.checkFrames(pngFrameCount(bytes));
      }
      const pixels = options.offload ? await decodePngOffThread(bytes, shape) : decodePng(bytes, shape);
      if (pixels) return { mediaType, pixels };
    } else if (MULTI_FRAME.has(mediaType)) {
      await this.checkFramesWithSharp(bytes, mediaType);
    }
    return this.decodeWithSharp(bytes, shape, mediaType);
  }

  async thumbnail(bytes: Buffer, size: number): Promise<Buffer> {
    const mediaType = sniffMediaType(bytes);
    if (!mediaType) throw notAnImage('The bytes are not a PNG, JPEG, WebP, GIF or TIFF image.');
    try {
      const options = { failOn: 'none', pages: 1, limitInputPixels: this.limits.maxPixels } as const;
      const { width = 0, height = 0, pageHeight } = await sharp(bytes, options).metadata();
      // An image that fits already is kept pixel for pixel (lossless: a 28 × 28 digit stays sharp,
      // where lossy WebP would smear its colours); a larger one is reduced and compressed.
      const fits = width <= size && (pageHeight ?? height) <= size;
      // JPEGs shrink while they decode (libjpeg's scaling), so a 12-megapixel photo costs a fraction of a full decode.
      return await sharp(bytes, options)
        .rotate()
        .resize(size, size, { fit: 'inside', withoutEnlargement: true })
        .webp(fits ? { lossless: true, effort: 2 } : { quality: 72, effort: 2 })
        .toBuffer();
    } catch (error) {
      const reason = error instanceof Error ? error.message.trim() : String(error);
      throw new SensoryError('SENSORY_ERR_NOT_AN_IMAGE', `The ${mediaType} image cannot be decoded for a preview.`, { decoder: reason });
    }
  }

  private checkSize(width: number, height: number): void {
    if (width * height > this.limits.maxPixels) {
      throw new SensoryError(
        'SENSORY_ERR_IMAGE_TOO_LARGE',
        `the image is ${width}×${height} (${width * height} pixels); at most ${this.limits.maxPixels} are accepted (SENSORY_MAX_IMAGE_PIXELS)`,
        { width, height, maxPixels: this.limits.maxPixels },
      );
    }
  }

  private checkFrames(frames: number): void {
    if (frames > this.limits.maxFrames) {
      throw new SensoryError(
        'SENSORY_ERR_IMAGE_TOO_LARGE',
        `the image has ${frames} frames; at most ${this.limits.maxFrames} are accepted (SENSORY_MAX_IMAGE_FRAMES)`,
        { frames, maxFrames: this.limits.maxFrames },
      );
    }
  }

  /** GIF, WebP and TIFF: frame count and frame size from the header (sharp reads no pixels for it). */
  private async checkFramesWithSharp(bytes: Buffer, mediaType: string): Promise<void> {
    let metadata: Metadata;
    try {
      metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
    } catch {
      throw notAnImage(`The ${mediaType} image cannot be decoded.`);
    }
    this.checkFrames(metadata.pages ?? 1);
    if (metadata.width !== undefined && metadata.height !== undefined) this.checkSize(metadata.width, metadata.pageHeight ?? metadata.height);
  }

  private async decodeWithSharp(bytes: Buffer, shape: DatasetShape, mediaType: string): Promise<DecodedImage> {
    try {
      // No metadata() probe (≈20% of the cost): sharp skips resampling at scale 1 and flattening
      // without alpha, so an image already at the dataset's size keeps its exact pixels (tested).
      const image = sharp(bytes, { failOn: 'error', pages: 1, limitInputPixels: this.limits.maxPixels })
        .resize(shape.width, shape.height, { fit: 'fill' })
        .flatten({ background: BLACK });
      if (shape.channels === 1) image.greyscale();
      else image.toColourspace('srgb');
      const { data, info } = await image.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      if (
        info.width !== shape.width ||
        info.height !== shape.height ||
        info.channels !== shape.channels ||
        data.length !== recordBytes(shape)
      ) {
        throw notAnImage(
          `Decoded to ${info.width}×${info.height}×${info.channels}, not ${shape.width}×${shape.height}×${shape.channels}.`,
        );
      }
      return { mediaType, pixels: new Uint8Array(data.buffer, data.byteOffset, data.length) };
    } catch (error) {
      if (error instanceof SensoryError) throw error;
      const reason = error instanceof Error ? error.message.trim() : String(error);
      if (/exceeds pixel limit/i.test(reason)) {
        throw new SensoryError('SENSORY_ERR_IMAGE_TOO_LARGE', `the image has more than ${this.limits.maxPixels} pixels (SENSORY_MAX_IMAGE_PIXELS)`, {
          maxPixels: this.limits.maxPixels,
        });
      }
      // The decoder's own words (libvips, libpng) go to the log through details, not to the client.
      throw new SensoryError('SENSORY_ERR_NOT_AN_IMAGE', `The ${mediaType} image cannot be decoded: it is damaged, truncated or uses a feature the decoder does not support.`, { decoder: reason });
    }
  }
}
