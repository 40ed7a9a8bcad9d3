import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './api-schema';

/** An RFC 9457 problem as the API sends it (src/http/problems.ts). */
export interface Problem {
  title: string;
  detail: string;
  status: number;
  code: string;
  [extra: string]: unknown;
}

let csrfToken: string | null = null;
/** Set from GET /api/v1/auth/session (or a sign-in answer): sent on every state-changing request. */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (request.method !== 'GET' && request.method !== 'HEAD' && csrfToken) request.headers.set('x-csrf-token', csrfToken);
    return request;
  },
};

/** The typed client: every path, parameter and answer comes from the OpenAPI document (npm run web:api). */
export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' });
api.use(csrf);

/** A problem from a failed call, or one that says the network failed. */
export function asProblem(error: unknown, response?: Response): Problem {
  if (error && typeof error === 'object' && 'title' in error && 'detail' in error) return error as Problem;
  return {
    title: response ? `The server answered ${response.status}` : 'Skeldir could not be reached',
    detail: response ? response.statusText || 'unexpected answer' : 'check your connection and try again',
    status: response?.status ?? 0,
    code: 'network',
  };
}

/** Unwraps an openapi-fetch result: the data, or a thrown Problem. */
export async function call<T>(promise: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await promise;
  } catch {
    throw asProblem(undefined);
  }
  if (result.error !== undefined || !result.response.ok) throw asProblem(result.error, result.response);
  return result.data as T;
}
