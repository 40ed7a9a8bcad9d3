import { isModelType, MODEL_TYPES, type ModelType } from '../attribution/models.js';
import { dayProblem } from '../spend/rows.js';
import { PerformanceError } from './errors.js';
import { PERFORMANCE_GROUPS, type PerformanceGroup, type PerformanceOptions } from './report.js';

/** The report's parameters checked as HTTP and the CLI take them (days, a model, a grouping); every problem names its field. */
export function checkPerformanceQuery(q: { from?: string; to?: string; model?: string; group_by?: string }): PerformanceOptions {
  for (const field of ['from', 'to'] as const) {
    // A bare day arrives from HTTP as its midnight UTC (the HTTP layer's one rule for from/to): the day is its date part.
    const v = q[field]?.slice(0, 10);
    if (v === undefined) throw new PerformanceError('performance_query_invalid', `${field} is required (a day, YYYY-MM-DD)`, { field });
    const p = dayProblem(v);
    if (p) throw new PerformanceError('performance_query_invalid', `${field}: ${p}`, { field });
  }
  const [from, to] = [q.from!.slice(0, 10), q.to!.slice(0, 10)];
  if (from >= to) throw new PerformanceError('performance_query_invalid', `to (${to}) must be after from (${from})`, { field: 'to' });
  if ((Date.parse(to) - Date.parse(from)) / 86_400_000 > 3660) throw new PerformanceError('performance_query_invalid', 'the period is longer than ten years', { field: 'to' });
  const model = q.model ?? 'last_touch';
  if (!isModelType(model)) throw new PerformanceError('performance_query_invalid', `model must be one of ${MODEL_TYPES.join(', ')}`, { field: 'model' });
  const groupBy = q.group_by ?? 'channel';
  if (!(PERFORMANCE_GROUPS as readonly string[]).includes(groupBy)) throw new PerformanceError('performance_query_invalid', `group_by must be one of ${PERFORMANCE_GROUPS.join(', ')}`, { field: 'group_by' });
  return { from, to, model: model as ModelType, groupBy: groupBy as PerformanceGroup };
}
