import { Type, type Static } from '@sinclair/typebox';
import { AD_PLATFORMS, CLICK_IDS, RULE_FIELDS, RULE_OPS, type Condition } from './classify.js';
import { ChannelError } from './errors.js';

/** No control characters, no line separators, no surrounding white space (as ingestion's text fields). */
const TEXT_PATTERN = '^[^\\s\\p{Cc}\\u2028\\u2029](?:[^\\p{Cc}\\u2028\\u2029]*[^\\s\\p{Cc}\\u2028\\u2029])?$';
const text = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, pattern: TEXT_PATTERN, description });
const enumOf = <T extends string>(values: readonly T[], description: string) => Type.Unsafe<T>({ type: 'string', enum: [...values], description });

export const CHANNEL_CODE_PATTERN = '^[a-z][a-z0-9_]{0,99}$';
export const ChannelCode = Type.String({ pattern: CHANNEL_CODE_PATTERN, description: 'Channel code: lower snake case, 1–100 characters, starting with a letter.' });
const Platform = Type.Union([enumOf(AD_PLATFORMS, 'Ad platform its spend comes from'), Type.Null()]);

export const ChannelCreate = Type.Object(
  {
    code: ChannelCode,
    display_name: text(255, 'Human-readable name.'),
    family: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,49}$', description: 'Grouping (paid_search, paid_social, display, email, …); default other.' })),
    is_paid: Type.Optional(Type.Boolean({ description: 'Bought media (default false).' })),
    ad_platform: Type.Optional(Platform),
    is_active: Type.Optional(Type.Boolean({ description: 'Default true.' })),
  },
  { additionalProperties: false },
);
export type ChannelCreate = Static<typeof ChannelCreate>;

