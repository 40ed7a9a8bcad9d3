import secureJson from 'secure-json-parse';
import { HttpProblem } from './problems.js';

/** Deepest nesting of objects/arrays a request body may have (an event is 2 levels deep). */
export const MAX_JSON_DEPTH = 8;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** A UTF-16 surrogate that is not half of a pair (in `u` mode a pair is one code point, so only lone halves match). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Parses a JSON request body strictly: valid UTF-8 (a lenient decoder would silently turn
 * bad bytes into U+FFFD), valid JSON, no prototype-pollution keys, bounded depth, no NUL
 * characters and no lone UTF-16 surrogates (`"\ud800"` is a valid JSON escape but no
 * character: PostgreSQL text and jsonb cannot store either, so letting one through would
 * fail in the database). Each failure is a specific 400 problem naming where it is.
 */
export function parseJsonBody(raw: Buffer): unknown {
  if (raw.length === 0) throw new HttpProblem('empty_body', 'the request body is empty; send a JSON document', { field: 'body' });
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new HttpProblem('invalid_utf8', 'the request body is not valid UTF-8', { field: 'body' });
  }
  if (text.trim() === '') throw new HttpProblem('empty_body', 'the request body is empty; send a JSON document', { field: 'body' });
  let value: unknown;
  try {
    // Rejects __proto__ and constructor.prototype before any object is built.
    value = secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (error) {
    const message = (error as Error).message;
    if (/prototype|__proto__|constructor/i.test(message)) {
      // secure-json-parse does not say where: the whole body is named.
      throw new HttpProblem('forbidden_key', 'the body uses a forbidden property name (__proto__, constructor or prototype)', { field: 'body' });
    }
    throw new HttpProblem('malformed_json', `the request body is not valid JSON: ${message.slice(0, 200)}`, { field: 'body' });
  }
  // The common body passes: checked without building a pointer per property; only a body that
  // fails is walked again to say where. Building the pointers (two replaces per key) was most of
  // the 8 µs the walk took per single-event request (server profile, bench/ingestion.bench.ts).
  if (!passes(value, 0)) inspect(value, 'body', 0);
  return value;
}

/** True when inspect() would find nothing wrong in `value` (src/http/json-body.test.ts holds the two together). */
export function passes(value: unknown, depth: number): boolean {
  if (typeof value === 'string') return !value.includes('\u0000') && !LONE_SURROGATE.test(value);
  if (value === null || typeof value !== 'object') return true;
  if (depth >= MAX_JSON_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!passes(value[i], depth + 1)) return false;
    return true;
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (FORBIDDEN_KEYS.has(key) || key.includes('\u0000') || LONE_SURROGATE.test(key)) return false;
    if (!passes(record[key], depth + 1)) return false;
  }
  return true;
}

/** Walks the parsed body, throwing at the first fault; `path` is the JSON pointer of `value`, prefixed `body` like validation problems. */
export function inspect(value: unknown, path: string, depth: number): void {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) throw new HttpProblem('nul_character', `${path} contains a NUL character (\\u0000)`, { field: path });
    if (LONE_SURROGATE.test(value)) throw new HttpProblem('invalid_unicode', `${path} contains a lone UTF-16 surrogate (\\ud800–\\udfff not part of a pair)`, { field: path });
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (depth >= MAX_JSON_DEPTH) {
    throw new HttpProblem('too_deep', `the body is nested more than ${MAX_JSON_DEPTH} levels deep at ${path}`, { field: path });
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => inspect(item, `${path}/${i}`, depth + 1));
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    const here = `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (FORBIDDEN_KEYS.has(key)) throw new HttpProblem('forbidden_key', `property name ${JSON.stringify(key)} is not allowed`, { field: here });
    // A bad property name cannot be written as a pointer: the object holding it is named.
    if (key.includes('\u0000')) throw new HttpProblem('nul_character', `a property name in ${path} contains a NUL character`, { field: path });
    if (LONE_SURROGATE.test(key)) throw new HttpProblem('invalid_unicode', `a property name in ${path} contains a lone UTF-16 surrogate`, { field: path });
    inspect(item, here, depth + 1);
  }
}
