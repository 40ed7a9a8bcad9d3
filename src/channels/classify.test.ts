import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  CHANNEL_ALIASES,
  classify,
  classifySpend,
  CLICK_IDS,
  compileRuleSet,
  DEFAULT_CHANNEL_CODES,
  DEFAULT_RULES,
  defaultRuleSet,
  CLICK_ID_PLATFORM,
  campaignOf,
  hostOf,
  normaliseChannelName,
  normaliseTouch,
  type NormalisedTouch,
  RULE_FIELDS,
  RULE_OPS,
  type Rule,
  type Touch,
} from './classify.js';

const channelOf = (touch: Touch, active?: string[]) => classify(touch, defaultRuleSet(active)).channel;

describe('the built-in defaults keep the utm mapping ingestion always had', () => {
  const cases: [Record<string, string>, string][] = [
    [{ channel: 'google_search_paid' }, 'google_search_paid'],
    [{ channel: ' Google-Search.Paid ' }, 'google_search_paid'],
    [{ channel: 'Facebook' }, 'facebook_paid'],
    [{ channel: 'newsletter' }, 'email'],
    [{ channel: 'carrier-pigeon' }, 'unknown'],
    [{ channel: 'carrier-pigeon', utm_source: 'google', utm_medium: 'cpc' }, 'unknown'],
    [{ channel: 'email', utm_source: 'google', utm_medium: 'cpc' }, 'email'],
    [{ utm_source: 'google', utm_medium: 'cpc' }, 'google_search_paid'],
    [{ utm_source: 'google', utm_medium: 'display' }, 'google_display_paid'],
    [{ utm_source: 'dv360', utm_medium: 'cpc' }, 'google_display_paid'],
    [{ utm_source: 'ig', utm_medium: 'paid_social' }, 'facebook_paid'],
    [{ utm_source: 'TikTok', utm_medium: 'CPM' }, 'tiktok_paid'],
    [{ utm_source: 'bing', utm_medium: 'cpc' }, 'unknown'],
    [{ utm_source: 'facebook', utm_medium: 'social' }, 'facebook_brand'],
    [{ utm_source: 'twitter', utm_medium: 'social' }, 'unknown'],
    [{ utm_source: 'google', utm_medium: 'organic' }, 'organic'],
    [{ utm_source: 'blog.example', utm_medium: 'referral' }, 'referral'],
    [{ utm_source: 'mailchimp', utm_medium: 'email' }, 'email'],
    [{ utm_source: 'newsletter' }, 'email'],
    [{ utm_source: '(direct)', utm_medium: '(none)' }, 'direct'],
    [{ utm_medium: '(none)' }, 'direct'],
    [{ utm_source: 'direct' }, 'direct'],
    [{ utm_source: 'google' }, 'unknown'],
    [{}, 'unknown'],
  ];
  for (const [input, expected] of cases) test(`${JSON.stringify(input)} → ${expected}`, () => assert.equal(channelOf(input), expected));

  test('every alias names a default code; an inactive code (explicit or by rule) gives unknown', () => {
    for (const code of Object.values(CHANNEL_ALIASES)) assert.ok((DEFAULT_CHANNEL_CODES as readonly string[]).includes(code), code);
    assert.equal(channelOf({ channel: 'tiktok' }, ['unknown']), 'unknown');
    assert.equal(channelOf({ utm_source: 'tiktok', utm_medium: 'cpc' }, ['unknown', 'email']), 'unknown');
  });
});

