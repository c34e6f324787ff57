import { SensoryError } from './errors.js';
import { categoryName, shownValue } from './names.js';

/** Tags a sample may carry. */
export const MAX_TAGS = 32;
/** Characters of an original filename kept (a longer one is refused). */
export const MAX_FILENAME_CHARS = 255;
/** The default of SENSORY_MAX_SAMPLE_METADATA_BYTES. */
export const DEFAULT_MAX_METADATA_BYTES = 4096;

/** What a sample carries beside its label: where it came from and what people noted about it. */
export interface SampleAnnotations {
  /** The original file name (no folders), when the upload said it. */
  readonly filename?: string;
  readonly tags?: readonly string[];
  /** A small JSON object, at most SENSORY_MAX_SAMPLE_METADATA_BYTES as JSON. */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

function bad(field: string, message: string): SensoryError {
  return new SensoryError('SENSORY_ERR_BAD_REQUEST', message, { field });
}

/** An original filename: its last path component, 1–255 characters, no control characters. */
export function sampleFilename(field: string, value: unknown): string {
  if (typeof value !== 'string') throw bad(field, `${field} must be a string; got ${shownValue(value)}`);
  const base = value.split(/[/\\]/).pop()!.normalize('NFC');
  // Code points are never more than UTF-16 units: only a long name is counted (a bulk upload checks one per item).
  if (base === '' || (base.length > MAX_FILENAME_CHARS && [...base].length > MAX_FILENAME_CHARS)) throw bad(field, `${field} must be 1–${MAX_FILENAME_CHARS} characters (the folders are dropped); got ${shownValue(value)}`);
  if (/\p{Cc}/u.test(base)) throw bad(field, `${field} must hold no control characters; got ${shownValue(value)}`);
  return base;
}

/** Tags: at most MAX_TAGS names under the category name rule, each once (repeats are dropped). */
export function sampleTags(field: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw bad(field, `${field} must be an array of tag names; got ${shownValue(value)}`);
  if (value.length > MAX_TAGS) throw bad(field, `${field} may hold at most ${MAX_TAGS} tags; got ${value.length}`);
  const tags = value.map((tag, i) => {
    try {
      return categoryName(`${field}[${i}]`, tag);
    } catch (error) {
      const message = (error as Error).message.replace(/: it must be /, ': a tag must be ').replace(/ category /g, ' ');
      throw bad(`${field}[${i}]`, message);
    }
  });
  return [...new Set(tags)];
}

/** A JSON object of at most `maxBytes` bytes as JSON text. */
export function sampleMetadata(field: string, value: unknown, maxBytes: number): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad(field, `${field} must be a JSON object; got ${shownValue(value)}`);
  const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8');
  if (bytes > maxBytes) throw bad(field, `${field} has ${bytes} bytes as JSON, more than ${maxBytes} (SENSORY_MAX_SAMPLE_METADATA_BYTES)`);
  return value as Record<string, unknown>;
}

/** Checks the annotations an upload or a patch carries; absent fields stay absent. */
export function sampleAnnotations(input: { filename?: unknown; tags?: unknown; metadata?: unknown }, maxMetadataBytes: number): SampleAnnotations {
  return {
    ...(input.filename !== undefined ? { filename: sampleFilename('filename', input.filename) } : {}),
    ...(input.tags !== undefined ? { tags: sampleTags('tags', input.tags) } : {}),
    ...(input.metadata !== undefined ? { metadata: sampleMetadata('metadata', input.metadata, maxMetadataBytes) } : {}),
  };
}

/** A search of `?q=`: a whole number is an id, lower-case hex of 4+ digits a SHA-256 prefix; also a filename part or a tag. */
export interface SampleSearch {
  readonly text: string;
  readonly id?: number;
  readonly shaPrefix?: string;
}

export function sampleSearch(value: string): SampleSearch {
  const text = value.trim();
  if (text === '' || [...text].length > 256) throw bad('q', `q must be 1–256 characters; got ${shownValue(value)}`);
  const id = /^\d{1,15}$/.test(text) ? Number(text) : undefined;
  const lower = text.toLowerCase();
  const shaPrefix = /^[0-9a-f]{4,64}$/.test(lower) ? lower : undefined;
  return { text, ...(id !== undefined ? { id } : {}), ...(shaPrefix ? { shaPrefix } : {}) };
}

/** A sample's annotations after `change` (absent fields kept; tags replaced, then added to, then taken from). */
export function applyAnnotationChange<T extends { filename: string | null; tags: readonly string[]; metadata: Readonly<Record<string, unknown>> }>(
  sample: T,
  change: { filename?: string; tags?: readonly string[]; addTags?: readonly string[]; removeTags?: readonly string[]; metadata?: Readonly<Record<string, unknown>> },
): T {
  let tags = [...(change.tags ?? sample.tags)];
  for (const tag of change.addTags ?? []) if (!tags.includes(tag)) tags.push(tag);
  if (change.removeTags) tags = tags.filter((tag) => !change.removeTags!.includes(tag));
  return {
    ...sample,
    filename: change.filename ?? sample.filename,
    // A sample keeps at most MAX_TAGS tags: tags added past that are dropped.
    tags: tags.slice(0, MAX_TAGS),
    metadata: change.metadata ?? sample.metadata,
  };
}
