import { api, call } from '../api';
import { channelAxes, Chart, NARROW } from '../chart';
import { Async, DataTable, Empty, RetentionNote, useLoad } from '../components';
import { channelName, decimal, major, money, MODEL_NAMES } from '../format';
import { instants, usePeriod } from '../period';
import { FIRST_EVENT_HINT, PageHead, PeriodPicker } from './common';

export function Models() {
  const [period] = usePeriod();
  const [load, retry] = useLoad(() => call(api.GET('/api/v1/attribution/comparison', { params: { query: instants(period) } })), [period.from, period.to]);
  return (
    <section>
      <PageHead title="Model comparison" intro="Every attribution model side by side per channel: where they disagree, the choice of model matters.">
        <PeriodPicker />
      </PageHead>
      <Async load={load} what="the comparison" retry={retry}>
        {(r) => {
          if (r.channels.length === 0) return <><RetentionNote source={r.from_aggregates} /><Empty title="No allocations in this period">{FIRST_EVENT_HINT}</Empty></>;
          const currency = r.channels[0]!.currency;
          const lines = r.channels.filter((c) => c.currency === currency);
          const models = r.models.filter((m) => lines.some((c) => c.models[m]));
          return (
            <>
              <RetentionNote source={r.from_aggregates} />
              <Chart
                label={`Attributed revenue per channel and model, ${currency}`}
                height={(width) => (width < NARROW ? 420 : 360)}
                option={(width) => {
                  // On a phone the legend wraps onto rows (three or so) instead of scrolling: a scrolling legend there
                  // showed two and a half of the models behind a pager. On a wide screen the
                  // grid starts below the legend's row, whose first item otherwise sat on the value axis' name.
                  const narrow = width < NARROW;
                  const { horizontal: _, ...axes } = channelAxes(lines.map((c) => channelName(c.channel)), currency, width, narrow ? 96 : 56);
                  return {
                    tooltip: { trigger: 'axis' },
                    legend: narrow ? { top: 0, type: 'plain' } : { top: 0, type: 'scroll' },
                    ...axes,
                    series: models.map((m) => ({ name: MODEL_NAMES[m] ?? m, type: 'bar', data: lines.map((c) => major(c.models[m]?.attributed_cents ?? 0, currency)) })),
                  };
                }}
              />
              <DataTable
                caption="Attributed revenue by model"
                file="model-comparison"
                rows={r.channels}
                columns={[
                  { key: 'channel', label: 'Channel', csv: (c) => c.channel, render: (c) => channelName(c.channel) },
                  { key: 'currency', label: 'Currency', csv: (c) => c.currency },
                  ...models.map((m) => ({
                    key: m,
                    label: MODEL_NAMES[m] ?? m,
                    numeric: true,
                    csv: (c: (typeof r.channels)[number]) => (c.models[m] ? decimal(c.models[m]!.attributed_cents, c.currency) : null),
                    render: (c: (typeof r.channels)[number]) => (c.models[m] ? money(c.models[m]!.attributed_cents, c.currency) : '—'),
                  })),
                ]}
              />
            </>
          );
        }}
      </Async>
    </section>
  );
}