export const ChannelPatch = Type.Object(
  {
    display_name: Type.Optional(text(255, 'Human-readable name.')),
    family: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,49}$' })),
    is_paid: Type.Optional(Type.Boolean()),
    ad_platform: Type.Optional(Platform),
    is_active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type ChannelPatch = Static<typeof ChannelPatch>;

export const ChannelOutput = Type.Object(
  {
    code: Type.String(),
    display_name: Type.String(),
    family: Type.String(),
    is_paid: Type.Boolean(),
    ad_platform: Type.Union([Type.String(), Type.Null()]),
    is_active: Type.Boolean(),
    is_default: Type.Boolean({ description: 'One of the ten taxonomy defaults every tenant starts with (cannot be deleted).' }),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

const ConditionValue = Type.Union([
  Type.String({ minLength: 1, maxLength: 255 }),
  Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { minItems: 1, maxItems: 200 }),
]);

export const ConditionSchema = Type.Object(
  {
    field: enumOf(RULE_FIELDS, 'What the condition tests (docs/channels.md).'),
    op: enumOf(RULE_OPS, 'How: equals, in, prefix, suffix, contains, domain, present, absent (case-insensitive).'),
    value: Type.Optional(ConditionValue),
  },
  { additionalProperties: false },
);

export const RuleInputSchema = Type.Object(
  {
    name: text(255, 'Human-readable name.'),
    channel: ChannelCode,
    conditions: Type.Array(ConditionSchema, { minItems: 1, maxItems: 20, description: 'All must match.' }),
    is_active: Type.Optional(Type.Boolean({ description: 'Default true.' })),
  },
  { additionalProperties: false },
);
export type RuleInputBody = Static<typeof RuleInputSchema>;

export const RuleOutput = Type.Object(
  {
    id: Type.String(),
    position: Type.Integer(),
    name: Type.String(),
    channel: Type.String(),
    conditions: Type.Array(Type.Unknown(), { description: 'As stored: {field, op, value} each.' }),
    is_active: Type.Boolean(),
    valid: Type.Boolean({ description: 'False for a stored rule the classifier cannot use (it is skipped); invalid_reason says why.' }),
    invalid_reason: Type.Optional(Type.String()),
    created_at: Type.Optional(Type.String({ format: 'date-time' })),
    updated_at: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

/** URLs: no white space or control characters, at most 2048 characters (ingestion checks they are absolute http(s) URLs). */
export const MAX_URL_LENGTH = 2048;
const urlText = (description: string) => Type.String({ minLength: 1, maxLength: MAX_URL_LENGTH, pattern: '^[^\\s\\p{Cc}]+$', description });
const clickId = (name: string) => Type.Optional(text(500, `${name}: the ad click id, as on the landing URL.`));

/** The touch fields ingestion accepts and POST /channels/test takes (docs/channels.md): one definition for both. */
export const TouchFields = {
  channel: Type.Optional(text(100, "Marketing channel (one of the tenant's channel codes, or an alias); decides when it names one.")),
  utm_source: Type.Optional(text(255, 'utm_source (channel rules, docs/channels.md).')),
  utm_medium: Type.Optional(text(255, 'utm_medium (channel rules).')),
  utm_campaign: Type.Optional(text(255, 'utm_campaign: the campaign when campaign_id is absent.')),
  utm_content: Type.Optional(text(255, 'utm_content (channel rules).')),
  utm_term: Type.Optional(text(255, 'utm_term (channel rules).')),
  campaign_id: Type.Optional(text(255, "Campaign identifier (the ad platform's campaign id is what spend rows carry).")),
  referrer: Type.Optional(urlText('The referring page: an absolute http(s) URL (channel rules test its domain).')),
  landing_url: Type.Optional(urlText('The page the visit landed on: an absolute http(s) URL; its query string fills utm_* and click ids not given as fields.')),
  gclid: clickId('gclid'),
  gbraid: clickId('gbraid'),
  wbraid: clickId('wbraid'),
  fbclid: clickId('fbclid'),
  ttclid: clickId('ttclid'),
  msclkid: clickId('msclkid'),
  li_fat_id: clickId('li_fat_id'),
};

/** An absolute http(s) URL, or a message saying why not (for referrer and landing_url). */
export function urlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not an absolute URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must be an http or https URL, not ${url.protocol}`;
  if (!url.hostname) return 'has no host';
  return undefined;
}

export const TestInput = Type.Object(
  {
    touch: Type.Object({ ...TouchFields, ad_platform: Type.Optional(enumOf(AD_PLATFORMS, 'A known ad platform (as a spend row has)')) }, { additionalProperties: false }),
    rules: Type.Optional(Type.Array(RuleInputSchema, { maxItems: 500, description: 'Rules to try instead of the stored ones (not saved).' })),
  },
  { additionalProperties: false },
);

const OPS_BY_FIELD: Partial<Record<Condition['field'], readonly Condition['op'][]>> = {
  click_id: ['equals', 'in', 'present', 'absent'],
  ad_platform: ['equals', 'in', 'present', 'absent'],
};

/** What the schema cannot say about a rule's conditions; `pointer` locates them in the request. */
export function checkConditions(conditions: readonly Condition[], pointer: string): Condition[] {
  return conditions.map((c, i) => {
    const at = `${pointer}/${i}`;
    const allowed = OPS_BY_FIELD[c.field];
    if (allowed && !allowed.includes(c.op)) {
      throw new ChannelError('channel_rule_invalid', `${c.field} takes the operators ${allowed.join(', ')}, not ${c.op}`, { field: `${at}/op` });
    }
    const needsValue = c.op !== 'present' && c.op !== 'absent';
    if (needsValue && c.value === undefined) throw new ChannelError('channel_rule_invalid', `operator ${c.op} needs a value`, { field: `${at}/value` });
    if (!needsValue && c.value !== undefined) throw new ChannelError('channel_rule_invalid', `operator ${c.op} takes no value`, { field: `${at}/value` });
    const list = c.value === undefined ? [] : typeof c.value === 'string' ? [c.value] : c.value;
    if (list.some((v) => v.trim() === '')) throw new ChannelError('channel_rule_invalid', 'condition values must not be blank', { field: `${at}/value` });
    const known = c.field === 'click_id' ? CLICK_IDS : c.field === 'ad_platform' ? AD_PLATFORMS : undefined;
    const bad = known ? list.filter((v) => !(known as readonly string[]).includes(v.trim().toLowerCase())) : [];
    if (bad.length) throw new ChannelError('channel_rule_invalid', `${c.field} is one of ${known!.join(', ')}; ${JSON.stringify(bad[0])} is not`, { field: `${at}/value` });
    if (c.op === 'domain' && list.some((v) => !/^[a-z0-9-]+(\.[a-z0-9-]+)*(\.\*)?$/i.test(v.trim()))) {
      throw new ChannelError('channel_rule_invalid', 'domain values are host names (example.com, or name.* for any top-level domain)', { field: `${at}/value` });
    }
    return { field: c.field, op: c.op, ...(c.value !== undefined ? { value: c.value } : {}) };
  });
}
