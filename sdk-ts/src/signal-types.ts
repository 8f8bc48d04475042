import { create } from "@bufbuild/protobuf";
import {
  SignalConditionSchema, SignalEffect, SignalMatchMode, SuspendOutcome, SuspensionTimeoutBehavior,
  type Signal, type SignalCondition, type SuspensionInfo, type WaitpointInfo, type WaitpointToken,
} from "./gen/flowfabric/v1/signal_pb.js";

/** Public types of suspension, waitpoints and signals (docs/signals.md), and their conversions. */

/** How a suspension matches signal names: one of them, all of them, or `{ count: n }` signals. */
export type SignalMatch = "any" | "all" | { readonly count: number };

/** What a suspension waits for. Signals to any of its waitpoints count. */
export interface WaitFor {
  /** Names that match; empty (or absent) matches any name (not with "all"). */
  readonly signals?: readonly string[];
  /** Default "any". */
  readonly mode?: SignalMatch;
}

/** What a suspension timeout does: fail, cancel or expire the execution, or resume it without a signal. */
export type SuspensionTimeoutName = "fail" | "cancel" | "expire" | "resume";

/** Options of `ClaimedTask.suspend`. */
export interface SuspendOptions {
  /** Why (e.g. "approval"); shown by describeExecution. */
  readonly reasonCode?: string;
  /** The condition. */
  readonly waitFor: WaitFor;
  /** Timeout in ms; absent or 0: none. Also the new waitpoint's token lifetime. */
  readonly timeoutMs?: number;
  /** What the timeout does; default "fail". */
  readonly onTimeout?: SuspensionTimeoutName;
  /** Key of the waitpoint the suspend creates (unique among the attempt's open waitpoints). */
  readonly waitpointKey?: string;
}

/** A waitpoint with the token that lets anyone signal it (a secret: hand it only to the party that should resume the task). */
export interface WaitpointHandle {
  readonly waitpointId: string;
  /** "" when none. */
  readonly waitpointKey: string;
  /** For `deliverSignal`. */
  readonly token: string;
  /** The token is refused after this time (Unix ms); 0: no expiry. */
  readonly expiresAtMs: number;
}

/** Result of `ClaimedTask.suspend`. */
export type SuspendResult =
  /** The lease is released; the task is consumed. The execution is pushed again once the condition is met. */
  | { readonly status: "suspended"; readonly waitpoint: WaitpointHandle }
  /** Buffered signals already satisfied the condition: the lease is kept, the handler continues (`resumeSignals()` returns them). */
  | { readonly status: "already_satisfied" };

/** A signal that satisfied a resume. */
export interface ReceivedSignal {
  readonly signalId: string;
  readonly waitpointId: string;
  readonly name: string;
  /** Payload, byte-exact. */
  readonly payload: Uint8Array;
  readonly source: string;
  /** When the gateway accepted it, Unix ms. */
  readonly acceptedAtMs: number;
}

/** Arguments of `FlowFabricClient.deliverSignal`. */
export interface SignalDelivery {
  readonly executionId: string;
  readonly waitpointId: string;
  /** The waitpoint's token. */
  readonly token: string;
  /** Signal name, 1..128 chars of [A-Za-z0-9._:-]. */
  readonly name: string;
  /** Payload (a string is sent as UTF-8). */
  readonly payload?: Uint8Array | string;
  /** Who sends it (free-form). */
  readonly source?: string;
  /** A repeat with the same key on the same waitpoint is a duplicate (changes nothing). */
  readonly idempotencyKey?: string;
}

/** What a delivered signal did. */
export interface SignalDeliveryResult {
  readonly effect: "accepted" | "triggered_resume" | "duplicate";
  /** The signal's id (a duplicate's: the first delivery's). */
  readonly signalId: string;
}

/** A waitpoint as describeExecution shows it (never its token). */
export interface WaitpointDescription {
  readonly waitpointId: string;
  readonly key: string;
  /** pending | active | closed | expired. */
  readonly state: string;
  readonly attemptIndex: number;
  readonly createdAtMs: number;
  /** 0: none. */
  readonly expiresAtMs: number;
  readonly signalCount: number;
  /** 0 while open. */
  readonly closedAtMs: number;
  /** resumed, satisfied, cancelled, timeout, operator, expired; "" while open. */
  readonly closeReason: string;
}

