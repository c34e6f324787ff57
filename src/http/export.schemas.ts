import { Type, type Static } from '@sinclair/typebox';
import { DEFAULT_EXPORT_SHARD_SIZE, EXPORT_FORMATS, EXPORT_STATUSES, MAX_EXPORT_SHARD_SIZE } from '../domain/export-job.js';

/** The schemas of the export routes (re-exported by schemas.ts). */

export const ExportBody = Type.Object(
  {
    format: Type.Union(EXPORT_FORMATS.map((format) => Type.Literal(format)), {
      description: 'webdataset: tar shards of <key>.<ext> + <key>.cls + <key>.json; imagefolder: one tar of <split>/<category>/<sha256>.<ext>; safetensors: shards of data (N×H×W×C U8), labels (N I64) and ids (N I64)',
    }),
    shardSize: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_EXPORT_SHARD_SIZE, description: `samples per shard (webdataset, safetensors); default ${DEFAULT_EXPORT_SHARD_SIZE}` }),
    ),
    revision: Type.Optional(Type.Integer({ minimum: 0, description: 'the revision exported (default: the current one); the job sees the samples and labels as they were then' })),
    split: Type.Optional(Type.Union([Type.Literal('train'), Type.Literal('test'), Type.Literal('all')], { default: 'all' })),
    categories: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 10_000, description: 'only these categories (default: all)' })),
  },
  { additionalProperties: false },
);
export type ExportBody = Static<typeof ExportBody>;

export const ExportParams = Type.Object({ id: Type.String({ maxLength: 64, description: 'export job id' }) });
export const ExportFileParams = Type.Object({
  id: Type.String({ maxLength: 64, description: 'export job id' }),
  n: Type.Integer({ minimum: 0, maximum: 10_000_000, description: 'file number, from 0 (as listed in files)' }),
});
export const ExportListQuery = Type.Object({ dataset: Type.Optional(Type.String({ maxLength: 64, description: 'only this dataset\'s jobs' })) }, { additionalProperties: false });

export const ExportView = Type.Object({
  id: Type.String(),
  dataset: Type.String(),
  format: Type.Union(EXPORT_FORMATS.map((format) => Type.Literal(format))),
  status: Type.Union(EXPORT_STATUSES.map((status) => Type.Literal(status))),
  revision: Type.Integer(),
  split: Type.String(),
  categories: Type.Union([Type.Array(Type.String()), Type.Null()], { description: 'the categories exported, or null for all' }),
  shardSize: Type.Integer(),
  samples: Type.Object({ total: Type.Integer(), done: Type.Integer() }),
  progress: Type.Number({ description: '0 to 1' }),
  files: Type.Array(
    Type.Object({
      n: Type.Integer(),
      name: Type.String(),
      bytes: Type.Integer(),
      samples: Type.Integer(),
      url: Type.String({ description: 'GET it (Range requests resume a download)' }),
    }),
    { description: 'finished files, downloadable while the job goes on' },
  ),
  attempts: Type.Integer({ description: 'times a runner took the job (more than 1: it was resumed after a runner stopped or died)' }),
  createdAt: Type.String(),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
  error: Type.Optional(Type.String()),
});
export const ExportList = Type.Object({ exports: Type.Array(ExportView) });
