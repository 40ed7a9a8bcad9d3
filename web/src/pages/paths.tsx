import { api, call } from '../api';
import { Async, DataTable, Empty, RetentionNote, useLoad } from '../components';
import { channelName, count, decimal, money } from '../format';
import { instants, usePeriod } from '../period';
import { FIRST_EVENT_HINT, PageHead, PeriodPicker } from './common';

export function Paths() {
  const [period] = usePeriod();
  const [load, retry] = useLoad(() => call(api.GET('/api/v1/reports/paths', { params: { query: { ...instants(period), limit: 50 } } })), [period.from, period.to]);
  return (
    <section>
      <PageHead title="Conversion paths" intro="The most common sequences of channels before a conversion, with their conversions and revenue.">
        <PeriodPicker />
      </PageHead>
      <Async load={load} what="conversion paths" retry={retry}>
        {(r) =>
          r.paths.length === 0 ? (
            <>
              <RetentionNote source={r.pruned} />
              <Empty title="No conversions in this period">{FIRST_EVENT_HINT}</Empty>
            </>
          ) : (
            <>
              <RetentionNote source={r.pruned} />
              <p class="note">Touchpoints of the conversion's session within {r.lookback_days} days before it, oldest first.</p>
              <DataTable
                caption="Most common paths"
                file="conversion-paths"
                rows={r.paths}
                columns={[
                  {
                    key: 'path',
                    label: 'Path',
                    csv: (p) => p.path.join(' > ') || '(no touchpoint)',
                    render: (p) =>
                      p.path.length === 0 ? (
                        <em>no touchpoint</em>
                      ) : (
                        <ol class="path" aria-label={p.path.map(channelName).join(', then ')}>
                          {p.path.map((c, i) => (
                            <li key={i}>{channelName(c)}</li>
                          ))}
                        </ol>
                      ),
                  },
                  { key: 'conversions', label: 'Conversions', numeric: true, csv: (p) => p.conversions, render: (p) => count(p.conversions) },
                  { key: 'revenue', label: 'Revenue', numeric: true, csv: (p) => decimal(p.revenue_cents, p.currency), render: (p) => money(p.revenue_cents, p.currency) },
                  { key: 'currency', label: 'Currency', csv: (p) => p.currency },
                ]}
              />
            </>
          )
        }
      </Async>
    </section>
  );
}