describe('click ids, referrers and landing pages', () => {
  const cases: [Touch, string, string][] = [
    [{ gclid: 'abc' }, 'google_search_paid', 'Google Ads click id'],
    [{ gbraid: 'abc' }, 'google_search_paid', 'Google Ads click id'],
    [{ wbraid: 'abc' }, 'google_search_paid', 'Google Ads click id'],
    [{ ttclid: 'abc' }, 'tiktok_paid', 'TikTok Ads click id'],
    [{ msclkid: 'abc', referrer: 'https://www.bing.com/search?q=x' }, 'unknown', 'Microsoft Ads click id'],
    [{ li_fat_id: 'abc', referrer: 'https://www.linkedin.com/' }, 'unknown', 'LinkedIn Ads click id'],
    [{ fbclid: 'abc' }, 'facebook_brand', 'Facebook click id'],
    [{ fbclid: 'abc', utm_source: 'facebook', utm_medium: 'paid_social' }, 'facebook_paid', 'utm paid Facebook'],
    [{ gclid: 'abc', utm_source: 'google', utm_medium: 'display' }, 'google_display_paid', 'utm paid Google display medium'],
    [{ landing_url: 'https://shop.example/p?gclid=xyz&utm_campaign=Spring' }, 'google_search_paid', 'Google Ads click id'],
    [{ landing_url: 'https://shop.example/?utm_source=Newsletter' }, 'email', 'utm email source'],
    [{ referrer: 'https://mail.google.com/mail/u/0/' }, 'email', 'webmail referrer'],
    [{ referrer: 'https://www.google.co.uk/' }, 'organic', 'search engine referrer'],
    [{ referrer: 'https://news.google.de/' }, 'organic', 'search engine referrer'],
    [{ referrer: 'https://duckduckgo.com/' }, 'organic', 'search engine referrer'],
    [{ referrer: 'https://l.facebook.com/l.php?u=x' }, 'facebook_brand', 'Facebook referrer'],
    [{ referrer: 'https://t.co/abc' }, 'referral', 'social referrer'],
    [{ referrer: 'https://blog.example.org/post' }, 'referral', 'other referrer'],
    [{ referrer: 'https://google.evil.example.com/' }, 'referral', 'other referrer'],
    [{ landing_url: 'https://shop.example/' }, 'direct', 'landing without referrer'],
    [{ landing_url: 'https://shop.example/b', referrer: 'https://shop.example/a' }, 'direct', 'landing without referrer'],
    [{ landing_url: 'https://shop.example/?utm_source=partner' }, 'unknown', 'no rule matched'],
  ];
  for (const [touch, channel, name] of cases) {
    test(`${JSON.stringify(touch)} → ${channel} (${name})`, () => {
      const r = classify(touch, defaultRuleSet());
      assert.equal(r.channel, channel);
      assert.equal(r.decided_by.name, name);
    });
  }

  test('fields given win over the landing URL; the campaign is campaign_id, else utm_campaign, as sent', () => {
    const r = classify({ utm_source: 'google', utm_medium: 'cpc', landing_url: 'https://x.example/?utm_source=newsletter&utm_campaign=Spring Sale' }, defaultRuleSet());
    assert.equal(r.channel, 'google_search_paid');
    assert.equal(r.campaign, 'Spring Sale');
    assert.equal(classify({ campaign_id: '123', utm_campaign: 'Spring' }, defaultRuleSet()).campaign, '123');
    assert.equal(classify({}, defaultRuleSet()).campaign, null);
    assert.equal(classify({ gclid: 'x' }, defaultRuleSet()).ad_platform, 'google_ads');
  });

  test('hosts: scheme optional, www. dropped, lower case; garbage is no host', () => {
    assert.equal(hostOf('https://WWW.Example.COM:8443/x?y'), 'example.com');
    assert.equal(hostOf('example.com'), 'example.com');
    assert.equal(hostOf('::::'), undefined);
    assert.equal(hostOf(''), undefined);
  });
});

