import type { MigrationContext } from './context.js';

/**
 * One step of the schema's history, pg-boss style: an explicit id and the id it follows.
 * A released revision is never edited; changes come as new revisions.
 */
export interface Revision {
  /** 12-digit id (yyyymmddhhmm); ids sort in chain order. */
  readonly id: string;
  /** The revision this one follows, or null for the first. */
  readonly previous: string | null;
  readonly title: string;
  /** What a downgrade of this revision destroys: whole tables, or columns of a table. */
  readonly dropsOnDowngrade: ReadonlyArray<{ table: string; columns?: readonly string[] }>;
  up(m: MigrationContext): Promise<void>;
  down(m: MigrationContext): Promise<void>;
}
