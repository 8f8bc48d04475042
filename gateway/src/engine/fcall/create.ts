/** ff_create: one execution per call (the backend pipelines many). */
import { EXECUTION_DEFAULTS } from "../defaults.js";
import { PartitionKeys } from "../keys.js";
import type { CreateOutcome, CreateSpec, PublicStateName } from "../types.js";
import { int, num, okFields, str, type FcallArgs } from "./common.js";

export const FN_CREATE = "ff_create";
/** Used when a spec says maxReclaims = 0 (engine/defaults.ts). */
export const DEFAULT_MAX_RECLAIMS = EXECUTION_DEFAULTS.maxReclaims;
/** Best-effort frame stream TTL when a spec gives none, in ms (engine/defaults.ts). */
export const DEFAULT_STREAM_TTL_MS = EXECUTION_DEFAULTS.streamTtlMs;

export function buildCreate(partition: number, uuid: string, spec: CreateSpec): FcallArgs {
  const keys = new PartitionKeys(partition);
  const tags = Object.entries(spec.tags);
  const r = spec.retry;
  const argv: (string | Buffer)[] = [
    spec.namespace, spec.lane, spec.kind, Buffer.from(spec.input.buffer, spec.input.byteOffset, spec.input.byteLength),
    int(spec.priority), int(spec.delayUntilMs), int(spec.deadlineAtMs), int(spec.attemptTimeoutMs),
    int(spec.maxReclaims === 0 ? DEFAULT_MAX_RECLAIMS : spec.maxReclaims), spec.requiredCapabilities.join(","),
    int(r.maxRetries), r.backoff, int(r.initialDelayMs), int(r.maxDelayMs), String(r.multiplier), String(r.jitter),
    r.retryableCategories.join(","), spec.idempotencyKey, spec.traceparent, spec.tracestate, String(tags.length),
  ];
  for (const [k, v] of tags) argv.push(k, v);
  argv.push(spec.streamMode ?? "durable", int(spec.streamTtlMs ?? DEFAULT_STREAM_TTL_MS), int(spec.idempotencyTtlMs ?? 0));
  return { keys: [keys.prefix, keys.core(uuid)], argv };
}

/** ff_create's reply after the envelope. */
const REPLY = ["executionId", "duplicate", "state"] as const;

export function decodeCreate(reply: unknown): CreateOutcome {
  const r = okFields(reply, FN_CREATE, REPLY);
  return { executionId: str(r.executionId), duplicate: num(r.duplicate) === 1, state: str(r.state) as PublicStateName };
}

