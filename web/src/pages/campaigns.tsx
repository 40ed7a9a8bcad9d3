import { useLocation } from 'preact-iso';
import { api, call } from '../api';
import { Async, DataTable, Empty, Metric, RetentionNote, useLoad } from '../components';
import { channelName, count, decimal, money, MODEL_NAMES, platformName, POPULATION_MODELS, ratio, roas } from '../format';
import { days, usePeriod } from '../period';
import { PageHead, PeriodPicker } from './common';

/**
 * A channel's campaigns (from Channels): the performance report per campaign (GET /performance?group_by=campaign) —
 * spend, the revenue the model credits each campaign with and what the ledger verifies of it, ROAS (the claimed one
 * with its interval when a run covers the period), CPA.
 */
export function Campaigns() {
  const [period] = usePeriod();
  const { query } = useLocation();
  const channel = query.channel ?? '';
  const model = query.model && query.model in MODEL_NAMES ? query.model : 'last_touch';
  const [load, retry] = useLoad(
    () => call(api.GET('/api/v1/performance', { params: { query: { ...days(period), model, group_by: 'campaign' } } })),
    [period.from, period.to, model],
  );
  const back = `/channels?${new URLSearchParams({ from: period.from, to: period.to, ...(query.model ? { model: query.model } : {}) }).toString()}`;
  return (
    <section>
      <PageHead title={`Campaigns: ${channelName(channel)}`} intro={`The channel's campaigns in the period: spend, revenue credited by ${MODEL_NAMES[model]} and verified by the ledger, ROAS and cost per conversion.`}>
        <PeriodPicker />
      </PageHead>
      <p>
        <a href={back}>← All channels</a>
      </p>
      <Async load={load} what="campaigns" retry={retry}>
        {(r) => {
          const lines = r.lines.filter((l) => l.key.channel === channel);
          const c = r.currency;
          if (lines.length === 0)
            return (
              <>
                <RetentionNote source={r.pruned} />
                <Empty title="Nothing on this channel's campaigns in this period">
                  Import ad spend in Settings → Spend import (or <code>skeldir spend import</code>), send conversions whose touches name a campaign, or pick a longer period.
                </Empty>
              </>
            );
          const sum = (f: (l: (typeof lines)[number]) => number) => lines.reduce((s, l) => s + f(l), 0);
          const spend = sum((l) => l.spend_cents);
          const verified = sum((l) => l.verified_cents);
          // As on Channels: the interval column and its note only for models that have intervals (rule models would
          // show a column of dashes).
          const population = POPULATION_MODELS.includes(model);
          const hasIntervals = lines.some((l) => l.roas_interval);
          type Line = (typeof lines)[number];
          return (
            <>
              <RetentionNote source={r.pruned} />
              <div class="metrics">
                <Metric testId="campaign-spend" label="Spend" value={money(spend, c)} note={`${count(lines.length)} campaigns`} />
                <Metric testId="campaign-claimed" label="Revenue claimed" value={money(sum((l) => l.attributed_cents), c)} note={`${MODEL_NAMES[model]}`} />
                <Metric testId="campaign-verified" label="Revenue verified" value={money(verified, c)} />
                <Metric testId="campaign-roas" label="ROAS (verified)" value={roas(verified, spend)} note="verified revenue ÷ spend" />
              </div>
              {r.fx_gaps.length > 0 && <p class="note">Left out for want of a rate into {c}: {r.fx_gaps.map((g) => `${g.source} in ${g.currency} on ${g.day}`).join(', ')}.</p>}
              <DataTable
                caption={`Campaigns of ${channelName(channel)}, ${c}`}
                file={`campaigns-${channel}`}
                rows={lines}
                columns={[
                  { key: 'campaign', label: 'Campaign', csv: (l) => l.key.campaign_name ?? l.key.campaign_id ?? '(no campaign)' },
                  { key: 'platform', label: 'Platform', csv: (l) => l.key.platform ?? null, render: (l) => (l.key.platform ? platformName(l.key.platform) : '—') },
                  { key: 'spend', label: 'Spend', numeric: true, csv: (l) => decimal(l.spend_cents, c), render: (l) => money(l.spend_cents, c) },
                  { key: 'conversions', label: 'Credited conversions', numeric: true, csv: (l) => l.credited_conversions.toFixed(2), render: (l) => count(l.credited_conversions, 2) },
                  { key: 'claimed', label: 'Claimed', numeric: true, csv: (l) => decimal(l.attributed_cents, c), render: (l) => money(l.attributed_cents, c) },
                  { key: 'verified', label: 'Verified', numeric: true, csv: (l) => decimal(l.verified_cents, c), render: (l) => money(l.verified_cents, c) },
                  { key: 'roas', label: 'ROAS (verified)', numeric: true, csv: (l) => l.roas.verified, render: (l) => ratio(l.roas.verified) },
                  { key: 'roas_claimed', label: 'ROAS (claimed)', numeric: true, csv: (l) => l.roas.claimed, render: (l) => ratio(l.roas.claimed) },
                  ...(population ? [{
                    key: 'roas_interval',
                    label: 'Claimed ROAS interval (94 %)',
                    numeric: true,
                    csv: (l: Line) => (l.roas_interval ? `${l.roas_interval.lower}..${l.roas_interval.upper}` : null),
                    render: (l: Line) => (l.roas_interval ? `${ratio(l.roas_interval.lower)} – ${ratio(l.roas_interval.upper)}` : '—'),
                  }] : []),
                  { key: 'cpa', label: 'CPA', numeric: true, csv: (l) => (l.cpa_cents === null ? null : decimal(l.cpa_cents, c)), render: (l) => money(l.cpa_cents, c) },
                ]}
              />
              {population && (
                <p class="note" data-testid="interval-note">
                  {hasIntervals ? `Interval of each campaign's claimed ROAS: ${r.total_intervals.note}.` : `No interval of the totals for this period: ${r.total_intervals.note}.`}
                </p>
              )}
              <p class="note">
                Spend is by the days of the tenant's reporting time zone ({r.time_zone}); a campaign with revenue but no spend row in the period has no platform.
              </p>
            </>
          );
        }}
      </Async>
    </section>
  );
}
