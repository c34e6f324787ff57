// The page talks to the same /v1 API as every other client, with the key the person entered.
// The key lives in sessionStorage: it is forgotten when the tab or window is closed.

const KEY_ITEM = 'sensory.apiKey';

/** The key's roles, from GET /v1/me once the key is entered (kept in memory, asked again on reload). */
let roles = null;

export const session = {
  /** 'read', 'write' or 'admin' (admin may do everything); null before /v1/me answered. */
  can(role) {
    if (!roles) return false;
    return roles.includes('admin') || roles.includes(role);
  },
  get roles() {
    return roles;
  },
  set roles(value) {
    roles = value;
  },
  get key() {
    return sessionStorage.getItem(KEY_ITEM) ?? '';
  },
  set key(value) {
    sessionStorage.setItem(KEY_ITEM, value);
  },
  forget() {
    sessionStorage.removeItem(KEY_ITEM);
    roles = null;
  },
};

/** An API error: the HTTP status, the server's SENSORY_ERR_* code and its message for people. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && body.error && typeof body.error.message === 'string') {
      return new ApiError(response.status, body.error.code ?? '', body.error.message);
    }
  } catch {
    // not JSON: fall through to the status line
  }
  return new ApiError(response.status, '', `${response.status} ${response.statusText || 'error'}`);
}

/**
 * One API call. `json` is sent as a JSON body; `body` as is (a File for uploads). Resolves to the
 * Response when it is 2xx, otherwise rejects with an ApiError carrying the server's message.
 * A 401 with the session's key also tells the page (the key was revoked): it asks for a key again.
 */
export async function api(path, { method = 'GET', json, body, headers = {}, key = session.key, signal, cache = 'no-cache' } = {}) {
  const sent = { ...headers };
  if (key) sent['API-ACCESS-KEY'] = key;
  if (json !== undefined) {
    sent['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers: sent, body, signal, cache });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, 'NETWORK', `The service could not be reached (${error.message}).`);
  }
  if (response.ok) return response;
  const error = await errorOf(response);
  if (response.status === 401 && key && key === session.key) {
    window.dispatchEvent(new CustomEvent('sensory:unauthorized', { detail: error }));
  }
  throw error;
}

export async function apiJson(path, options) {
  return (await api(path, options)).json();
}

function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [field, value] of Object.entries(query)) if (value !== undefined && value !== '') params.set(field, String(value));
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export const paths = {
  datasets: () => '/v1/datasets',
  dataset: (name) => `/v1/datasets/${encodeURIComponent(name)}`,
  stats: (name) => `/v1/datasets/${encodeURIComponent(name)}/stats`,
  samples: (name, query = {}) => {
    const params = new URLSearchParams();
    for (const [field, value] of Object.entries(query)) if (value !== undefined && value !== '') params.set(field, String(value));
    const text = params.toString();
    return `/v1/datasets/${encodeURIComponent(name)}/samples${text ? `?${text}` : ''}`;
  },
  sample: (name, id) => `/v1/datasets/${encodeURIComponent(name)}/samples/${id}`,
  content: (name, id) => `/v1/datasets/${encodeURIComponent(name)}/samples/${id}/content`,
  thumbnail: (name, id, size) => `/v1/datasets/${encodeURIComponent(name)}/samples/${id}/thumbnail?size=${size}`,
  bulk: (name) => `/v1/datasets/${encodeURIComponent(name)}/samples/bulk`,
  actions: (name) => `/v1/datasets/${encodeURIComponent(name)}/samples/actions`,
  undo: (name, id) => `/v1/datasets/${encodeURIComponent(name)}/samples/actions/${id}/undo`,
  audit: (name, query = {}) => withQuery(`/v1/datasets/${encodeURIComponent(name)}/audit`, query),
  sampleAudit: (name, id, query = {}) => withQuery(`/v1/datasets/${encodeURIComponent(name)}/samples/${id}/audit`, query),
  me: () => '/v1/me',
  orders: (active) => `/v1/orders${active ? '?active=true' : ''}`,
  order: (id) => `/v1/orders/${encodeURIComponent(id)}`,
  exports: () => '/v1/exports',
};

/** A sample's original bytes as an object URL (an <img> cannot send the key header itself). */
export async function contentUrl(name, id, signal) {
  const response = await api(paths.content(name, id), { signal });
  return URL.createObjectURL(await response.blob());
}

/**
 * A sample's preview (a small WebP the server makes) as an object URL. The browser's HTTP cache
 * keeps it (the answer is private, max-age a week, with an ETag): scrolling back costs nothing.
 */
export async function thumbnailUrl(name, id, size, signal) {
  const response = await api(paths.thumbnail(name, id, size), { signal, cache: 'default' });
  return URL.createObjectURL(await response.blob());
}
