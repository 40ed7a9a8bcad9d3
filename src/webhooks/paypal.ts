import { createVerify, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { crc32 } from 'node:zlib';

/**
 * PayPal's certificate-based webhook signature ("verify locally"): the headers
 * PAYPAL-TRANSMISSION-ID, -TIME, -SIG, -CERT-URL and -AUTH-ALGO; the signed string is
 * `<transmission id>|<transmission time>|<webhook id>|<CRC32 of the raw body, decimal>`,
 * signed with SHA256withRSA by the key of the certificate at CERT-URL.
 *
 * The certificate URL must be https on an allow-listed host (PayPal's api hosts by default); the
 * certificate is downloaded once and cached, its chain verified up to a trusted root, its
 * subject checked to be PayPal's message-verification certificate and its validity dates
 * checked. Pinned certificates (SKELDIR_PAYPAL_CERTS, a PEM file) replace the download
 * entirely, so verification also works offline.
 */
export interface PayPalOptions {
  /** Hosts the certificate URL may point at. */
  allowedHosts: readonly string[];
  /** Signing certificates trusted as they are (no download, no chain check). */
  pinned: X509Certificate[];
  /** Extra roots for the chain check (tests); the system's Mozilla roots otherwise. */
  extraRoots: X509Certificate[];
  /** Accepted distance between the transmission time and now. */
  toleranceSeconds: number;
  /** Downloads a URL (injectable for tests); default: fetch with a timeout and a size cap. */
  fetchText?: (url: string) => Promise<string>;
}

export const DEFAULT_PAYPAL_HOSTS = ['api.paypal.com', 'api.sandbox.paypal.com', 'api-m.paypal.com', 'api-m.sandbox.paypal.com'];
const SUBJECT_HOSTS = ['messageverificationcerts.paypal.com', 'messageverificationcerts.sandbox.paypal.com'];

/** Options from the environment: SKELDIR_PAYPAL_CERTS, SKELDIR_PAYPAL_CERT_HOSTS, SKELDIR_PAYPAL_TOLERANCE_SECONDS. */
export function paypalOptionsFromEnv(env: NodeJS.ProcessEnv): PayPalOptions {
  const pinned = env.SKELDIR_PAYPAL_CERTS ? splitPem(readFileSync(env.SKELDIR_PAYPAL_CERTS, 'utf8')).map((p) => new X509Certificate(p)) : [];
  const hosts = env.SKELDIR_PAYPAL_CERT_HOSTS ? env.SKELDIR_PAYPAL_CERT_HOSTS.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean) : DEFAULT_PAYPAL_HOSTS;
  const tolerance = env.SKELDIR_PAYPAL_TOLERANCE_SECONDS ? Number(env.SKELDIR_PAYPAL_TOLERANCE_SECONDS) : 300;
  return { allowedHosts: hosts, pinned, extraRoots: [], toleranceSeconds: Number.isFinite(tolerance) && tolerance > 0 ? tolerance : 300 };
}

export function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export interface PayPalHeaders {
  transmissionId?: string;
  transmissionTime?: string;
  transmissionSig?: string;
  certUrl?: string;
  authAlgo?: string;
}

export class PayPalVerifier {
  /** Downloaded certificates, and failed downloads (cert null) for FAILURE_CACHE_MS: one outbound fetch per URL at most that often. */
  private readonly cache = new Map<string, { cert: X509Certificate | null; until: number }>();
  private readonly roots: X509Certificate[];

  constructor(private readonly options: PayPalOptions) {
    this.roots = [...options.extraRoots, ...rootCertificates.map((p) => new X509Certificate(p))];
  }

  /** The string PayPal signs. */
  static signedString(transmissionId: string, transmissionTime: string, webhookId: string, body: Buffer): string {
    return `${transmissionId}|${transmissionTime}|${webhookId}|${crc32(body) >>> 0}`;
  }

