import sharp from 'sharp';
import type { DatasetShape } from '../../domain/dataset-shape.js';
import { recordBytes } from '../../domain/dataset-shape.js';
import { SensoryError } from '../../domain/errors.js';
import type { DecodedImage, Imaging } from '../../ports/imaging.js';

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const BLACK = { r: 0, g: 0, b: 0 };

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

export class SharpImaging implements Imaging {
  async toDatasetPixels(bytes: Buffer, shape: DatasetShape): Promise<DecodedImage> {
    const mediaType = sniffMediaType(bytes);
    if (!mediaType) throw notAnImage('The bytes are not a PNG, JPEG, WebP, GIF or TIFF image.');
    try {
      // No metadata() probe (≈20% of the cost): sharp skips resampling at scale 1 and flattening
      // without alpha, so an image already at the dataset's size keeps its exact pixels (tested).
      const image = sharp(bytes, { failOn: 'error', pages: 1 })
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
      // The decoder's own words (libvips, libpng) go to the log through details, not to the client.
      throw new SensoryError('SENSORY_ERR_NOT_AN_IMAGE', `The ${mediaType} image cannot be decoded: it is damaged, truncated or uses a feature the decoder does not support.`, { decoder: reason });
    }
  }
}
