// zipfleet operator page: calls to the API's /v1 routes.
// The token lives in this tab's sessionStorage only; it travels in the
// Authorization header, never in a URL, and is never logged. Errors arrive
// as ApiError with the API's own message (a 401 as Unauthorized, which the
// app answers by showing the sign-in form again).

const TOKEN_KEY = 'zipfleet.token';

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details ?? [];
  }
}

export class Unauthorized extends ApiError {}

// The API's root, relative to the page (/ui/ → /), so the page also works
// behind a proxy that serves the API under a path prefix.
const ROOT = new URL('../', document.baseURI);

/**
 * request('v1/jobs', {method, body, query}) → {status, data}.
 * Throws Unauthorized on 401 (or without a token), ApiError otherwise.
 */
export async function request(path, { method = 'GET', body, query } = {}) {
  const token = session.token;
  if (!token) throw new Unauthorized(401, 'unauthorized', 'Sign in with the API token.');
  const url = new URL(path, ROOT);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, String(value));
  }
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError(0, 'network', 'The API did not answer. Is zipfleet-api running?');
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.status === 401) {
    throw new Unauthorized(401, 'unauthorized', 'The API did not accept the token. Sign in again.');
  }
  if (!response.ok) {
    const error = data && typeof data === 'object' ? data.error : null;
    throw new ApiError(
      response.status,
      error?.code ?? `http_${response.status}`,
      error?.message ?? `The API answered ${response.status} ${response.statusText}.`,
      error?.details,
    );
  }
  return { status: response.status, data };
}

/** The body of a successful GET. */
export async function get(path, query) {
  return (await request(path, { query })).data;
}
