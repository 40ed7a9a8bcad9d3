import { useEffect, useRef } from 'preact/hooks';
import type { EChartsCoreOption } from 'echarts/core';

/** ECharts, loaded once on the first chart (a separate chunk: ~180 KB gzipped the first load need not wait for). */
let loading: Promise<typeof import('./echarts-setup')> | undefined;
const loadECharts = () => (loading ??= import('./echarts-setup'));

/** The page's font stack: ECharts measures text with it, so legends and labels are laid out as drawn. */
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'DejaVu Sans', sans-serif";

export const PALETTE = ['#2f5fb3', '#d9822b', '#2e8b57', '#8e44ad', '#c0392b', '#16a085', '#7f8c8d', '#b7950b'];

/** Below this width (px of the chart) axis labels are laid out for a phone: shorter, turned, or fewer. */
export const NARROW = 600;

/**
 * An Apache ECharts chart. `label` is its accessible name; ECharts' aria module adds a spoken
 * description of the data, and each chart sits next to a table with the same numbers. `option`
 * may depend on the chart's width (set again when the window is resized), e.g. to turn category
 * labels that would overlap on a phone.
 */
export function Chart({ option, label, height = 320 }: { option: EChartsCoreOption | ((width: number) => EChartsCoreOption); label: string; height?: number | ((width: number) => number) }) {
  const el = useRef<HTMLDivElement>(null);
  // A height that depends on the chart's own width (like `option`) is set before each layout, so a chart follows a
  // resize across NARROW instead of keeping the height of the window it was first drawn in.
  const fit = (div: HTMLDivElement) => {
    if (typeof height === 'function') div.style.height = `${height(div.clientWidth)}px`;
  };
  const optionFor = (width: number) => ({ color: PALETTE, aria: { enabled: true }, animation: false, textStyle: { fontFamily: FONT }, ...(typeof option === 'function' ? option(width) : option) });
  useEffect(() => {
    let chart: ReturnType<(typeof import('./echarts-setup'))['init']> | undefined;
    let gone = false;
    const resize = () => {
      if (!chart || !el.current) return;
      fit(el.current);
      if (typeof option === 'function') chart.setOption(optionFor(el.current.clientWidth), { notMerge: true });
      chart.resize();
    };
    void loadECharts().then(({ init }) => {
      if (gone || !el.current) return;
      fit(el.current);
      chart = init(el.current, undefined, { renderer: 'svg' });
      chart.setOption(optionFor(el.current.clientWidth));
      el.current.dataset.ready = 'true';
      window.addEventListener('resize', resize);
    });
    return () => {
      gone = true;
      window.removeEventListener('resize', resize);
      chart?.dispose();
    };
  }, [typeof option === 'function' ? JSON.stringify([option(300), option(1000)]) : JSON.stringify(option)]);
  return <div class="chart" ref={el} role="img" aria-label={label} style={typeof height === 'number' ? { height: `${height}px` } : undefined} />;
}

/**
 * The axes of a bar chart per channel: channels along the bottom on a wide screen; on a phone (narrower than NARROW)
 * the bars lie down, channels down the side, first at the top (six names side by side would overlap). `errorBars`
 * takes the same `horizontal`.
 */
export function channelAxes(names: string[], currency: string, width: number, top = 36) {
  if (width < NARROW) {
    return {
      horizontal: true,
      grid: { left: 8, right: 24, top, bottom: 40, containLabel: true },
      yAxis: { type: 'category', data: names, inverse: true, axisLabel: { interval: 0 } },
      // Three splits: at 390 px the value axis is ~160 px wide, and ECharts' default five split lines put labels
      // so close that hideOverlap dropped every other one, 0 included.
      xAxis: { type: 'value', name: currency, nameLocation: 'middle', nameGap: 24, splitNumber: 3, axisLabel: { hideOverlap: true } },
    };
  }
  // lineHeight 15 (1.25 × the 12 px labels): ECharts' default spacing of a wrapped name's lines is the font size,
  // which drew "Google / Search / (paid)" over each other in the fonts of @sparticuz/chromium's headless shell.
  return {
    horizontal: false,
    grid: { left: 64, right: 16, top, bottom: 56 },
    xAxis: { type: 'category', data: names, axisLabel: { interval: 0, width: 80, overflow: 'break', lineHeight: 15 } },
    yAxis: { type: 'value', name: currency },
  };
}

/**
 * A custom series drawing error bars (lower..upper) over category bars: ECharts' documented way. `offset` moves them
 * from the category's centre onto one of several bars, in band widths (with two bars, barGap 0 and barCategoryGap
 * 30 %: the first bar's centre is at −0.175; on a horizontal chart with an inverted category axis the first bar is
 * the upper one, so the same offset applies along the other axis).
 */
export function errorBars(name: string, data: [number, number, number][], offset = 0, horizontal = false, color = '#1c2330') {
  return {
    type: 'custom',
    name,
    data,
    z: 10,
    // Both bounds count for the value axis' extent, so no bar is cut at its end.
    encode: horizontal ? { y: 0, x: [1, 2] } : { x: 0, y: [1, 2] },
    itemStyle: { color },
    tooltip: { show: false },
    renderItem: (_params: unknown, api: { value(i: number): number; coord(p: [number, number]): [number, number]; size(v: [number, number]): [number, number] }) => {
      const c = api.value(0);
      const band = horizontal ? api.size([0, 1])[1] : api.size([1, 0])[0];
      const low = horizontal ? api.coord([api.value(1), c]) : api.coord([c, api.value(1)]);
      const high = horizontal ? api.coord([api.value(2), c]) : api.coord([c, api.value(2)]);
      const along = horizontal ? 1 : 0; // the coordinate across the bar
      low[along] += band * offset;
      high[along] += band * offset;
      const half = band * 0.06;
      const style = { stroke: color, lineWidth: 1.5 };
      const whisker = (p: [number, number]) =>
        horizontal ? { type: 'line', shape: { x1: p[0], y1: p[1] - half, x2: p[0], y2: p[1] + half }, style } : { type: 'line', shape: { x1: p[0] - half, y1: p[1], x2: p[0] + half, y2: p[1] }, style };
      return {
        type: 'group',
        children: [{ type: 'line', shape: { x1: low[0], y1: low[1], x2: high[0], y2: high[1] }, style }, whisker(low), whisker(high)],
      };
    },
  };
}

/**
 * A category axis of UTC days (YYYY-MM-DD). On a phone the labels drop the year (MM-DD); ECharts then
 * shows as many as fit and hides any that would still overlap.
 */
export function dayAxis(dates: string[], width: number) {
  return { type: 'category', data: dates, axisLabel: { hideOverlap: true, ...(width < NARROW ? { formatter: (d: string) => d.slice(5) } : {}) } };
}
