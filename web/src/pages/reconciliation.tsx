import { api, call } from '../api';
import { Chart, dayAxis } from '../chart';
import { Async, DataTable, Empty, Metric, RetentionNote, useLoad } from '../components';
import { channelName, count, decimal, major, money, percent } from '../format';
import { dailyValues, instants, periodDays, usePeriod } from '../period';
import { FIRST_EVENT_HINT, PageHead, PeriodPicker } from './common';

export function Reconciliation() {
  const [period] = usePeriod();
  const [load, retry] = useLoad(() => call(api.GET('/api/v1/reconciliation', { params: { query: instants(period) } })), [period.from, period.to]);
  return (
    <section>
      <PageHead title="Reconciliation" intro="For finance: what conversions claim against what was really paid (captured, less refunds and chargebacks), per channel and over time.">
        <PeriodPicker />
      </PageHead>
      <Async load={load} what="the reconciliation" retry={retry}>
        {(r) => {
          if (r.total.conversions === 0 && r.total.unmatched_ledger_transactions === 0) return <><RetentionNote source={r.pruned} /><Empty title="Nothing to reconcile in this period">{FIRST_EVENT_HINT}</Empty></>;
          const c = r.currency;
          const dates = periodDays(period, r.days);
          return (
            <>
              <RetentionNote source={r.pruned} />
              <div class="metrics">
                <Metric testId="rec-claimed" label="Claimed" value={money(r.total.claimed_cents, c)} />
                <Metric testId="rec-verified" label="Verified" value={money(r.total.verified_cents, c)} />
                <Metric testId="rec-gap" label="Gap" value={money(r.total.gap_cents, c)} note={`${percent(r.total.gap_bps)} of claimed`} />
                <Metric
                  testId="rec-unmatched"
                  label="Ledger revenue no conversion claims"
                  value={money(r.total.unmatched_ledger_cents, c)}
                  note={`${count(r.total.unmatched_ledger_transactions)} transactions`}
                />
              </div>
              <Chart
                label={`Claimed and verified revenue per day, ${c}`}
                option={(width) => ({
                  tooltip: { trigger: 'axis' },
                  legend: { top: 0 },
                  grid: { left: 64, right: 16, top: 36, bottom: 32 },
                  xAxis: dayAxis(dates, width),
                  yAxis: { type: 'value', name: c },
                  series: [
                    { name: 'Claimed', type: 'bar', data: dailyValues(dates, r.days, (d) => major(d.claimed_cents, c), r.pruned) },
                    { name: 'Verified', type: 'bar', data: dailyValues(dates, r.days, (d) => major(d.verified_cents, c), r.pruned) },
                  ],
                })}
              />
              <DataTable
                caption={`Per channel (${r.model.replace('_', ' ')} attribution)`}
                file="reconciliation-channels"
                rows={r.channels}
                columns={[
                  { key: 'channel', label: 'Channel', csv: (l) => l.channel, render: (l) => channelName(l.channel) },
                  { key: 'conversions', label: 'Conversions', numeric: true, csv: (l) => l.conversions, render: (l) => count(l.conversions) },
                  { key: 'paid', label: 'Paid', numeric: true, csv: (l) => l.verified_conversions, render: (l) => count(l.verified_conversions) },
                  { key: 'claimed', label: `Claimed (${c})`, numeric: true, csv: (l) => decimal(l.claimed_cents, c), render: (l) => money(l.claimed_cents, c) },
                  { key: 'verified', label: `Verified (${c})`, numeric: true, csv: (l) => decimal(l.verified_cents, c), render: (l) => money(l.verified_cents, c) },
                  { key: 'gap', label: `Gap (${c})`, numeric: true, csv: (l) => decimal(l.gap_cents, c), render: (l) => money(l.gap_cents, c) },
                  { key: 'gap_pct', label: 'Gap %', numeric: true, csv: (l) => (l.gap_bps === null ? null : (l.gap_bps / 100).toFixed(2)), render: (l) => percent(l.gap_bps) },
                ]}
              />
              <DataTable
                caption="Per day"
                file="reconciliation-days"
                rows={r.days}
                columns={[
                  { key: 'date', label: 'Day', csv: (d) => d.date },
                  { key: 'claimed', label: `Claimed (${c})`, numeric: true, csv: (d) => decimal(d.claimed_cents, c), render: (d) => money(d.claimed_cents, c) },
                  { key: 'verified', label: `Verified (${c})`, numeric: true, csv: (d) => decimal(d.verified_cents, c), render: (d) => money(d.verified_cents, c) },
                  { key: 'gap', label: `Gap (${c})`, numeric: true, csv: (d) => decimal(d.gap_cents, c), render: (d) => money(d.gap_cents, c) },
                ]}
              />
            </>
          );
        }}
      </Async>
    </section>
  );
}
