import type { FastifyRequest } from 'fastify';
import { SensoryError, isSensoryError } from '../domain/errors.js';
import type { FileUpload, Upload } from '../services/ingest.service.js';
import { sampleAnnotations, sampleFilename } from '../domain/sample-annotations.js';
import type { SampleJsonBody, SampleUploadQuery } from './schemas.js';

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Standard or URL-safe base64, whitespace (line breaks) allowed; anything else is a 400 naming `field`. */
export function decodeBase64(field: string, text: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (!BASE64.test(compact)) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `${field} must be base64`, { field });
  return Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64');
}

export const TAR_TYPES = ['application/x-tar', 'application/tar'];
export const GZIP_TYPES = ['application/gzip', 'application/x-gzip', 'application/x-gtar'];

/** The import body's kind from its Content-Type; anything else is a 415. */
export function importMediaType(request: FastifyRequest): 'tar' | 'gzip' {
  const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (GZIP_TYPES.includes(type)) return 'gzip';
  if (TAR_TYPES.includes(type)) return 'tar';
  throw new SensoryError('SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE', `send the tar as ${TAR_TYPES[0]} (or gzipped as ${GZIP_TYPES[0]})`);
}

/** An upload body: one sample, or a multipart form of several files into one category. */
export type UploadBody = { readonly kind: 'one'; readonly upload: Upload } | { readonly kind: 'files'; readonly category: unknown; readonly files: FileUpload[] };

/**
 * Reads the three accepted forms: JSON `{category, data: base64}`, a multipart form (`category`
 * and one or more `file` parts), or a raw image/* body with `?category=`.
 */
export async function readUploadBody(request: FastifyRequest<{ Querystring: SampleUploadQuery }>, maxMetadataBytes: number): Promise<UploadBody> {
  if (request.isMultipart()) {
    const { category, files } = await readForm(request, maxMetadataBytes);
    if (files.length > 1) return { kind: 'files', category, files };
    const [file] = files;
    if ('error' in file) throw file.error;
    return { kind: 'one', upload: { category, bytes: file.bytes, annotations: file.annotations } };
  }
  if (Buffer.isBuffer(request.body)) {
    const { category, filename, tag } = request.query;
    if (category === undefined) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'category is required in the query string with a raw image body (?category=)', { field: 'category' });
    const annotations = sampleAnnotations({ filename, tags: tag }, maxMetadataBytes);
    return { kind: 'one', upload: { category, bytes: request.body, annotations } };
  }
  if (typeof request.body === 'object' && request.body !== null) {
    const body = request.body as SampleJsonBody;
    const annotations = sampleAnnotations({ filename: body.filename, tags: body.tags, metadata: body.metadata }, maxMetadataBytes);
    return { kind: 'one', upload: { category: body.category, bytes: decodeBase64('data', body.data), annotations } };
  }
  // e.g. text/plain, which Fastify parses to a string: not one of the accepted forms.
  throw new SensoryError('SENSORY_ERR_UNSUPPORTED_MEDIA_TYPE', 'send JSON {category, data}, a multipart form, or a raw image/* body with ?category=');
}

/** Reads a multipart form: `category` and one or more `file` parts (each checked for size). */
async function readForm(request: FastifyRequest, maxMetadataBytes: number): Promise<{ category: unknown; files: FileUpload[] }> {
  let category: unknown;
  const tags: string[] = [];
  let metadataText: string | undefined;
  const files: { filename: string; given?: string; bytes?: Buffer; error?: SensoryError }[] = [];
  try {
    // The plugin runs with throwFileSizeLimit: false, so an over-long file is one file's 413
    // (its `truncated` flag), not the whole form's.
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        if (part.fieldname === 'category') category = part.value;
        else if (part.fieldname === 'tag') tags.push(String(part.value));
        else if (part.fieldname === 'metadata') metadataText = String(part.value);
        continue;
      }
      const filename = part.filename || `file ${files.length + 1}`;
      const bytes = await part.toBuffer();
      if (part.fieldname !== 'file') continue;
      if (part.file.truncated) {
        files.push({ filename, error: new SensoryError('SENSORY_ERR_SAMPLE_TOO_LARGE', `${filename} is larger than the sample limit`) });
      } else {
        files.push({ filename, given: part.filename || undefined, bytes });
      }
    }
  } catch (error) {
    // Framework errors (limits) carry their own status; anything else is a body that cannot be parsed.
    if (isSensoryError(error) || (error as { statusCode?: number }).statusCode) throw error;
    throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `the multipart form could not be read: ${(error as Error).message}`);
  }
  if (files.length === 0) throw new SensoryError('SENSORY_ERR_BAD_REQUEST', 'the form has no file part: send one or more parts named file', { field: 'file' });
  // Tags and metadata (a JSON text field) go with every file of the form; each file keeps its own name.
  const shared = sampleAnnotations({ ...(tags.length > 0 ? { tags } : {}), ...(metadataText !== undefined ? { metadata: parseJsonField('metadata', metadataText) } : {}) }, maxMetadataBytes);
  return {
    category,
    files: files.map((file): FileUpload => {
      if (file.error) return { filename: file.filename, error: file.error };
      let filename: string | undefined;
      try {
        filename = file.given === undefined ? undefined : sampleFilename('filename', file.given);
      } catch {
        filename = undefined;
      }
      return { filename: file.filename, bytes: file.bytes!, annotations: { ...shared, ...(filename ? { filename } : {}) } };
    }),
  };
}

function parseJsonField(field: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new SensoryError('SENSORY_ERR_BAD_REQUEST', `${field} must be a JSON object; got text that is not JSON`, { field });
  }
}