/** The current suspension of a suspended execution. */
export interface SuspensionDescription {
  readonly reasonCode: string;
  readonly suspendedAtMs: number;
  /** 0: none. */
  readonly timeoutAtMs: number;
  readonly onTimeout: SuspensionTimeoutName;
  readonly waitFor: { readonly signals: readonly string[]; readonly mode: SignalMatch };
  /** Matching signals received so far. */
  readonly matchedSignals: number;
}

/** Why a resumed task resumed ("" for a new attempt). */
export type ResumeReason = "" | "signal" | "timeout" | "operator" | "delay";

const ON_TIMEOUT: Readonly<Record<SuspensionTimeoutName, SuspensionTimeoutBehavior>> = {
  fail: SuspensionTimeoutBehavior.FAIL, cancel: SuspensionTimeoutBehavior.CANCEL, expire: SuspensionTimeoutBehavior.EXPIRE,
  resume: SuspensionTimeoutBehavior.RESUME,
};
const ON_TIMEOUT_NAME: Readonly<Record<number, SuspensionTimeoutName>> = {
  [SuspensionTimeoutBehavior.FAIL]: "fail", [SuspensionTimeoutBehavior.CANCEL]: "cancel", [SuspensionTimeoutBehavior.EXPIRE]: "expire",
  [SuspensionTimeoutBehavior.RESUME]: "resume",
};
const EFFECT: Readonly<Record<number, SignalDeliveryResult["effect"]>> = {
  [SignalEffect.ACCEPTED]: "accepted", [SignalEffect.TRIGGERED_RESUME]: "triggered_resume", [SignalEffect.DUPLICATE]: "duplicate",
};

/** The condition message of a WaitFor (values are checked by the gateway, which names the field). */
export function toCondition(w: WaitFor): SignalCondition {
  const mode = w.mode ?? "any";
  return create(SignalConditionSchema, {
    signalNames: [...(w.signals ?? [])],
    mode: typeof mode === "object" ? SignalMatchMode.COUNT : mode === "all" ? SignalMatchMode.ALL : SignalMatchMode.ANY,
    count: typeof mode === "object" ? mode.count : 0,
  });
}

export function toTimeoutBehavior(name: SuspensionTimeoutName | undefined): SuspensionTimeoutBehavior {
  return name === undefined ? SuspensionTimeoutBehavior.UNSPECIFIED : ON_TIMEOUT[name] ?? SuspensionTimeoutBehavior.UNSPECIFIED;
}

export function fromWaitpointToken(w: WaitpointToken | undefined): WaitpointHandle {
  return { waitpointId: w?.waitpointId ?? "", waitpointKey: w?.waitpointKey ?? "", token: w?.token ?? "", expiresAtMs: Number(w?.expiresAtMs ?? 0n) };
}

export function fromSuspendResponse(outcome: SuspendOutcome, waitpoint: WaitpointToken | undefined): SuspendResult {
  return outcome === SuspendOutcome.ALREADY_SATISFIED ? { status: "already_satisfied" } : { status: "suspended", waitpoint: fromWaitpointToken(waitpoint) };
}

export function fromSignal(s: Signal): ReceivedSignal {
  return { signalId: s.signalId, waitpointId: s.waitpointId, name: s.name, payload: s.payload, source: s.source, acceptedAtMs: Number(s.acceptedAtMs) };
}

export function signalEffectName(effect: SignalEffect): SignalDeliveryResult["effect"] {
  return EFFECT[effect] ?? "accepted";
}

export function fromWaitpointInfo(w: WaitpointInfo): WaitpointDescription {
  return {
    waitpointId: w.waitpointId, key: w.key, state: w.state, attemptIndex: w.attemptIndex, createdAtMs: Number(w.createdAtMs),
    expiresAtMs: Number(w.expiresAtMs), signalCount: w.signalCount, closedAtMs: Number(w.closedAtMs), closeReason: w.closeReason,
  };
}

export function fromSuspensionInfo(s: SuspensionInfo): SuspensionDescription {
  const c = s.waitFor;
  const mode: SignalMatch = c?.mode === SignalMatchMode.COUNT ? { count: c.count } : c?.mode === SignalMatchMode.ALL ? "all" : "any";
  return {
    reasonCode: s.reasonCode, suspendedAtMs: Number(s.suspendedAtMs), timeoutAtMs: Number(s.timeoutAtMs),
    onTimeout: ON_TIMEOUT_NAME[s.onTimeout] ?? "fail", waitFor: { signals: [...(c?.signalNames ?? [])], mode }, matchedSignals: s.matchedSignals,
  };
}
