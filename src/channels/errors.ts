import { DomainError } from '../errors.js';

/**
 * Typed errors of channels and channel rules; `code` is stable (HTTP: src/http/problems.ts; CLI:
 * a message and exit 2 for *_invalid, 1 otherwise).
 */
export type ChannelErrorCode =
  | 'channel_not_found'
  | 'channel_exists'
  | 'channel_in_use'
  | 'channel_default'
  | 'channel_invalid'
  | 'channel_rule_not_found'
  | 'channel_rule_invalid'
  | 'channel_rule_order_invalid'
  | 'reclassify_invalid';

export class ChannelError extends DomainError {
  declare readonly code: ChannelErrorCode;
  constructor(code: ChannelErrorCode, message: string, options: { field?: string; details?: Record<string, unknown> } = {}) {
    super(code, message, options);
    this.name = 'ChannelError';
  }
}
