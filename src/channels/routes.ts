import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { compileRule, DEFAULT_RULES, type Touch } from './classify.js';
import { loadRuleSet } from './cache.js';
import { MAX_RECLASSIFY_BATCH, reclassifyBatch } from './reclassify.js';
import { ChannelCreate, ChannelOutput, ChannelPatch, RuleInputSchema, RuleOutput, TestInput, urlProblem } from './schema.js';
import { ChannelError } from './errors.js';
import { createChannel, createRule, listChannels, listRules, orderRules, patchChannel, removeChannel, removeRule, replaceRule, testTouch } from './service.js';
import { toRule, type ChannelRow, type RuleRow } from './store.js';
import { formatInstant, instantOf } from '../db/timestamps.js';

const security = [{ apiKey: [] }];
const tags = ['channels'];
// Any short code-like text (a code that cannot exist is simply not found, like one that does not).
const CodeParams = Type.Object({ code: Type.String({ pattern: '^[a-z0-9_]{1,100}$', description: 'Channel code' }) }, { additionalProperties: false });
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });

const channelJson = (c: ChannelRow) => ({ ...c, created_at: formatInstant(c.created_at), updated_at: formatInstant(c.updated_at) });
const ruleJson = (r: RuleRow) => ({
  ...validity(r),
  id: r.id,
  position: r.position,
  name: r.name,
  channel: r.channel_code,
  conditions: r.conditions,
  is_active: r.is_active,
  created_at: formatInstant(r.created_at),
  updated_at: formatInstant(r.updated_at),
});

function validity(r: RuleRow): { valid: boolean; invalid_reason?: string } {
  try {
    if (!Array.isArray(r.conditions) || r.conditions.length === 0) throw new Error('a rule needs at least one condition');
    compileRule(toRule(r));
    return { valid: true };
  } catch (error) {
    return { valid: false, invalid_reason: (error as Error).message };
  }
}

