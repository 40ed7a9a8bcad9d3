import { CHECKS, FOREIGN_KEY, INDEXES } from '../migrations/document.js';
import { ident } from '../db/pool.js';
import { CHECK_SOURCES, FOREIGN_KEY_SOURCE, INDEX_SOURCES, LEGACY_INDEX_SOURCES, type IndexSource } from './ddl.js';
import type { Session } from './session.js';

/** An expected definition and where it came from. */
export interface Reference {
  text: string;
  /** `server`: rendered by the validated server itself; `document`: PostgreSQL 15's text from document.ts. */
  origin: 'server' | 'document';
  note?: string;
}

/**
 * Renders the document's DDL on the server being validated: inside a transaction that is
 * always rolled back, it creates a temporary table LIKE the real one, adds the document's
 * index or constraint to it, and reads back pg_get_indexdef / pg_get_constraintdef. The
 * expected text is thus printed by the same PostgreSQL version that prints the live
 * object, so version-to-version changes in how definitions are printed (15 through 18)
 * cannot produce a false verdict. If the scratch table cannot be made (no TEMP privilege,
 * or the real table is missing), the PostgreSQL 15 text from document.ts is used instead.
 */
export class ReferenceRenderer {
  constructor(private readonly session: Session) {}

  async index(name: string): Promise<Reference> {
    const source = INDEX_SOURCES[name] ?? LEGACY_INDEX_SOURCES[name];
    if (!source) throw new Error(`no DDL source for index ${name}`);
    const fallback = INDEXES.find((i) => i.name === name)?.definition ?? documentIndexText(name, source);
    return this.render(fallback, async () => {
      await this.scratch(source.table);
      await this.session.query(`CREATE ${source.unique ? 'UNIQUE ' : ''}INDEX ${ident(name)} ON pg_temp.${ident(source.table)} ${source.body}`);
      const { rows } = await this.session.query<{ def: string }>(`SELECT pg_get_indexdef(to_regclass($1)) AS def`, [`pg_temp.${name}`]);
      // The scratch table lives in this session's temporary schema; the real one in public.
      return rows[0]!.def.replace(/^(CREATE (?:UNIQUE )?INDEX \S+ ON )pg_temp(?:_\d+)?\./, '$1public.');
    });
  }

  async check(name: string): Promise<Reference> {
    const source = CHECK_SOURCES[name];
    if (!source) throw new Error(`no DDL source for constraint ${name}`);
    const fallback = CHECKS.find((c) => c.name === name)!.definition;
    return this.render(fallback, async () => {
      await this.scratch(source.table);
      await this.session.query(`ALTER TABLE pg_temp.${ident(source.table)} ADD CONSTRAINT ${ident(name)} CHECK (${source.expression})`);
      return this.constraintDef(source.table, name);
    });
  }

  /** A CHECK that is not the document's (a Citus equivalent's), printed by this server the same way. */
  async checkExpression(table: string, name: string, expression: string): Promise<Reference> {
    return this.render(`CHECK (${expression})`, async () => {
      await this.scratch(table);
      await this.session.query(`ALTER TABLE pg_temp.${ident(table)} ADD CONSTRAINT ${ident(name)} CHECK (${expression})`);
      return this.constraintDef(table, name);
    });
  }

  async foreignKey(): Promise<Reference> {
    const fk = FOREIGN_KEY_SOURCE;
    return this.render(FOREIGN_KEY.definition, async () => {
      // A temporary table may only reference temporary tables: make a scratch parent too.
      await this.scratch(fk.referenced);
      await this.session.query(`ALTER TABLE pg_temp.${ident(fk.referenced)} ADD PRIMARY KEY (id)`);
      await this.scratch(fk.table);
      await this.session.query(
        `ALTER TABLE pg_temp.${ident(fk.table)} ADD CONSTRAINT ${ident(fk.name)} ${fk.definition.replace('REFERENCES ', 'REFERENCES pg_temp.')}`,
      );
      return this.constraintDef(fk.table, fk.name);
    });
  }

  private async scratch(table: string): Promise<void> {
    await this.session.query(`CREATE TEMP TABLE ${ident(table)} (LIKE public.${ident(table)})`);
  }

  private async constraintDef(table: string, name: string): Promise<string> {
    const { rows } = await this.session.query<{ def: string }>(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2`,
      [`pg_temp.${table}`, name],
    );
    return rows[0]!.def;
  }

  private async render(fallback: string, fn: () => Promise<string>): Promise<Reference> {
    // The scratch objects' names equal the real ones: they are always rolled back, inside a
    // savepoint when a behavioural test's transaction is already open.
    const nested = this.session.inTransaction;
    await this.session.query(nested ? 'SAVEPOINT forensic_reference' : 'BEGIN');
    try {
      return { text: await fn(), origin: 'server' };
    } catch (error) {
      return {
        text: fallback,
        origin: 'document',
        note: `the server could not render the reference (${(error as Error).message}); PostgreSQL 15's text is used`,
      };
    } finally {
      await this.session.query(nested ? 'ROLLBACK TO SAVEPOINT forensic_reference' : 'ROLLBACK');
    }
  }
}

function documentIndexText(name: string, s: IndexSource): string {
  return `CREATE ${s.unique ? 'UNIQUE ' : ''}INDEX ${name} ON public.${s.table} USING btree ${s.body}`;
}

/** An index definition without its name, to recognise the same index under another name. */
export function anonymous(definition: string): string {
  return definition.replace(/^CREATE (UNIQUE )?INDEX \S+ ON /, 'CREATE $1INDEX ON ');
}
