import { execFileSync } from 'node:child_process';
import { createSign, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PayPalVerifier } from './paypal.js';
import { signBase64Hmac, signStripe } from './signatures.js';

/** Test helpers: signed deliveries as each provider sends them. */

export const TEST_SECRET_KEY = '0123456789abcdef'.repeat(4);

export function stripeHeaders(body: string, secret: string, t = Math.floor(Date.now() / 1000)) {
  return { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signStripe(body, secret, t) };
}

export function stripeEvent(type: string, object: Record<string, unknown>, id = `evt_${randomUUID().replace(/-/g, '')}`) {
  return JSON.stringify({ id, object: 'event', api_version: '2024-06-20', created: 1717000000, livemode: false, type, data: { object } });
}

export function stripeCharge(o: { id: string; amount: number; refunded?: number; captured?: boolean; orderId?: string; currency?: string; created?: number }) {
  return {
    id: o.id,
    object: 'charge',
    amount: o.amount,
    amount_captured: o.captured === false ? 0 : o.amount,
    amount_refunded: o.refunded ?? 0,
    captured: o.captured ?? true,
    currency: o.currency ?? 'usd',
    created: o.created ?? 1717000000,
    payment_intent: `pi_${o.id}`,
    refunded: (o.refunded ?? 0) >= o.amount,
    status: 'succeeded',
    metadata: o.orderId ? { order_id: o.orderId } : {},
  };
}

export function shopifyHeaders(body: string, secret: string, topic: string, webhookId = randomUUID()) {
  return {
    'content-type': 'application/json',
    'x-shopify-hmac-sha256': signBase64Hmac(body, secret),
    'x-shopify-topic': topic,
    'x-shopify-webhook-id': webhookId,
    'x-shopify-shop-domain': 'shop.myshopify.com',
  };
}

export function wooHeaders(body: string, secret: string, topic: string, deliveryId = randomUUID()) {
  return {
    'content-type': 'application/json',
    'x-wc-webhook-signature': signBase64Hmac(body, secret),
    'x-wc-webhook-topic': topic,
    'x-wc-webhook-resource': topic.split('.')[0]!,
    'x-wc-webhook-event': topic.split('.')[1]!,
    'x-wc-webhook-delivery-id': deliveryId,
    'x-wc-webhook-id': '12',
  };
}

export interface TestPki {
  dir: string;
  caPem: string;
  leafPem: string;
  leafKey: string;
  /** A certificate for another name, signed by the same CA. */
  strangerPem: string;
  strangerKey: string;
}

/** A throw-away CA and a PayPal-named signing certificate (openssl). */
export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'skeldir-pki-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=Skeldir Test Root CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const leaf = (name: string, cn: string) => {
    run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=DNS:${cn}\nbasicConstraints=CA:FALSE\n`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '30', '-extfile', `${name}.ext`);
  };
  leaf('leaf', 'messageverificationcerts.paypal.com');
  leaf('stranger', 'example.com');
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return { dir, caPem: read('ca.pem'), leafPem: read('leaf.pem'), leafKey: read('leaf.key'), strangerPem: read('stranger.pem'), strangerKey: read('stranger.key') };
}

export const PAYPAL_CERT_URL = 'https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-test';

export function paypalHeaders(body: string, webhookId: string, key: string, o: { time?: Date; transmissionId?: string; certUrl?: string } = {}) {
  const transmissionId = o.transmissionId ?? randomUUID();
  const time = (o.time ?? new Date()).toISOString();
  const s = createSign('RSA-SHA256');
  s.update(PayPalVerifier.signedString(transmissionId, time, webhookId, Buffer.from(body)));
  return {
    'content-type': 'application/json',
    'paypal-transmission-id': transmissionId,
    'paypal-transmission-time': time,
    'paypal-transmission-sig': s.sign(key, 'base64'),
    'paypal-cert-url': o.certUrl ?? PAYPAL_CERT_URL,
    'paypal-auth-algo': 'SHA256withRSA',
  };
}