const ReclassifyBody = Type.Object(
  {
    from: Type.Optional(Type.String({ format: 'date-time', description: 'Events from this time (inclusive); default: the first.' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'Events before this time; default: no end.' })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous batch.' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_RECLASSIFY_BATCH, description: 'Events per batch (default 1000).' })),
    dry_run: Type.Optional(Type.Boolean({ description: 'Count what would change, change nothing.' })),
  },
  { additionalProperties: false },
);

const Decision = Type.Object({
  kind: Type.String({ description: 'explicit, alias, rule (a tenant rule), default (a built-in rule), explicit_unknown, fallback' }),
  rule_id: Type.Optional(Type.String()),
  name: Type.String(),
  position: Type.Optional(Type.Integer()),
});

/** /channels, /channels/rules, /channels/test, /channels/reclassify (issue 12; docs/channels.md). */
export const channelRoutes: FastifyPluginAsync = async (app) => {
  const changed = (tenantId: string) => app.channelRules.invalidate(tenantId);

  app.get('/channels', { schema: { tags, summary: "The tenant's channels (the ten defaults and its own)", security, response: { 200: Type.Object({ channels: Type.Array(ChannelOutput) }) } } }, async (request) => ({
    channels: (await request.inTenant((c) => listChannels(c, request.tenantId))).map(channelJson),
  }));

  app.post<{ Body: Static<typeof ChannelCreate> }>(
    '/channels',
    {
      config: { problems: ['channel_exists'] },
      schema: { tags, summary: 'Add a channel', security, body: ChannelCreate, response: { 201: ChannelOutput } },
    },
    async (request, reply) => {
      const row = await request.inTenant((c) => createChannel(c, request.tenantId, request.body));
      changed(request.tenantId);
      return reply.code(201).send(channelJson(row));
    },
  );

  app.patch<{ Params: Static<typeof CodeParams>; Body: Static<typeof ChannelPatch> }>(
    '/channels/:code',
    {
      config: { problems: ['channel_not_found', 'channel_invalid'] },
      schema: { tags, summary: "Change a channel's name, family, paid flag, ad platform or activity (not its code)", security, params: CodeParams, body: ChannelPatch, response: { 200: ChannelOutput } },
    },
    async (request) => {
      const row = await request.inTenant((c) => patchChannel(c, request.tenantId, request.params.code, request.body));
      changed(request.tenantId);
      return channelJson(row);
    },
  );

  app.delete<{ Params: Static<typeof CodeParams> }>(
    '/channels/:code',
    {
      config: { problems: ['channel_not_found', 'channel_default', 'channel_in_use'] },
      schema: { tags, summary: 'Delete one of the tenant\'s own channels that nothing names (else deactivate it)', security, params: CodeParams, response: { 204: Type.Null() } },
    },
    async (request, reply) => {
      await request.inTenant((c) => removeChannel(c, request.tenantId, request.params.code));
      changed(request.tenantId);
      return reply.code(204).send();
    },
  );

  app.get(
    '/channels/rules',
    {
      schema: {
        tags,
        summary: "The tenant's rules in evaluation order, and the built-in defaults applied after them",
        security,
        response: { 200: Type.Object({ rules: Type.Array(RuleOutput), defaults: Type.Array(RuleOutput) }) },
      },
    },
    async (request) => ({
      rules: (await request.inTenant((c) => listRules(c, request.tenantId))).map(ruleJson),
      defaults: DEFAULT_RULES.map((r, i) => ({ id: r.id, position: i + 1, name: r.name, channel: r.channel, conditions: [...r.conditions], is_active: true, valid: true })),
    }),
  );

  app.post<{ Body: Static<typeof RuleInputSchema> }>(
    '/channels/rules',
    {
      config: { problems: ['channel_rule_invalid'] },
      schema: { tags, summary: 'Add a rule at the end of the order', security, body: RuleInputSchema, response: { 201: RuleOutput } },
    },
    async (request, reply) => {
      const row = await request.inTenant((c) => createRule(c, request.tenantId, request.body));
      changed(request.tenantId);
      return reply.code(201).send(ruleJson(row));
    },
  );

  app.put<{ Body: { ids: string[] } }>(
    '/channels/rules/order',
    {
      config: { problems: ['channel_rule_order_invalid'] },
      schema: {
        tags,
        summary: 'Set the order of every rule (first = evaluated first)',
        security,
        body: Type.Object({ ids: Type.Array(Type.String({ format: 'uuid' }), { maxItems: 1000 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ rules: Type.Array(RuleOutput) }) },
      },
    },
    async (request) => {
      const rows = await request.inTenant((c) => orderRules(c, request.tenantId, request.body.ids));
      changed(request.tenantId);
      return { rules: rows.map(ruleJson) };
    },
  );

  app.put<{ Params: Static<typeof IdParams>; Body: Static<typeof RuleInputSchema> }>(
    '/channels/rules/:id',
    {
      config: { problems: ['channel_rule_not_found', 'channel_rule_invalid'] },
      schema: { tags, summary: 'Replace a rule (its position stays)', security, params: IdParams, body: RuleInputSchema, response: { 200: RuleOutput } },
    },
    async (request) => {
      const row = await request.inTenant((c) => replaceRule(c, request.tenantId, request.params.id, request.body));
      changed(request.tenantId);
      return ruleJson(row);
    },
  );

  app.delete<{ Params: Static<typeof IdParams> }>(
    '/channels/rules/:id',
    {
      config: { problems: ['channel_rule_not_found'] },
      schema: { tags, summary: 'Delete a rule', security, params: IdParams, response: { 204: Type.Null() } },
    },
    async (request, reply) => {
      await request.inTenant((c) => removeRule(c, request.tenantId, request.params.id));
      changed(request.tenantId);
      return reply.code(204).send();
    },
  );

  app.post<{ Body: Static<typeof TestInput> }>(
    '/channels/test',
    {
      config: { problems: ['channel_rule_invalid', 'url_invalid'] },
      schema: {
        tags,
        summary: 'Which channel a sample touch gets, which rule decided, and every rule that matches (with the stored rules, or with `rules` tried unsaved)',
        security,
        body: TestInput,
        response: {
          200: Type.Object({
            channel: Type.String(),
            decided_by: Decision,
            campaign: Type.Union([Type.String(), Type.Null()]),
            ad_platform: Type.Union([Type.String(), Type.Null()]),
            touch: Type.Record(Type.String(), Type.Unknown(), { description: 'The touch as rules see it (lower case; utm_* and click ids from the landing URL filled in)' }),
            matching_rules: Type.Array(
              Type.Object({ kind: Type.String(), id: Type.String(), name: Type.String(), channel: Type.String(), active: Type.Boolean() }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const touch = request.body.touch as Touch;
      for (const field of ['referrer', 'landing_url'] as const) {
        const problem = touch[field] ? urlProblem(touch[field]!) : undefined;
        if (problem) throw new ChannelError('channel_rule_invalid', `${field} ${problem}`, { field: `body/touch/${field}` });
      }
      const { touch: normalised, ...rest } = await request.inTenant((c) => testTouch(c, request.tenantId, touch, request.body.rules));
      return { ...rest, touch: normalised as unknown as Record<string, unknown> };
    },
  );

  app.post<{ Body: Static<typeof ReclassifyBody> }>(
    '/channels/reclassify',
    {
      config: { problems: ['reclassify_invalid'] },
      schema: {
        tags,
        summary: 'Re-classify past events with the current rules, one batch per call (pass next_cursor back until it is null)',
        description:
          'Each call examines up to `limit` events of [from, to) in time order and moves those whose channel changed, recomputing the ' +
          'rule-model allocations of the conversions they are on, in one transaction. Population models need a new run afterwards.',
        security,
        body: ReclassifyBody,
        response: {
          200: Type.Object({
            examined: Type.Integer(),
            changed: Type.Integer(),
            reattributed: Type.Integer({ description: 'Conversions whose rule-model allocations were recomputed' }),
            moves: Type.Record(Type.String(), Type.Integer(), { description: '"old → new": events moved in this batch' }),
            next_cursor: Type.Union([Type.String(), Type.Null()]),
            dry_run: Type.Boolean(),
          }),
        },
      },
    },
    async (request) => {
      const b = request.body;
      const at = (field: 'from' | 'to') => {
        const v = b[field];
        if (v === undefined) return undefined;
        const d = instantOf(v);
        if (Number.isNaN(d.getTime())) throw new ChannelError('reclassify_invalid', `${field} must be a timestamp`, { field: `body/${field}` });
        return d;
      };
      const options = {
        ...(at('from') ? { from: at('from')! } : {}),
        ...(at('to') ? { to: at('to')! } : {}),
        ...(b.cursor !== undefined ? { cursor: b.cursor } : {}),
        ...(b.limit !== undefined ? { limit: b.limit } : {}),
        dryRun: b.dry_run ?? false,
      };
      const result = await request.inTenant(async (c) => reclassifyBatch(c, request.tenantId, await loadRuleSet(c, request.tenantId), options));
      return { ...result, dry_run: options.dryRun };
    },
  );
};
