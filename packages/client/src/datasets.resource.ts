import type { HttpTransport } from './http-transport.js';
import type { CategoriesView, DatasetShape, DatasetView, DiffQuery, DuplicateQuery, DuplicateReport, LeakageReport, RevisionDiff } from './types.js';

export const datasetPath = (name: string) => `/v1/datasets/${encodeURIComponent(name)}`;

export function parseJson<T>(body: Buffer): T {
  return JSON.parse(body.toString('utf8')) as T;
}

function query(fields: Record<string, string | number | undefined>): string {
  const pairs = Object.entries(fields).filter((entry): entry is [string, string | number] => entry[1] !== undefined);
  return pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`).join('&')}`;
}

/** `/v1/datasets`: create (idempotent for the same shape), read, list, delete, category map, and reports on the contents. */
export class DatasetsResource {
  constructor(private readonly http: HttpTransport) {}

  /** Creates the dataset, or confirms it exists with this shape (`created: false`); another shape is a 409. */
  async put(name: string, shape: DatasetShape): Promise<{ dataset: DatasetView; created: boolean }> {
    const reply = await this.http.call({ method: 'PUT', path: datasetPath(name), json: shape, retry: 'idempotent' });
    return { dataset: parseJson<DatasetView>(reply.body), created: reply.status === 201 };
  }

  /** Shape, sample count, revision and categories (index and count). */
  async get(name: string): Promise<DatasetView> {
    return parseJson((await this.http.call({ method: 'GET', path: datasetPath(name), retry: 'idempotent' })).body);
  }

  async list(): Promise<DatasetView[]> {
    return parseJson<{ datasets: DatasetView[] }>((await this.http.call({ method: 'GET', path: '/v1/datasets', retry: 'idempotent' })).body).datasets;
  }

  /** Needs the admin role. Not retried after a broken connection: a second delete would answer 404. */
  async delete(name: string): Promise<DatasetView> {
    return parseJson((await this.http.call({ method: 'DELETE', path: datasetPath(name), retry: 'stale-socket' })).body);
  }

  /** `{categories: [{name, index, count}], map: {name: index}}`; indices never change. */
  async categories(name: string): Promise<CategoriesView> {
    return parseJson((await this.http.call({ method: 'GET', path: `${datasetPath(name)}/categories`, retry: 'idempotent' })).body);
  }

  /** One page of near-duplicate groups (pass the answer's nextCursor as `cursor` for the next). */
  async duplicates(name: string, options: DuplicateQuery & { cursor?: string } = {}): Promise<DuplicateReport> {
    const path = `${datasetPath(name)}/duplicates${query(options)}`;
    return parseJson((await this.http.call({ method: 'GET', path, retry: 'idempotent' })).body);
  }

  /** One page of the groups that straddle the train/test split or carry different categories, with their counts. */
  async leakage(name: string, options: DuplicateQuery & { cursor?: string } = {}): Promise<LeakageReport> {
    const path = `${datasetPath(name)}/leakage${query(options)}`;
    return parseJson((await this.http.call({ method: 'GET', path, retry: 'idempotent' })).body);
  }

  /** What changed between revisions `from` and `to`, per category, with one page of the changed samples. */
  async diff(name: string, options: DiffQuery & { cursor?: string }): Promise<RevisionDiff> {
    const path = `${datasetPath(name)}/diff${query(options)}`;
    return parseJson((await this.http.call({ method: 'GET', path, retry: 'idempotent' })).body);
  }
}
