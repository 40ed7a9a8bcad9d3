import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { api, call } from '../api';
import { Async, DataTable, Metric, useLoad, type Load } from '../components';
import { money, when } from '../format';

export function Transactions() {
  const { query, path, route } = useLocation();
  const id = query.id ?? '';
  const [text, setText] = useState(id);
  const [load] = useLoad<unknown>(
    () => (id ? call(api.GET('/api/v1/revenue/transactions/{transaction_id}', { params: { path: { transaction_id: id } } })) : Promise.resolve(null)),
    [id],
  );
  return (
    <section>
      <div class="page-head">
        <div>
          <h1>Transactions</h1>
          <p class="intro">Find a payment by its provider's id (Stripe pi_…, PayPal capture id, Shopify order) and follow its states.</p>
        </div>
      </div>
      <form
        class="search"
        onSubmit={(e) => {
          e.preventDefault();
          route(`${path}?${new URLSearchParams({ id: text.trim() }).toString()}`);
        }}
      >
        <label for="txid">Provider transaction id</label>
        <input id="txid" value={text} onInput={(e) => setText(e.currentTarget.value)} placeholder="pi_3Nk…" required maxLength={255} />
        <button type="submit">Find</button>
      </form>
      {id && <Found load={load as Load<Tx | null>} />}
    </section>
  );
}

interface Tx {
  transaction_id: string;
  provider: string;
  order_id: string | null;
  state: string;
  amount_cents: number;
  refunded_cents: number;
  chargeback_cents: number;
  net_cents: number;
  currency: string;
  verification_timestamp: string;
  transitions: { from_state: string | null; to_state: string; reason: string | null; transitioned_at: string }[];
}

function Found({ load }: { load: Load<Tx | null> }) {
  return (
    <Async load={load} what="the transaction">
      {(t) =>
        t && (
          <>
            <div class="metrics">
              <Metric testId="tx-state" label="State" value={t.state} note={`${t.provider}${t.order_id ? `, order ${t.order_id}` : ''}`} />
              <Metric testId="tx-amount" label="Amount" value={money(t.amount_cents, t.currency)} />
              <Metric testId="tx-refunded" label="Refunded + charged back" value={money(t.refunded_cents + t.chargeback_cents, t.currency)} />
              <Metric testId="tx-net" label="Verified revenue" value={money(t.net_cents, t.currency)} />
            </div>
            <h2>State timeline</h2>
            <ol class="timeline">
              {t.transitions.map((s, i) => (
                <li key={i}>
                  <span class={`state state-${s.to_state}`}>{s.to_state}</span> <time dateTime={s.transitioned_at}>{when(s.transitioned_at)}</time>
                  {s.reason && <span class="muted"> — {s.reason}</span>}
                </li>
              ))}
            </ol>
            <DataTable
              caption="State changes"
              file={`transaction-${t.transaction_id}`}
              rows={t.transitions}
              columns={[
                { key: 'at', label: 'When', csv: (s) => s.transitioned_at, render: (s) => when(s.transitioned_at) },
                { key: 'from', label: 'From', csv: (s) => s.from_state ?? '' },
                { key: 'to', label: 'To', csv: (s) => s.to_state },
                { key: 'reason', label: 'Reason', csv: (s) => s.reason ?? '' },
              ]}
            />
          </>
        )
      }
    </Async>
  );
}
