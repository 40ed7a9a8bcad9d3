import type pg from 'pg';

/**
 * Channel normalisation: what an event says about its marketing channel, mapped onto the
 * `channel_taxonomy` codes (docs/ingestion.md lists these rules for users).
 *
 * 1. An explicit `channel` wins. It is lower-cased, trimmed, and runs of spaces, hyphens and
 *    dots become `_`. A code of the taxonomy (active) is taken as is; otherwise a known alias
 *    (CHANNEL_ALIASES, e.g. `facebook` → `facebook_paid`); otherwise `unknown`.
 * 2. Without `channel`, `utm_source` / `utm_medium` decide (lower-cased, trimmed), first match:
 *    email medium (or a newsletter source) → `email`; paid medium → the network's paid code by
 *    source (Facebook family → `facebook_paid`, TikTok → `tiktok_paid`, Google family →
 *    `google_display_paid` for display media or display sources, else `google_search_paid`;
 *    another network → `unknown`); social medium from the Facebook family → `facebook_brand`;
 *    organic medium → `organic`; referral medium → `referral`; `(none)`/`none` medium with a
 *    `(direct)`/`direct` or no source → `direct`; anything else → `unknown`.
 * 3. Neither given → `unknown` (Skeldir does not guess "direct" from silence).
 * A rule whose code is not an active taxonomy row gives `unknown`.
 */
export const CHANNEL_ALIASES: Readonly<Record<string, string>> = {
  facebook: 'facebook_paid',
  facebook_ads: 'facebook_paid',
  fb: 'facebook_paid',
  fb_ads: 'facebook_paid',
  meta: 'facebook_paid',
  meta_ads: 'facebook_paid',
  instagram: 'facebook_paid',
  instagram_ads: 'facebook_paid',
  facebook_organic: 'facebook_brand',
  facebook_page: 'facebook_brand',
  google_ads: 'google_search_paid',
  adwords: 'google_search_paid',
  google_search: 'google_search_paid',
  google_cpc: 'google_search_paid',
  google_display: 'google_display_paid',
  gdn: 'google_display_paid',
  tiktok: 'tiktok_paid',
  tiktok_ads: 'tiktok_paid',
  newsletter: 'email',
  e_mail: 'email',
  seo: 'organic',
  organic_search: 'organic',
  none: 'direct',
  '(direct)': 'direct',
};

const FACEBOOK_SOURCES = new Set(['facebook', 'fb', 'meta', 'instagram', 'ig', 'messenger', 'facebook.com', 'm.facebook.com', 'l.facebook.com', 'instagram.com']);
const TIKTOK_SOURCES = new Set(['tiktok', 'tiktok.com']);
const GOOGLE_SOURCES = new Set(['google', 'adwords', 'googleads', 'google_ads', 'google-ads', 'youtube', 'gdn', 'dv360', 'doubleclick']);
const GOOGLE_DISPLAY_SOURCES = new Set(['gdn', 'dv360', 'doubleclick']);
const PAID_MEDIA = new Set([
  'cpc', 'ppc', 'paid', 'paidsearch', 'paid_search', 'paid-search', 'sem', 'cpm', 'cpv', 'cpa', 'display', 'banner',
  'paid_social', 'paidsocial', 'paid-social', 'social_paid', 'social-paid', 'ads', 'ad',
]);
const DISPLAY_MEDIA = new Set(['cpm', 'cpv', 'display', 'banner']);
const EMAIL_MEDIA = new Set(['email', 'e-mail', 'e_mail', 'newsletter']);
const EMAIL_SOURCES = new Set(['newsletter', 'email']);
const SOCIAL_MEDIA = new Set(['social', 'social-network', 'social_network', 'social-media', 'social_media', 'sm']);
const ORGANIC_MEDIA = new Set(['organic', 'seo']);
const REFERRAL_MEDIA = new Set(['referral', 'link']);
const NONE_MEDIA = new Set(['(none)', 'none']);
const DIRECT_SOURCES = new Set(['(direct)', 'direct']);

export interface ChannelInput {
  channel?: string | undefined;
  utm_source?: string | undefined;
  utm_medium?: string | undefined;
}

/** Maps an event's channel information onto a taxonomy code; `active` holds the active codes. */
export function normaliseChannel(input: ChannelInput, active: ReadonlySet<string>): string {
  const known = (code: string) => (active.has(code) ? code : 'unknown');
  if (input.channel !== undefined) {
    const name = input.channel.trim().toLowerCase().replace(/[\s.-]+/g, '_');
    if (active.has(name)) return name;
    const alias = CHANNEL_ALIASES[name];
    return alias ? known(alias) : 'unknown';
  }
  const source = input.utm_source?.trim().toLowerCase() || undefined;
  const medium = input.utm_medium?.trim().toLowerCase() || undefined;
  if (source === undefined && medium === undefined) return 'unknown';
  if ((medium && EMAIL_MEDIA.has(medium)) || (source && EMAIL_SOURCES.has(source))) return known('email');
  if (medium && PAID_MEDIA.has(medium)) {
    if (source && FACEBOOK_SOURCES.has(source)) return known('facebook_paid');
    if (source && TIKTOK_SOURCES.has(source)) return known('tiktok_paid');
    if (source && GOOGLE_SOURCES.has(source)) {
      return known(DISPLAY_MEDIA.has(medium) || GOOGLE_DISPLAY_SOURCES.has(source) ? 'google_display_paid' : 'google_search_paid');
    }
    return 'unknown';
  }
  if (medium && SOCIAL_MEDIA.has(medium)) return source && FACEBOOK_SOURCES.has(source) ? known('facebook_brand') : 'unknown';
  if (medium && ORGANIC_MEDIA.has(medium)) return known('organic');
  if (medium && REFERRAL_MEDIA.has(medium)) return known('referral');
  if (medium && NONE_MEDIA.has(medium) && (source === undefined || DIRECT_SOURCES.has(source))) return known('direct');
  if (medium === undefined && source && DIRECT_SOURCES.has(source)) return known('direct');
  return 'unknown';
}

/**
 * The active taxonomy codes, read from the database and kept for a minute (the table changes
 * by migration, rarely). `unknown` is always there: it is the answer of last resort.
 */
export class ChannelTaxonomy {
  private codes: ReadonlySet<string> | undefined;
  private loadedAt = 0;
  private loading: Promise<ReadonlySet<string>> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly ttlMs = 60_000,
  ) {}

  async active(): Promise<ReadonlySet<string>> {
    if (this.codes && Date.now() - this.loadedAt < this.ttlMs) return this.codes;
    this.loading ??= this.pool
      .query<{ code: string }>(`SELECT code FROM channel_taxonomy WHERE is_active`)
      .then(({ rows }) => {
        this.codes = new Set([...rows.map((r) => r.code), 'unknown']);
        this.loadedAt = Date.now();
        return this.codes;
      })
      .finally(() => (this.loading = undefined));
    return this.loading;
  }
}
