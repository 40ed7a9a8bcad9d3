import { usePeriod } from '../period';

/** The period picker every report page shares (dates in UTC, both days included). */
export function PeriodPicker() {
  const [period, setPeriod] = usePeriod();
  return (
    <form class="period" onSubmit={(e) => e.preventDefault()} aria-label="Period">
      <label>
        From
        <input type="date" value={period.from} max={period.to} onChange={(e) => e.currentTarget.value && setPeriod({ ...period, from: e.currentTarget.value })} />
      </label>
      <label>
        To
        <input type="date" value={period.to} min={period.from} onChange={(e) => e.currentTarget.value && setPeriod({ ...period, to: e.currentTarget.value })} />
      </label>
    </form>
  );
}

export function PageHead({ title, intro, children }: { title: string; intro: string; children?: preact.ComponentChildren }) {
  return (
    <div class="page-head">
      <div>
        <h1>{title}</h1>
        <p class="intro">{intro}</p>
      </div>
      <div class="controls">{children}</div>
    </div>
  );
}

export const FIRST_EVENT_HINT = (
  <>
    Send your first event: <code>POST /api/v1/events</code> with your API key (see <a href="/docs">the API documentation</a>), or pick a longer
    period.
  </>
);
