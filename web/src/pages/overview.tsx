import { api, call } from '../api';
import { Chart, dayAxis } from '../chart';
import { Async, DataTable, Empty, Metric, RetentionNote, useLoad } from '../components';
import { count, decimal, major, money, percent, roas } from '../format';
import { dailyValues, days, instants, periodDays, usePeriod } from '../period';
import { FIRST_EVENT_HINT, PageHead, PeriodPicker } from './common';

export function Overview() {
  const [period] = usePeriod();
  const [load, retry] = useLoad(
    () =>
      Promise.all([
        call(api.GET('/api/v1/reconciliation', { params: { query: instants(period) } })),
        call(api.GET('/api/v1/spend/summary', { params: { query: { ...days(period), group_by: 'channel' } } })),
      ]),
    [period.from, period.to],
  );
  return (
    <section>
      <PageHead title="Overview" intro="Revenue your marketing claims against revenue the payment ledger verifies, for the period.">
        <PeriodPicker />
      </PageHead>
      <Async load={load} what="the overview" retry={retry}>
        {([r, spend]) => {
          const t = r.total;
          const spent = spend.total_spend_cents;
          if (t.conversions === 0) return <><RetentionNote source={r.pruned} /><Empty title="No conversions in this period">{FIRST_EVENT_HINT}</Empty></>;
          const dates = periodDays(period, r.days);
          return (
            <>
              <RetentionNote source={r.pruned} />
              <div class="metrics">
                <Metric testId="claimed" label="Revenue claimed" value={money(t.claimed_cents, r.currency)} note={`${count(t.conversions)} conversions`} />
                <Metric testId="verified" label="Revenue verified" value={money(t.verified_cents, r.currency)} note={`${count(t.verified_conversions)} conversions paid`} />
                <Metric testId="gap" label="Gap" value={money(t.gap_cents, r.currency)} note={`${percent(t.gap_bps)} of claimed`} />
                <Metric testId="conversions" label="Conversions" value={count(t.conversions)} />
              </div>
              {spend.lines.length > 0 ? (
                <div class="metrics">
                  <Metric testId="spend" label="Ad spend" value={money(spent, spend.currency)} note={`${count(spend.lines.length)} channels`} />
                  <Metric testId="roas" label="ROAS (verified)" value={roas(t.verified_cents, spent)} note="verified revenue ÷ spend" />
                  <Metric testId="roas-claimed" label="ROAS (claimed)" value={roas(t.claimed_cents, spent)} note="claimed revenue ÷ spend" />
                </div>
              ) : (
                <p class="note">Spend and ROAS appear here once ad spend is imported (Settings → Spend import).</p>
              )}
              {spend.fx_gaps.length > 0 && (
                <p class="note">Spend without a rate into {spend.currency} is left out: {spend.fx_gaps.map((g) => `${g.currency} on ${g.day}`).join(', ')}.</p>
              )}
              <h2>Trend by day</h2>
              <Chart
                label={`Claimed and verified revenue per day, ${r.currency}`}
                option={(width) => ({
                  tooltip: { trigger: 'axis' },
                  legend: { top: 0 },
                  grid: { left: 64, right: 16, top: 36, bottom: 32 },
                  xAxis: dayAxis(dates, width),
                  yAxis: { type: 'value', name: r.currency },
                  series: [
                    { name: 'Claimed', type: 'line', data: dailyValues(dates, r.days, (d) => major(d.claimed_cents, r.currency), r.pruned) },
                    { name: 'Verified', type: 'line', data: dailyValues(dates, r.days, (d) => major(d.verified_cents, r.currency), r.pruned) },
                  ],
                })}
              />
              <DataTable
                caption="Revenue by day"
                file="overview-by-day"
                rows={r.days}
                columns={[
                  { key: 'date', label: 'Day', csv: (d) => d.date },
                  { key: 'conversions', label: 'Conversions', numeric: true, csv: (d) => d.conversions, render: (d) => count(d.conversions) },
                  { key: 'claimed', label: `Claimed (${r.currency})`, numeric: true, csv: (d) => decimal(d.claimed_cents, r.currency), render: (d) => money(d.claimed_cents, r.currency) },
                  { key: 'verified', label: `Verified (${r.currency})`, numeric: true, csv: (d) => decimal(d.verified_cents, r.currency), render: (d) => money(d.verified_cents, r.currency) },
                  { key: 'gap', label: `Gap (${r.currency})`, numeric: true, csv: (d) => decimal(d.gap_cents, r.currency), render: (d) => money(d.gap_cents, r.currency) },
                ]}
              />
            </>
          );
        }}
      </Async>
    </section>
  );
}
