// How long to wait before reconnecting the console: doubling from `initialMs` up to `maxMs`,
// with jitter so that many browsers losing the panel at once do not return in step.

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** Fraction of the delay that is random (0: none, 0.5: between 50 % and 100 %). */
  jitter: number;
}

export const CONSOLE_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 30_000, jitter: 0.3 };

/** The wait before reconnect attempt `attempt` (1 = the first retry). `random` is in [0, 1). */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: number): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** exponent);
  return Math.round(ceiling * (1 - policy.jitter * random));
}
