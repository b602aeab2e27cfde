// The overshoot the incumbent drivers' poll schedules give, computed (not
// measured) from their published constants:
//  - cinder-csi-plugin (k8s cloud-provider-openstack, pkg/csi/cinder/openstack):
//    wait.ExponentialBackoff from 1 s. Attach (diskAttach*) 1.2 x15 checks,
//    detach (diskDetach*) 1.2 x13, snapshot (snapReady*) 1.2 x10, and the
//    generic volume-status wait used for create and extend (operationFinish*)
//    1.1 x10.
//  - Flocker's Cinder backend: a fixed 1 s loop.
// ExponentialBackoff checks at once, then sleeps d, d*f, d*f^2, ... and gives
// up after `steps` checks. Model: the schedule starts when the mutating call
// returns, `latencyMs` after the change started; the poll that sees the change
// answers `latencyMs` later. So overshoot = 2*latency + firstPollAtOrAfter(T) - T.

export interface Schedule {
  name: string;
  firstMs: number;
  factor: number;
  /** Checks before giving up; Infinity for a loop without limit. */
  steps: number;
}

export const INCUMBENT: Record<string, Schedule> = {
  create: { name: 'cinder-csi-plugin operationFinish 1s x1.1', firstMs: 1000, factor: 1.1, steps: 10 },
  attach: { name: 'cinder-csi-plugin diskAttach 1s x1.2', firstMs: 1000, factor: 1.2, steps: 15 },
  detach: { name: 'cinder-csi-plugin diskDetach 1s x1.2', firstMs: 1000, factor: 1.2, steps: 13 },
  extend: { name: 'cinder-csi-plugin operationFinish 1s x1.1', firstMs: 1000, factor: 1.1, steps: 10 },
  snapshot: { name: 'cinder-csi-plugin snapReady 1s x1.2', firstMs: 1000, factor: 1.2, steps: 10 },
};

export const FLOCKER: Schedule = { name: 'Flocker fixed 1 s', firstMs: 1000, factor: 1, steps: Infinity };

export interface ComputedOvershoot {
  /** ms, or null when the schedule gives up before T. */
  overshootMs: number | null;
  polls: number;
  /** When it gives up (ms after the schedule starts), for a null overshoot. */
  givesUpAtMs?: number;
}

export function scheduleOvershoot(s: Schedule, changeAtMs: number, latencyMs: number): ComputedOvershoot {
  let at = 0; // poll time, relative to the schedule's start
  let delay = s.firstMs;
  for (let check = 1; check <= s.steps; check++) {
    if (latencyMs + at >= changeAtMs) return { overshootMs: 2 * latencyMs + at - changeAtMs, polls: check };
    at += delay;
    delay *= s.factor;
    if (check > 100_000) break;
  }
  return { overshootMs: null, polls: s.steps, givesUpAtMs: at - delay / s.factor };
}
