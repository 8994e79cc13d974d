// The public HTTP API, as the console calls it. The token lives in sessionStorage only (gone when the
// tab closes); "Sign out" removes it. Requests go to the page's own origin and base path, so the
// console works under an API Gateway stage (/dev/console -> /dev/deployments).

const TOKEN_KEY = 'nexus.token';

export const basePath = window.location.pathname.replace(/\/console(\/.*)?$/, '');

export function token() {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

export function signIn(value) {
  window.sessionStorage.setItem(TOKEN_KEY, value);
}

export function signOut() {
  window.sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || `HTTP_${status}`;
    this.hint = error.hint || '';
    this.details = error.details || {};
  }
}

export async function call(method, path, body, options = {}) {
  const headers = { Accept: 'application/json' };
  const bearer = options.token ?? token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (options.idempotencyKey) headers['Idempotency-Key'] = options.idempotencyKey;
  let response;
  try {
    response = await fetch(basePath + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      signal: options.signal,
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, {
      code: 'API_UNREACHABLE',
      message: 'The service did not answer.',
      hint: 'Check that the service is running (make run) and reload the page.',
    });
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
  if (!response.ok) {
    const error = data && data.error ? data.error : { message: `HTTP ${response.status}` };
    if (response.status === 401 && !options.token) {
      signOut();
      window.dispatchEvent(new CustomEvent('nexus:signed-out', { detail: error }));
    }
    throw new ApiError(response.status, error);
  }
  return { status: response.status, data };
}

export const get = (path, options) => call('GET', path, undefined, options).then((r) => r.data);
export const post = (path, body, options) => call('POST', path, body ?? {}, options);
export const put = (path, body, options) => call('PUT', path, body, options);
export const patch = (path, body, options) => call('PATCH', path, body, options);
export const del = (path, options) => call('DELETE', path, undefined, options);

// For a list whose filters reload it: each call's signal aborts the request the call before it made, so
// the late answer of an earlier filter (or page) is never drawn over the answer to the latest one; the
// route's signal (the user left the page) aborts them all. An aborted request rejects with AbortError.
// (AbortSignal.any is Chrome 116, Firefox 124, Safari 17.4: older browsers forward the route's abort.)
export function latestOnly(routeSignal) {
  let controller = null;
  return () => {
    controller?.abort();
    controller = new AbortController();
    if (typeof AbortSignal.any === 'function') return AbortSignal.any([routeSignal, controller.signal]);
    const mine = controller;
    if (routeSignal.aborted) mine.abort();
    else routeSignal.addEventListener('abort', () => mine.abort(), { once: true });
    return mine.signal;
  };
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export function newKey() {
  return window.crypto.randomUUID();
}
