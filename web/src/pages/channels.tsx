import { useLocation } from 'preact-iso';
import { api, call } from '../api';
import { channelAxes, Chart, errorBars } from '../chart';
import { Async, DataTable, Empty, RetentionNote, useLoad } from '../components';
import { channelName, count, decimal, major, money, MODEL_NAMES, POPULATION_MODELS, roas } from '../format';
import { days, instants, usePeriod } from '../period';
import { FIRST_EVENT_HINT, PageHead, PeriodPicker } from './common';

const MODELS = Object.keys(MODEL_NAMES);

export function Channels() {
  const [period] = usePeriod();
  const { query, path, route } = useLocation();
  const model = MODELS.includes(query.model ?? '') ? query.model! : 'last_touch';
  const setModel = (m: string) => route(`${path}?${new URLSearchParams({ ...query, model: m }).toString()}`);
  const [load, retry] = useLoad(
    () =>
      Promise.all([
        call(api.GET('/api/v1/attribution/channels', { params: { query: { model: model as 'last_touch', ...instants(period) } } })),
        call(api.GET('/api/v1/spend/summary', { params: { query: { ...days(period), group_by: 'channel' } } })),
      ]),
    [model, period.from, period.to],
  );
  return (
    <section>
      <PageHead title="Channels" intro="Revenue each channel is credited with by one attribution model, and how much of it the ledger verifies.">
        <label class="inline">
          Model
          <select value={model} onChange={(e) => setModel(e.currentTarget.value)}>
            {MODELS.map((m) => (
              <option value={m} key={m}>
                {MODEL_NAMES[m]}
              </option>
            ))}
          </select>
        </label>
        <PeriodPicker />
      </PageHead>
      <Async load={load} what="channels" retry={retry}>
        {([r, spend]) => {
          if (r.channels.length === 0)
            return (
              <>
              <RetentionNote source={r.from_aggregates} />
              <Empty title={`No ${MODEL_NAMES[model]} allocations in this period`}>
                {POPULATION_MODELS.includes(model) ? (
                  <>This model is computed for the whole window: configure it in Settings, or run <code>skeldir attribution run --model {model}</code>.</>
                ) : (
                  FIRST_EVENT_HINT
                )}
              </Empty>
              </>
            );
          const currency = r.channels[0]!.currency;
          const lines = r.channels.filter((c) => c.currency === currency);
          const verified = 'channels' in r.verified ? new Map(r.verified.channels.map((v) => [v.channel, v.verified_cents])) : null;
          const hasIntervals = lines.some((c) => c.total_interval);
          // Columns that would only ever show a dash are left out, so the table fits 1280 px without scrolling:
          // rule models have no intervals, and one currency is named in the caption instead of on every row.
          const population = POPULATION_MODELS.includes(model);
          const currencies = new Set(r.channels.map((c) => c.currency));
          type Line = (typeof r.channels)[number];
          // Spend is in the reporting currency: shown against the lines in that currency.
          const spendOf = new Map(spend.lines.map((l) => [String(l.key.channel), l.spend_cents]));
          const withSpend = (c: { currency: string; channel: string }) => c.currency === spend.currency && spendOf.has(c.channel);
          const campaigns = (channel: string) => `/campaigns?${new URLSearchParams({ channel, from: period.from, to: period.to, model }).toString()}`;
          return (
            <>
              <RetentionNote source={r.from_aggregates} />
              <Chart
                label={`Attributed revenue per channel, ${MODEL_NAMES[model]}, ${currency}${hasIntervals ? ', with the 94 % intervals of the totals' : ''}`}
                option={(width) => {
                  const { horizontal, ...axes } = channelAxes(lines.map((c) => channelName(c.channel)), currency, width);
                  return {
                    tooltip: { trigger: 'axis' },
                    legend: { top: 0 },
                    ...axes,
                    series: [
                      { name: 'Attributed', type: 'bar', barGap: '0%', barCategoryGap: '30%', data: lines.map((c) => major(c.attributed_cents, currency)) },
                      ...(verified ? [{ name: 'Verified', type: 'bar', data: lines.map((c) => major(verified.get(c.channel) ?? 0, currency)) }] : []),
                      ...(hasIntervals
                        ? [
                            errorBars(
                              '94 % interval',
                              lines.map((c, i) => [i, major(c.total_interval?.lower_cents ?? c.attributed_cents, currency), major(c.total_interval?.upper_cents ?? c.attributed_cents, currency)]),
                              verified ? -0.175 : 0,
                              horizontal,
                            ),
                          ]
                        : []),
                    ],
                  };
                }}
              />
              {'unavailable' in r.verified && <p class="note">Verified revenue is unavailable: {r.verified.unavailable}</p>}
              {POPULATION_MODELS.includes(model) && (
                <p class="note" data-testid="interval-note">
                  {hasIntervals ? `Interval of each channel's total: ${r.total_intervals.note}.` : `No interval of the totals for this period: ${r.total_intervals.note}.`}
                </p>
              )}
              <DataTable
                caption={`Channels by ${MODEL_NAMES[model]}${currencies.size === 1 ? `, ${currency}` : ''}`}
                file={`channels-${model}`}
                rows={r.channels}
                columns={[
                  { key: 'channel', label: 'Channel', csv: (c) => c.channel, render: (c) => <a href={campaigns(c.channel)} aria-label={`${channelName(c.channel)}: campaigns`}>{channelName(c.channel)}</a> },
                  { key: 'conversions', label: 'Conversions', numeric: true, csv: (c) => c.conversions, render: (c) => count(c.conversions) },
                  { key: 'credited', label: 'Credited conversions', numeric: true, csv: (c) => c.attributed_conversions.toFixed(2), render: (c) => count(c.attributed_conversions, 2) },
                  { key: 'attributed', label: 'Attributed', numeric: true, csv: (c) => decimal(c.attributed_cents, c.currency), render: (c) => money(c.attributed_cents, c.currency) },
                  ...(population ? [{
                    key: 'interval',
                    label: 'Interval of the total (94 %)',
                    numeric: true,
                    csv: (c: Line) => (c.total_interval ? `${decimal(c.total_interval.lower_cents, c.currency)}..${decimal(c.total_interval.upper_cents, c.currency)}` : null),
                    render: (c: Line) => (c.total_interval ? `${money(c.total_interval.lower_cents, c.currency)} – ${money(c.total_interval.upper_cents, c.currency)}` : '—'),
                  }] : []),
                  {
                    key: 'verified',
                    label: 'Verified',
                    numeric: true,
                    csv: (c) => (verified && c.currency === currency ? decimal(verified.get(c.channel) ?? 0, currency) : null),
                    render: (c) => (verified && c.currency === currency ? money(verified.get(c.channel) ?? 0, currency) : '—'),
                  },
                  {
                    key: 'spend',
                    label: 'Spend',
                    numeric: true,
                    csv: (c) => (withSpend(c) ? decimal(spendOf.get(c.channel)!, spend.currency) : null),
                    render: (c) => (withSpend(c) ? money(spendOf.get(c.channel)!, spend.currency) : '—'),
                  },
                  {
                    key: 'roas',
                    label: 'ROAS (verified)',
                    numeric: true,
                    csv: (c) => (withSpend(c) && verified ? (verified.get(c.channel) ?? 0) / spendOf.get(c.channel)! : null),
                    render: (c) => (withSpend(c) && verified ? roas(verified.get(c.channel) ?? 0, spendOf.get(c.channel)!) : '—'),
                  },
                  { key: 'confidence', label: 'Confidence', numeric: true, csv: (c) => c.mean_confidence, render: (c) => (c.mean_confidence === null ? '—' : c.mean_confidence.toFixed(2)) },
                  ...(currencies.size > 1 ? [{ key: 'currency', label: 'Currency', csv: (c: Line) => c.currency }] : []),
                ]}
              />
              <p class="note">Open a channel for its campaigns. Spend is in {spend.currency}, by the days of the tenant's reporting time zone.</p>
            </>
          );
        }}
      </Async>
    </section>
  );
}
