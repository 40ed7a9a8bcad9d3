import type { Column } from './datasets.js';

export const FORMATS = ['csv', 'ndjson'] as const;
export type Format = (typeof FORMATS)[number];

export const CONTENT_TYPES: Record<Format, string> = {
  csv: 'text/csv; charset=utf-8; header=present',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

/** What an encoder needs of a column: its name, and how NDJSON writes it. */
export type EncodedColumn = Pick<Column, 'name' | 'kind'>;

/** A row as the export statement returns it: each column's text, or null. */
export type TextRow = (string | null)[];

export interface Encoder {
  /** What comes before the first row (the CSV header line; nothing for NDJSON). */
  header: string;
  line(row: TextRow): string;
}

const NEEDS_QUOTES = /[",\r\n]/;

/**
 * RFC 4180: fields holding a comma, a quote or a line break are quoted, quotes doubled; lines end CRLF. NULL is
 * an empty field, an empty string a quoted one (`""`), so the two stay apart. Values are written exactly as
 * stored (no spreadsheet-formula escaping: an export is data, and `=`-prefixed values are kept byte for byte).
 */
export function csvField(value: string | null): string {
  if (value === null) return '';
  if (value === '') return '""';
  return NEEDS_QUOTES.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** Written by hand rather than with csv-stringify: one regular expression per field is all RFC 4180 needs. */
function csv(columns: EncodedColumn[]): Encoder {
  return {
    header: columns.map((c) => csvField(c.name)).join(',') + '\r\n',
    line: (row) => {
      let out = csvField(row[0] ?? null);
      for (let i = 1; i < columns.length; i++) out += ',' + csvField(row[i] ?? null);
      return out + '\r\n';
    },
  };
}

/**
 * One JSON object per line, keys in column order. Numbers, booleans and jsonb are inlined as PostgreSQL printed
 * them (valid JSON already: no parse and re-serialise); strings, uuids and timestamps are JSON strings.
 */
function ndjson(columns: EncodedColumn[]): Encoder {
  const keys = columns.map((c, i) => (i === 0 ? '{' : ',') + JSON.stringify(c.name) + ':');
  const raw = columns.map((c) => c.kind === 'integer' || c.kind === 'decimal' || c.kind === 'boolean' || c.kind === 'json');
  return {
    header: '',
    line: (row) => {
      let out = '';
      for (let i = 0; i < columns.length; i++) {
        const v = row[i] ?? null;
        out += keys[i] + (v === null ? 'null' : raw[i] ? v : JSON.stringify(v));
      }
      return out + '}\n';
    },
  };
}

export function encoderFor(format: Format, columns: EncodedColumn[]): Encoder {
  return format === 'csv' ? csv(columns) : ndjson(columns);
}
