/**
 * The base of every domain error. `code` is stable (clients and scripts match on it);
 * `message` is for humans; `field` names the offending input when there is one. Domain
 * modules throw these; the edges (HTTP: src/http/problems.ts, CLI: src/cli/run.ts) map
 * codes to statuses and exit codes, each in exactly one place.
 */
export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly options: { field?: string; details?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }

  get field(): string | undefined {
    return this.options.field;
  }
}