describe("a tenant's rules", () => {
  const rules: Rule[] = [
    { id: 'r1', name: 'bing ads', channel: 'microsoft_search_paid', position: 10, conditions: [{ field: 'click_id', op: 'in', value: ['msclkid'] }] },
    { id: 'r2', name: 'podcast', channel: 'podcast', position: 20, conditions: [{ field: 'utm_medium', op: 'equals', value: 'Podcast' }] },
    { id: 'r3', name: 'podcast by campaign', channel: 'referral', position: 30, conditions: [{ field: 'campaign', op: 'prefix', value: 'pod-' }] },
    { id: 'r4', name: 'off', channel: 'email', position: 5, active: false, conditions: [{ field: 'utm_medium', op: 'present' }] },
    { id: 'r5', name: 'pmax', channel: 'google_display_paid', position: 1, conditions: [{ field: 'ad_platform', op: 'equals', value: 'google_ads' }, { field: 'campaign', op: 'contains', value: 'pmax' }] },
  ];
  const set = compileRuleSet(
    [
      ...DEFAULT_CHANNEL_CODES.map((code) => ({ code, active: true, ad_platform: code.startsWith('google') ? 'google_ads' : null })),
      { code: 'microsoft_search_paid', active: true, ad_platform: 'microsoft_ads' },
      { code: 'podcast', active: true, ad_platform: null },
    ],
    rules,
  );

  test('come before the defaults, in position order, skipping inactive rules; explicit channels still win', () => {
    assert.deepEqual(pick(classify({ msclkid: 'x', referrer: 'https://bing.com' }, set)), ['microsoft_search_paid', 'r1']);
    assert.deepEqual(pick(classify({ utm_medium: 'podcast', utm_campaign: 'pod-1' }, set)), ['podcast', 'r2']);
    assert.deepEqual(pick(classify({ utm_campaign: 'POD-7' }, set)), ['referral', 'r3']);
    assert.deepEqual(pick(classify({ gclid: 'x', campaign_id: 'Brand PMax 2026' }, set)), ['google_display_paid', 'r5']);
    assert.deepEqual(pick(classify({ channel: 'email', msclkid: 'x' }, set)), ['email', undefined]);
    assert.equal(classify({ msclkid: 'x' }, set).ad_platform, 'microsoft_ads');
  });

  test('match on the sender\'s unknown explicit channel, else that stays unknown', () => {
    const s2 = compileRuleSet(set.channels.values(), [{ id: 'x', name: 'carrier', channel: 'podcast', conditions: [{ field: 'channel', op: 'equals', value: 'carrier_pigeon' }] }]);
    assert.equal(classify({ channel: 'Carrier Pigeon' }, s2).channel, 'podcast');
    assert.equal(classify({ channel: 'owl' }, s2).decided_by.kind, 'explicit_unknown');
  });

  test('a stored rule that cannot compile is left out, the others still apply', () => {
    const bad = { id: 'bad', name: 'bad', channel: 'podcast', position: 0, conditions: [{}] } as unknown as Rule;
    const skipped: string[] = [];
    const s2 = compileRuleSet(set.channels.values(), [bad, ...rules], (r) => skipped.push(r.id));
    assert.deepEqual(skipped, ['bad']);
    assert.equal(classify({ utm_medium: 'podcast' }, s2).channel, 'podcast');
  });

  test('spend rows: rules on platform and campaign, then the only channel of the platform, then the platform default', () => {
    assert.equal(classifySpend({ platform: 'google_ads', campaign_id: '1', campaign_name: 'Brand PMax' }, set).channel, 'google_display_paid');
    // Two Google channels: no single one, so the default channel of google_ads.
    assert.equal(classifySpend({ platform: 'google_ads', campaign_id: '2', campaign_name: 'Brand' }, set).channel, 'google_search_paid');
    assert.equal(classifySpend({ platform: 'microsoft_ads', campaign_id: '3' }, set).channel, 'microsoft_search_paid');
    assert.equal(classifySpend({ platform: 'linkedin_ads', campaign_id: '4' }, set).channel, 'unknown');
    assert.equal(classifySpend({ platform: 'meta_ads', campaign_id: '5' }, defaultRuleSet()).channel, 'facebook_paid');
  });
});

const pick = (r: ReturnType<typeof classify>) => [r.channel, r.decided_by.rule_id];

