import * as echarts from 'echarts/core';
import { BarChart, CustomChart, LineChart } from 'echarts/charts';
import { AriaComponent, GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { SVGRenderer } from 'echarts/renderers';

// Only the parts the pages draw (tree-shaken: bars, lines, the custom series for error bars).
// Loaded on demand by chart.tsx, so the first load (sign-in, tables) does not wait for it.
echarts.use([BarChart, LineChart, CustomChart, GridComponent, TooltipComponent, LegendComponent, AriaComponent, SVGRenderer]);

export const init = echarts.init;