  async verify(body: Buffer, h: PayPalHeaders, webhookId: string, nowMs: number): Promise<boolean> {
    const { transmissionId, transmissionTime, transmissionSig, certUrl, authAlgo } = h;
    if (!transmissionId || !transmissionTime || !transmissionSig || !certUrl) return false;
    if (authAlgo && authAlgo !== 'SHA256withRSA') return false;
    if (!/^[A-Za-z0-9-]{1,100}$/.test(transmissionId) || transmissionTime.length > 40 || transmissionSig.length > 2048) return false;
    const sent = Date.parse(transmissionTime);
    if (!Number.isFinite(sent) || Math.abs(nowMs - sent) > this.options.toleranceSeconds * 1000) return false;
    if (!this.allowedUrl(certUrl)) return false;
    const certs = this.options.pinned.length ? this.options.pinned : [await this.certificate(certUrl, nowMs)].filter((c): c is X509Certificate => !!c);
    const message = PayPalVerifier.signedString(transmissionId, transmissionTime, webhookId, body);
    const signature = Buffer.from(transmissionSig, 'base64');
    for (const cert of certs) {
      const v = createVerify('RSA-SHA256');
      v.update(message);
      if (v.verify(cert.publicKey, signature)) return true;
    }
    return false;
  }

  private allowedUrl(url: string): boolean {
    try {
      const u = new URL(url);
      return (
        u.protocol === 'https:' && !u.username && !u.password && (u.port === '' || u.port === '443') && this.options.allowedHosts.includes(u.hostname.toLowerCase()) &&
        CERT_PATH.test(u.pathname) && !u.search && !u.hash
      );
    } catch {
      return false;
    }
  }

  /** The signing certificate at `url`, downloaded once and cached until it expires (at most a day). */
  private async certificate(url: string, nowMs: number): Promise<X509Certificate | null> {
    const hit = this.cache.get(url);
    if (hit && hit.until > nowMs) return hit.cert;
    let cert: X509Certificate | null = null;
    try {
      cert = this.checkChain(splitPem(await (this.options.fetchText ?? fetchCertificate)(url)), nowMs);
    } catch {
      cert = null;
    }
    if (this.cache.size >= 32) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(url, { cert, until: cert ? Math.min(Date.parse(cert.validTo), nowMs + 24 * 3600 * 1000) : nowMs + FAILURE_CACHE_MS });
    return cert;
  }

  /** The leaf of a PEM chain when it is PayPal's verification certificate, in date, chaining to a trusted root. */
  checkChain(pems: string[], nowMs: number): X509Certificate | null {
    if (pems.length === 0) return null;
    let chain: X509Certificate[];
    try {
      chain = pems.map((p) => new X509Certificate(p));
    } catch {
      return null;
    }
    const leaf = chain[0]!;
    if (!SUBJECT_HOSTS.some((h) => leaf.checkHost(h) !== undefined)) return null;
    for (const c of chain) if (Date.parse(c.validFrom) > nowMs || Date.parse(c.validTo) < nowMs) return null;
    for (let i = 0; i + 1 < chain.length; i++) if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) return null;
    const top = chain[chain.length - 1]!;
    const trusted = this.roots.some((r) => (r.fingerprint256 === top.fingerprint256) || (top.checkIssued(r) && top.verify(r.publicKey)));
    return trusted ? leaf : null;
  }
}

/** PayPal's certificate URLs: https://api.paypal.com/v1/notifications/certs/CERT-…, nothing else is fetched. */
const CERT_PATH = /^\/v1\/notifications\/certs\/[A-Za-z0-9._-]{1,200}$/;
/** A failed download (unreachable, not a trusted PayPal chain) is not retried for this long. */
const FAILURE_CACHE_MS = 5 * 60 * 1000;
export const MAX_CERT_BYTES = 64 * 1024;

async function fetchCertificate(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000), redirect: 'error' });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return readCapped(res, MAX_CERT_BYTES);
}

/** The body as text, read as a stream and abandoned as soon as it passes `cap` bytes. */
export async function readCapped(res: Response, cap: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > cap) {
      await reader.cancel();
      throw new Error('certificate too large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
