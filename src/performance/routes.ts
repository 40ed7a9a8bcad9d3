import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { TotalIntervalSchema, TotalIntervalsNote } from '../attribution/routes.js';
import { QueryDay } from '../spend/routes.js';
import { checkPerformanceQuery } from './check.js';
import { performanceReport } from './report.js';
import { PrunedSchema } from '../retention/aggregates.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T, description?: string) => Type.Union([t, Type.Null()], description ? { description } : {});

const Line = Type.Object({
  key: Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()]), {
    description: 'channel: {channel}; campaign: {channel, campaign_id, platform, campaign_name}; platform: {platform} (null: revenue of campaigns no spend row of the period names); day: {day}',
  }),
  spend_cents: Type.Integer({ description: 'Spend converted at each day\'s rate (minor units of the reporting currency); 0 when none' }),
  spend_rows: Type.Integer(),
  conversions: Type.Integer({ description: 'Conversions credited to the line at all' }),
  credited_conversions: Type.Number({ description: 'Sum of the allocation ratios' }),
  attributed_cents: Type.Integer({ description: 'Claimed revenue: the allocations of the model, converted at the conversion day\'s rate' }),
  verified_cents: Type.Integer({ description: 'Ledger-verified revenue: captured − refunded − charged back of the conversions\' orders, split like the allocations' }),
  captured_cents: Type.Integer(),
  refunded_cents: Type.Integer(),
  chargeback_cents: Type.Integer(),
  roas: Type.Object({
    claimed: Nullable(Type.Number(), 'attributed / spend (null: no spend)'),
    verified: Nullable(Type.Number(), 'verified / spend (null: no spend)'),
  }),
  total_interval: Nullable(TotalIntervalSchema, "The 94 % interval of the line's attributed total (channel and campaign lines of population models whose run covers exactly the period)"),
  roas_interval: Nullable(
    Type.Object({ lower: Type.Number(), upper: Type.Number(), basis: Type.Literal('claimed') }),
    'total_interval / spend: the interval of claimed ROAS (spend is known exactly)',
  ),
  cpa_cents: Nullable(Type.Integer(), 'spend / credited conversions, half to even (null: no spend or no conversions)'),
  refund_rate: Nullable(Type.Number(), 'refunded / captured'),
  chargeback_rate: Nullable(Type.Number(), 'charged back / captured'),
  unconverted_buckets: Type.Integer({ description: 'Spend rows and revenue buckets of the line left out for want of an FX rate (listed in fx_gaps)' }),
});

/** GET /api/v1/performance (issue 12; docs/spend.md). */
/** The report's parameters, as GET /api/v1/performance and its export (GET /api/v1/exports/performance) take them. */
export const PERFORMANCE_QUERY = {
  from: QueryDay("First day, in the tenant's reporting time zone:"),
  to: QueryDay('Day after the last (exclusive):'),
  model: Type.Optional(Type.String({ description: 'Attribution model splitting conversions (default last_touch)' })),
  group_by: Type.Optional(Type.String({ description: 'channel (default), campaign, platform or day' })),
};

export const performanceRoutes: FastifyPluginAsync = async (app) => {
  app.get<{ Querystring: { from: string; to: string; model?: string; group_by?: string } }>(
    '/performance',
    {
      config: { problems: ['performance_query_invalid', 'performance_overflow'] },
      schema: {
        tags: ['spend'],
        summary: 'Spend against attributed and ledger-verified revenue per channel, campaign, platform or day: ROAS (with its interval), CPA, refund and chargeback rates, MER',
        security: [{ apiKey: [] }],
        querystring: Type.Object(PERFORMANCE_QUERY, { additionalProperties: false }),
        response: {
          200: Type.Object({
            from: Type.String(),
            to: Type.String(),
            time_zone: Type.String(),
            period: Type.Object({ from: Type.String(), to: Type.String() }, { description: 'The instants of the conversions counted: [from, to) at midnight in time_zone' }),
            model: Type.String(),
            group_by: Type.String(),
            currency: Type.String({ description: 'Reporting currency of every amount' }),
            lines: Type.Array(Line, { description: 'Every key with spend or revenue: spend without revenue and revenue without spend are both lines' }),
            totals: Type.Object({
              spend_cents: Type.Integer(),
              conversions: Type.Integer(),
              attributed_cents: Type.Integer(),
              verified_cents: Type.Integer(),
              mer: Nullable(Type.Number(), 'Marketing efficiency ratio: verified revenue / spend of the period (null: no spend)'),
              mer_claimed: Nullable(Type.Number(), 'claimed revenue / spend'),
            }),
            total_intervals: TotalIntervalsNote,
            pruned: PrunedSchema('Days of the period whose events retention removed: their conversions and revenue are not in this report (spend is), and the note says why (null: none)'),
            fx_gaps: Type.Array(
              Type.Object({
                source: Type.String({ description: 'spend, conversions or ledger' }),
                currency: Type.String(),
                day: Type.String(),
                amount_cents: Type.Integer({ description: 'Left out, minor units of its own currency' }),
                rows: Type.Integer(),
              }),
              { description: 'Amounts left out of every converted figure: no rate for the currency on or before the day (skeldir fx import)' },
            ),
          }),
        },
      },
    },
    async (request) => {
      const options = checkPerformanceQuery(request.query);
      return request.inTenant((c) => performanceReport(c, request.tenantId, options));
    },
  );
};
