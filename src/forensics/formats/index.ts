import type { ForensicReport } from '../types.js';
import { toJunit } from './junit.js';
import { toMarkdown } from './markdown.js';
import { toText } from './text.js';

export const FORMATS = ['text', 'json', 'markdown', 'junit'] as const;
export type Format = (typeof FORMATS)[number];

export function render(report: ForensicReport, format: Format): string {
  switch (format) {
    case 'json':
      return JSON.stringify(report, null, 2) + '\n';
    case 'markdown':
      return toMarkdown(report);
    case 'junit':
      return toJunit(report);
    case 'text':
      return toText(report);
  }
}
