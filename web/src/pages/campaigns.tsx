import { useLocation } from 'preact-iso';
import { api, call } from '../api';
import { Async, DataTable, Empty, Metric, useLoad } from '../components';
import { channelName, count, decimal, money } from '../format';
import { days, usePeriod } from '../period';
import { PageHead, PeriodPicker } from './common';

/** A channel's campaigns (from Channels): their spend in the period. */
export function Campaigns() {
  const [period] = usePeriod();
  const { query } = useLocation();
  const channel = query.channel ?? '';
  const [load, retry] = useLoad(() => call(api.GET('/api/v1/spend/summary', { params: { query: { ...days(period), group_by: 'campaign' } } })), [period.from, period.to]);
  const back = `/channels?${new URLSearchParams({ from: period.from, to: period.to, ...(query.model ? { model: query.model } : {}) }).toString()}`;
  return (
    <section>
      <PageHead title={`Campaigns: ${channelName(channel)}`} intro="The channel's campaigns and what was spent on each in the period (imported ad spend).">
        <PeriodPicker />
      </PageHead>
      <p>
        <a href={back}>← All channels</a>
      </p>
      <Async load={load} what="campaigns" retry={retry}>
        {(r) => {
          const lines = r.lines.filter((l) => l.key.channel === channel);
          if (lines.length === 0)
            return (
              <Empty title="No spend on this channel's campaigns in this period">
                Import ad spend in Settings → Spend import (or <code>skeldir spend import</code>), or pick a longer period.
              </Empty>
            );
          const total = lines.reduce((s, l) => s + l.spend_cents, 0);
          return (
            <>
              <div class="metrics">
                <Metric testId="campaign-spend" label="Spend" value={money(total, r.currency)} note={`${count(lines.length)} campaigns`} />
              </div>
              <DataTable
                caption={`Campaigns of ${channelName(channel)}`}
                file={`campaigns-${channel}`}
                rows={lines}
                columns={[
                  { key: 'campaign', label: 'Campaign', csv: (l) => String(l.key.campaign_name ?? l.key.campaign_id) },
                  { key: 'id', label: 'Campaign id', csv: (l) => String(l.key.campaign_id) },
                  { key: 'platform', label: 'Platform', csv: (l) => String(l.key.platform) },
                  { key: 'rows', label: 'Spend rows', numeric: true, csv: (l) => l.rows, render: (l) => count(l.rows) },
                  { key: 'spend', label: `Spend (${r.currency})`, numeric: true, csv: (l) => decimal(l.spend_cents, r.currency), render: (l) => money(l.spend_cents, r.currency) },
                ]}
              />
            </>
          );
        }}
      </Async>
    </section>
  );
}
