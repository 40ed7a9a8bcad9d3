import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * HMAC signature schemes, each computed over the raw request bytes exactly as received (never
 * over re-serialised JSON). Every function answers only true or false: the HTTP layer gives
 * one identical 401 for every cause, so nothing here needs to say why.
 */

/** Stripe rejects events whose signed timestamp is older than this (its libraries' default). */
export const STRIPE_TOLERANCE_SECONDS = 300;

function equalBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`; v1 is
 * HMAC-SHA256(secret, `${t}.${body}`) in hex. Any of several v1 values may match (Stripe sends
 * one per active secret while a secret is being rolled). The timestamp must be within the
 * tolerance of now, in either direction.
 */
export function verifyStripe(body: Buffer, header: string | undefined, secret: string, nowSeconds: number, tolerance = STRIPE_TOLERANCE_SECONDS): boolean {
  if (!header || header.length > 4096) return false;
  let t: string | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (k === 't') t = v;
    else if (k === 'v1' && /^[0-9a-f]{64}$/.test(v)) signatures.push(Buffer.from(v, 'hex'));
  }
  if (!t || !/^\d{1,12}$/.test(t) || signatures.length === 0) return false;
  if (Math.abs(nowSeconds - Number(t)) > tolerance) return false;
  const expected = createHmac('sha256', secret).update(`${t}.`).update(body).digest();
  let ok = false;
  for (const s of signatures) ok = equalBytes(s, expected) || ok; // no early exit: constant work per header
  return ok;
}

export function signStripe(body: Buffer | string, secret: string, t: number): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex')}`;
}

/** base64(HMAC-SHA256(secret, body)): Shopify's `X-Shopify-Hmac-Sha256` and WooCommerce's `X-WC-Webhook-Signature`. */
export function verifyBase64Hmac(body: Buffer, header: string | undefined, secret: string): boolean {
  if (!header || !/^[A-Za-z0-9+/]{43}=$/.test(header.trim())) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  return equalBytes(Buffer.from(header.trim(), 'base64'), expected);
}

export function signBase64Hmac(body: Buffer | string, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('base64');
}