describe('properties', () => {
  const word = fc.stringMatching(/^[A-Za-z0-9 ._()-]{0,12}$/);
  const touchArb = fc.record(
    {
      channel: word,
      utm_source: fc.oneof(word, fc.constantFrom('google', 'facebook', 'newsletter', 'tiktok', '(direct)')),
      utm_medium: fc.oneof(word, fc.constantFrom('cpc', 'email', 'social', 'organic', '(none)', 'display')),
      utm_campaign: word,
      campaign_id: word,
      referrer: fc.oneof(fc.constantFrom('https://www.google.com/', 'https://t.co/x', 'https://mail.google.com/', 'not a url', 'https://a.example/'), fc.webUrl()),
      landing_url: fc.oneof(fc.webUrl({ withQueryParameters: true }), fc.constantFrom('https://shop.example/?gclid=1&utm_source=google&utm_medium=cpc')),
      gclid: word,
      fbclid: word,
      msclkid: word,
    },
    { requiredKeys: [] },
  ) as fc.Arbitrary<Touch>;
  const conditionArb = fc.record({
    field: fc.constantFrom(...RULE_FIELDS.filter((f) => f !== 'click_id' && f !== 'ad_platform')),
    op: fc.constantFrom(...RULE_OPS),
    value: fc.constantFrom('google', 'cpc', 'spring', 'example.com', 'google.*', 'x'),
  }).map((c) => (c.op === 'present' || c.op === 'absent' ? { field: c.field, op: c.op } : c));
  const rulesArb = fc.array(fc.record({ channel: fc.constantFrom('email', 'podcast', 'organic', 'retired'), conditions: fc.array(conditionArb, { minLength: 1, maxLength: 3 }) }), { maxLength: 6 });
  const channels = [...DEFAULT_CHANNEL_CODES.map((code) => ({ code, active: true, ad_platform: null })), { code: 'podcast', active: true, ad_platform: null }, { code: 'retired', active: false, ad_platform: null }];

  test('never throws; always an active channel of the tenant (or unknown); deterministic; the first matching active rule decides', () => {
    fc.assert(
      fc.property(touchArb, rulesArb, (touch, raw) => {
        const rules: Rule[] = raw.map((r, i) => ({ id: `r${i}`, name: `r${i}`, position: i, channel: r.channel, conditions: r.conditions as Rule['conditions'] }));
        const set = compileRuleSet(channels, rules);
        const a = classify(touch, set);
        const b = classify(touch, set);
        assert.deepEqual(a, b);
        assert.ok(a.channel === 'unknown' || set.channels.get(a.channel)?.active, a.channel);
        const t = normaliseTouch(touch);
        if (a.decided_by.kind === 'rule') {
          const first = set.rules.find((c) => c.rule.channel !== 'retired' && c.test(t));
          assert.equal(a.decided_by.rule_id, first?.rule.id);
        }
        if (a.decided_by.kind === 'default') assert.ok(!set.rules.some((c) => c.rule.channel !== 'retired' && c.test(t)));
      }),
      { numRuns: 2000 },
    );
  });

  test('normalising is idempotent on what rules see, and a touch without information is not informative', () => {
    assert.equal(normaliseTouch({}).informative, false);
    assert.equal(normaliseTouch({ channel: '  ' }).informative, false);
    fc.assert(
      fc.property(touchArb, (touch) => {
        const t = normaliseTouch(touch);
        for (const k of ['utm_source', 'utm_medium', 'campaign_id'] as const) if (t[k] !== undefined) assert.equal(t[k], t[k]!.toLowerCase());
        assert.ok(t.click_id.every((k) => (CLICK_IDS as readonly string[]).includes(k)));
      }),
      { numRuns: 500 },
    );
  });

  test('every default rule names a default channel and compiles', () => {
    for (const r of DEFAULT_RULES) assert.ok((DEFAULT_CHANNEL_CODES as readonly string[]).includes(r.channel), r.name);
    assert.equal(compileRuleSet([], DEFAULT_RULES).rules.length, DEFAULT_RULES.length);
  });

  // normaliseTouch as it was before issue 17 rewrote it for speed (one URL parse, no intermediate
  // objects): the rewrite must give the same touch (key order included: POST /channels/test prints
  // it) and the same campaign on any input.
  const clean = (v: string | null | undefined) => (v?.trim() ? v.trim() : undefined);
  const landingParams = (url: string | undefined) => {
    if (!url) return undefined;
    try {
      return new URL(url).searchParams;
    } catch {
      return undefined;
    }
  };
  const UTM = ['utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term'] as const;
  function referenceNormalise(touch: Touch): NormalisedTouch {
    const landing = clean(touch.landing_url);
    const params = landingParams(landing);
    const fromUrl = (name: string) => clean(params?.get(name) ?? undefined);
    const utm = Object.fromEntries(UTM.map((f) => [f, clean(touch[f]) ?? fromUrl(f)])) as Record<(typeof UTM)[number], string | undefined>;
    const clickIds = CLICK_IDS.filter((k) => (clean(touch[k]) ?? fromUrl(k)) !== undefined);
    const landingDomain = hostOf(landing);
    let referrerDomain = hostOf(touch.referrer);
    if (referrerDomain !== undefined && landingDomain !== undefined && referrerDomain === landingDomain) referrerDomain = undefined;
    const campaignId = clean(touch.campaign_id);
    const explicitPlatform = clean(touch.ad_platform)?.toLowerCase();
    const adPlatform = explicitPlatform ?? (clickIds.length ? CLICK_ID_PLATFORM[clickIds[0]!] : undefined);
    const channel = clean(touch.channel) === undefined ? undefined : normaliseChannelName(touch.channel!);
    const out = {
      ...(channel !== undefined ? { channel } : {}),
      ...Object.fromEntries(Object.entries(utm).filter(([, v]) => v !== undefined).map(([k, v]) => [k, v!.toLowerCase()])),
      ...(campaignId !== undefined ? { campaign_id: campaignId.toLowerCase() } : {}),
      campaign: [campaignId, utm.utm_campaign].filter((v): v is string => v !== undefined).map((v) => v.toLowerCase()),
      ...(referrerDomain !== undefined ? { referrer_domain: referrerDomain } : {}),
      ...(landingDomain !== undefined ? { landing_domain: landingDomain } : {}),
      click_id: clickIds,
      ...(adPlatform !== undefined ? { ad_platform: adPlatform } : {}),
    };
    const informative =
      channel !== undefined || Object.values(utm).some((v) => v !== undefined) || campaignId !== undefined || referrerDomain !== undefined ||
      landing !== undefined || clickIds.length > 0 || explicitPlatform !== undefined;
    return { ...out, informative } as NormalisedTouch;
  }

  test('normaliseTouch and the campaign equal the implementation before the speed rewrite, key order included', () => {
    const text = fc.oneof(word, fc.constantFrom(undefined, null, '', '  ', ' Google ', 'CPC', 'Spring Sale'));
    const url = fc.oneof(
      fc.webUrl({ withQueryParameters: true, withFragments: true }),
      fc.constantFrom(
        'https://shop.example/?gclid=1&utm_source=google&utm_medium=cpc&utm_campaign=Spring',
        'https://WWW.Shop.Example./p?utm_content=%20x%20&utm_term=&fbclid=2&li_fat_id=3&wbraid=4&gbraid=5&ttclid=6&msclkid=7',
        'shop.example/landing?utm_source=bing', 'www.google.com', 'mailto:x?utm_source=mail', 'not a url', ' https://shop.example/ ', '',
        'http://[::1]/?utm_medium=cpc', 'https://mail.google.com/mail/u/0',
      ),
    );
    const touch = fc.record(
      {
        channel: text, utm_source: text, utm_medium: text, utm_campaign: text, utm_content: text, utm_term: text, campaign_id: text,
        referrer: fc.oneof(url, text), landing_url: fc.oneof(url, text), ad_platform: fc.oneof(text, fc.constantFrom('google_ads', ' META_ADS ')),
        ...Object.fromEntries(CLICK_IDS.map((k) => [k, text])),
      },
      { requiredKeys: [] },
    ) as fc.Arbitrary<Touch>;
    const set = defaultRuleSet();
    fc.assert(
      fc.property(touch, (t) => {
        const expected = referenceNormalise(t);
        const actual = normaliseTouch(t);
        assert.deepEqual(actual, expected);
        assert.equal(JSON.stringify(actual), JSON.stringify(expected));
        const classified = classify(t, set);
        assert.equal(JSON.stringify(classified.touch), JSON.stringify(expected));
        assert.equal(classified.campaign, campaignOf(t));
      }),
      { numRuns: 3000 },
    );
    // The same touch when the landing page is also the referrer: no referral.
    assert.equal(normaliseTouch({ landing_url: 'https://www.shop.example/a', referrer: 'https://shop.example/b' }).referrer_domain, undefined);
  });
});
