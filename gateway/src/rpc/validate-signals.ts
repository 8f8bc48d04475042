import {
  SignalMatchMode, SuspensionTimeoutBehavior, type CreateWaitpointRequest, type DeliverSignalRequest, type SignalCondition,
  type SuspendTaskRequest,
} from "@flowfabric/sdk/wire";
import type { SignalMatchMode as MatchModeName, SuspensionTimeoutBehavior as TimeoutName } from "../engine/signal-types.js";
import type { LeaseFence } from "../engine/types.js";
import { GatewayError } from "../errors.js";
import { executionIdOf, fence, identifier, limitExceeded, maxBytes, traceContext, type Limits } from "./validate.js";

/** Validation of the suspend / waitpoint / signal requests (docs/signals.md). Errors name the field. */

/** Caps of suspension and signals (gateway options). */
export interface SignalLimits {
  /** Signals one execution may receive, all waitpoints together. */
  readonly maxSignalsPerExecution: number;
  /** Largest signal payload, in bytes. */
  readonly maxSignalPayloadBytes: number;
  /** Waitpoints one execution may ever have. */
  readonly maxWaitpointsPerExecution: number;
  /** Longest pending-waitpoint lifetime, in ms (also the default). */
  readonly maxPendingWaitpointMs: number;
}

export const DEFAULT_SIGNAL_LIMITS: SignalLimits = Object.freeze({
  maxSignalsPerExecution: 1000,
  maxSignalPayloadBytes: 64 * 1024,
  maxWaitpointsPerExecution: 64,
  maxPendingWaitpointMs: 7 * 24 * 3600 * 1000,
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_SIGNAL_NAMES = 32;
const MAX_COUNT = 10_000;
/** Longest suspension timeout: about 100 years (keeps due times far from 2^53). */
const MAX_TIMEOUT_MS = 100 * 365 * 24 * 3600 * 1000;

const MODES: Readonly<Record<number, MatchModeName>> = {
  [SignalMatchMode.UNSPECIFIED]: "any", [SignalMatchMode.ANY]: "any", [SignalMatchMode.ALL]: "all", [SignalMatchMode.COUNT]: "count",
};
const ON_TIMEOUT: Readonly<Record<number, TimeoutName>> = {
  [SuspensionTimeoutBehavior.UNSPECIFIED]: "fail", [SuspensionTimeoutBehavior.FAIL]: "fail", [SuspensionTimeoutBehavior.CANCEL]: "cancel",
  [SuspensionTimeoutBehavior.EXPIRE]: "expire", [SuspensionTimeoutBehavior.RESUME]: "resume",
};

/** A suspend's validated contents (the waitpoint id and absolute timeout are the caller's to add). */
export interface SuspendRequestSpec {
  readonly fence: LeaseFence;
  readonly reasonCode: string;
  readonly mode: MatchModeName;
  readonly signalNames: readonly string[];
  readonly count: number;
  readonly timeoutMs: number;
  readonly onTimeout: TimeoutName;
  readonly waitpointKey: string;
}

export function suspendRequest(req: SuspendTaskRequest, field: (name: string) => string, limits: Limits): SuspendRequestSpec {
  const f = fence(req.fence, field("fence"), limits);
  const reasonCode = maxBytes(req.reasonCode, field("reason_code"), 128);
  const cond = condition(req.waitFor, field("wait_for"));
  if (req.timeoutMs > BigInt(MAX_TIMEOUT_MS)) throw GatewayError.invalid(field("timeout_ms"), "is out of range");
  const onTimeout = ON_TIMEOUT[req.onTimeout];
  if (onTimeout === undefined) throw GatewayError.invalid(field("on_timeout"), "is not a known behaviour");
  const waitpointKey = maxBytes(req.waitpointKey, field("waitpoint_key"), 128);
  traceContext(req, field);
  return { fence: f, reasonCode, ...cond, timeoutMs: Number(req.timeoutMs), onTimeout, waitpointKey };
}

function condition(c: SignalCondition | undefined, field: string): { mode: MatchModeName; signalNames: string[]; count: number } {
  if (c === undefined) throw GatewayError.invalid(field, "is required");
  const mode = MODES[c.mode];
  if (mode === undefined) throw GatewayError.invalid(`${field}.mode`, "is not a known mode");
  if (c.signalNames.length > MAX_SIGNAL_NAMES) throw GatewayError.invalid(`${field}.signal_names`, `at most ${MAX_SIGNAL_NAMES} names`);
  const signalNames = [...new Set(c.signalNames.map((n, i) => identifier(n, `${field}.signal_names[${i}]`)))];
  if (mode === "all" && signalNames.length === 0) throw GatewayError.invalid(`${field}.signal_names`, "must name at least one signal in ALL mode");
  if (mode === "count" && (c.count < 1 || c.count > MAX_COUNT)) throw GatewayError.invalid(`${field}.count`, `must be 1..${MAX_COUNT} in COUNT mode`);
  return { mode, signalNames, count: mode === "count" ? c.count : 0 };
}

export function createWaitpointRequest(req: CreateWaitpointRequest, field: (name: string) => string, limits: Limits, signals: SignalLimits): { fence: LeaseFence; waitpointKey: string; lifetimeMs: number } {
  const f = fence(req.fence, field("fence"), limits);
  const waitpointKey = maxBytes(req.waitpointKey, field("waitpoint_key"), 128);
  const max = signals.maxPendingWaitpointMs;
  if (req.expiresInMs > BigInt(max)) throw limitExceeded(field("expires_in_ms"), "pending_waitpoint_lifetime_ms", max, Number(req.expiresInMs));
  return { fence: f, waitpointKey, lifetimeMs: req.expiresInMs === 0n ? max : Number(req.expiresInMs) };
}

/** A DeliverSignal request's fields (the token is checked by the caller, right after this). */
export function deliverSignalRequest(req: DeliverSignalRequest, limits: Limits, signals: SignalLimits): {
  executionId: string; waitpointId: string; name: string; source: string; idempotencyKey: string;
} {
  const executionId = executionIdOf(req.executionId, "execution_id", limits);
  if (!UUID.test(req.waitpointId)) throw GatewayError.invalid("waitpoint_id", req.waitpointId === "" ? "is required" : "must be a lowercase UUID");
  const name = identifier(req.name, "name");
  const source = maxBytes(req.source, "source", 256);
  const idempotencyKey = maxBytes(req.idempotencyKey, "idempotency_key", 256);
  if (req.payload.byteLength > signals.maxSignalPayloadBytes) {
    throw limitExceeded("payload", "signal_payload_bytes", signals.maxSignalPayloadBytes, req.payload.byteLength);
  }
  return { executionId, waitpointId: req.waitpointId, name, source, idempotencyKey };
}
