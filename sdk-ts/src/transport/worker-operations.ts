/**
 * The worker task operations — one table both sides derive their plumbing from.
 *
 * A task operation (complete, fail, renewLease, appendFrame, …) exists three times on the wire:
 * as a `SessionRequest.body` case, as the `SessionResponse.body` case answering it (same name),
 * and as a unary `WorkerService` mirror whose input and output are the same two messages. The
 * {@link WORKER_OPERATIONS} table names each operation once, by its Session case, with its unary
 * method descriptor and the little behaviour the protocol attaches to it. From it come:
 *
 * - the gateway's Session dispatch (`gateway/src/sessions/worker-session.ts`): which bodies are
 *   operations, which ones settle the task (free its slot), the field prefix of validation errors;
 * - the unary mirrors on both listeners (grpc-js in `grpc-server.ts`, Connect in `http-server.ts`);
 * - span names (`flowfabric.<proto field name>`) and the `flowfabric.outcome` attribute, on the
 *   gateway and in the SDK's task span;
 * - the SDK's operation types ({@link OperationRequest}, {@link OperationResponse}), which
 *   operations are terminal (`ClaimedTask` settles, the router re-sends them across reconnects),
 *   and the size estimate used by Session batching.
 *
 * ## Adding an operation
 * 1. proto/flowfabric/v1/worker.proto: the `<Op>Request`/`<Op>Response` messages, a unary
 *    `rpc <Op>` in `WorkerService`, and a field of the same name in both `SessionRequest.body` and
 *    `SessionResponse.body` (e.g. `SuspendTaskRequest suspend = 18;` / `SuspendTaskResponse
 *    suspend = 19;`); then `npm run generate`.
 * 2. One entry here, keyed by the Session case (`suspend: operation({ method:
 *    WorkerService.method.suspendTask, settles: true, … })`). The compiler then checks that the
 *    Session cases carry the method's messages.
 * 3. Its handler: a method of that name on the gateway's `TaskOperations`
 *    (`gateway/src/rpc/task-operations.ts`), which the compiler requires (it implements
 *    `OperationHandlers`). Validation, one engine call, the response.
 * 4. Its public face in the SDK (a `ClaimedTask` method calling `#operate` or `#settle`), docs.
 * Nothing else: both listeners, the Session dispatch, telemetry and batching pick it up.
 */
import type { DescMessage, DescMethod, MessageShape } from "@bufbuild/protobuf";
import {
  FailOutcome, SessionRequestSchema, WorkerService,
  type SessionRequest, type SessionResponse,
} from "../gen/flowfabric/v1/worker_pb.js";
import { SuspendOutcome } from "../gen/flowfabric/v1/signal_pb.js";
import { operationSpanName } from "../telemetry/attributes.js";

/** A unary method of `WorkerService`, typed with its messages (as the generated descriptor is). */
type UnaryMethod = DescMethod & { readonly methodKind: "unary"; readonly input: DescMessage; readonly output: DescMessage };

/** What an entry of {@link WORKER_OPERATIONS} declares. */
interface OperationEntry<M extends UnaryMethod> {
  /** The unary `WorkerService` mirror; its input and output are the operation's messages. */
  readonly method: M;
  /**
   * True for operations that end the task's hold when they succeed (complete, fail, cancel,
   * delay): the gateway frees the slot as soon as one arrives, the SDK's task leaves `running`,
   * and an unanswered one is re-sent after a reconnect even when the lease was lost meanwhile.
   */
  readonly settles: boolean;
  /**
   * A settling operation whose success may leave the task held (suspend answered
   * ALREADY_SATISFIED): true for such a response. The gateway then frees the slot only once the
   * answer says so (not when the request arrives), and the SDK's task returns to `running`.
   */
  keepsLease?(response: MessageShape<M["output"]>): boolean;
  /** `flowfabric.outcome` of a success (span attribute); absent: none. */
  outcome?(response: MessageShape<M["output"]>): string;
  /**
   * Estimated encoded bytes of the request's variable-size fields (strings, payloads, maps),
   * for batching; the fixed part (fence, trace context, framing) is counted by the caller.
   * Must not underestimate. Absent: the request has no large variable fields.
   */
  variableBytes?(request: MessageShape<M["input"]>): number;
}

function operation<M extends UnaryMethod>(entry: OperationEntry<M>): OperationEntry<M> {
  return entry;
}

/** UTF-8 bytes of a string. */
function utf8(s: string): number {
  return Buffer.byteLength(s);
}

/** Estimated encoded bytes of the keys and values of a string map. */
export function mapBytes(map: Readonly<Record<string, string>>): number {
  let bytes = 0;
  for (const [k, v] of Object.entries(map)) bytes += utf8(k) + utf8(v) + 8;
  return bytes;
}

/** The worker task operations, keyed by their `SessionRequest.body` / `SessionResponse.body` case. */
export const WORKER_OPERATIONS = {
  renewLease: operation({ method: WorkerService.method.renewLease, settles: false }),
  updateProgress: operation({
    method: WorkerService.method.updateProgress, settles: false,
    variableBytes: (r) => utf8(r.message),
  }),
  complete: operation({
    method: WorkerService.method.completeTask, settles: true,
    outcome: () => "completed",
    variableBytes: (r) => r.result?.byteLength ?? 0,
  }),
  fail: operation({
    method: WorkerService.method.failTask, settles: true,
    outcome: (r) => (r.outcome === FailOutcome.RETRY_SCHEDULED ? "retry_scheduled" : "failed"),
    variableBytes: (r) => utf8(r.reason) + utf8(r.category),
  }),
  cancel: operation({
    method: WorkerService.method.cancelTask, settles: true,
    outcome: () => "cancelled",
    variableBytes: (r) => utf8(r.reason),
  }),
  delay: operation({ method: WorkerService.method.delayTask, settles: true, outcome: () => "delayed" }),
  suspend: operation({
    method: WorkerService.method.suspendTask, settles: true,
    keepsLease: (r) => r.outcome === SuspendOutcome.ALREADY_SATISFIED,
    outcome: (r) => (r.outcome === SuspendOutcome.ALREADY_SATISFIED ? "already_satisfied" : "suspended"),
    variableBytes: (r) => utf8(r.reasonCode) + utf8(r.waitpointKey) + (r.waitFor?.signalNames ?? []).reduce((n, x) => n + utf8(x) + 4, 0),
  }),
  createWaitpoint: operation({
    method: WorkerService.method.createWaitpoint, settles: false,
    variableBytes: (r) => utf8(r.waitpointKey),
  }),
  resumeSignals: operation({ method: WorkerService.method.resumeSignals, settles: false }),
  appendFrame: operation({
    method: WorkerService.method.appendFrame, settles: false,
    variableBytes: (r) => r.payload.byteLength + utf8(r.frameType) + utf8(r.correlationId) + mapBytes(r.metadata),
  }),
} as const;

type Table = typeof WORKER_OPERATIONS;
/** Name of a task operation: its `SessionRequest.body` (and `SessionResponse.body`) case. */
export type OperationKind = keyof Table;
/** Request message of operation `K`. */
export type OperationRequest<K extends OperationKind> = MessageShape<Table[K]["method"]["input"]>;
/** Response message of operation `K`. */
export type OperationResponse<K extends OperationKind> = MessageShape<Table[K]["method"]["output"]>;
/** A `SessionRequest.body` that is a task operation. */
export type OperationBody = { [K in OperationKind]: { readonly case: K; readonly value: OperationRequest<K> } }[OperationKind];

// Compile-time proof that every operation is a Session case on both sides carrying its method's
// messages: a mismatch makes this assignment fail to typecheck.
type CaseValue<B, K> = Extract<B, { case: K }> extends { value: infer V } ? V : never;
type Matches<K extends OperationKind> =
  [OperationRequest<K>, OperationResponse<K>] extends [CaseValue<SessionRequest["body"], K>, CaseValue<SessionResponse["body"], K>] ? true : false;
const SESSION_CASES_MATCH: { [K in OperationKind]: Matches<K> } extends Record<OperationKind, true> ? true : never = true;
void SESSION_CASES_MATCH;

/** One operation as the plumbing uses it: the table entry plus what the descriptors say. */
export interface WorkerOperation<K extends OperationKind = OperationKind> {
  /** The Session case. */
  readonly kind: K;
  /** Proto field name of the Session case (e.g. "renew_lease"): the prefix of errors' field paths. */
  readonly field: string;
  /** The unary `WorkerService` method. */
  readonly method: UnaryMethod;
  /** gRPC path of the unary mirror, "/flowfabric.v1.WorkerService/<Method>". */
  readonly path: string;
  /** Span name, `flowfabric.<field>` (e.g. "flowfabric.renew_lease"). */
  readonly spanName: string;
  /** See {@link OperationEntry.settles}. */
  readonly settles: boolean;
  /**
   * True when the slot is free as soon as the request arrives (a settling operation without
   * {@link OperationEntry.keepsLease}); false: only once a success that does not keep the lease.
   */
  readonly settlesOnArrival: boolean;
  /** See {@link OperationEntry.keepsLease} (false when the entry has none). */
  keepsLease(response: OperationResponse<K>): boolean;
  /** `flowfabric.outcome` of a successful response; undefined when the operation has none. */
  outcome(response: OperationResponse<K>): string | undefined;
  /** Estimated bytes of the request's variable-size fields (0 when it has none). */
  variableBytes(request: OperationRequest<K>): number;
}

function derive<K extends OperationKind>(kind: K): WorkerOperation<K> {
  const entry: OperationEntry<UnaryMethod> = WORKER_OPERATIONS[kind];
  const field = SessionRequestSchema.field[kind];
  if (field === undefined) throw new Error(`worker operation ${kind} is not a SessionRequest case`);
  return Object.freeze({
    kind,
    field: field.name,
    method: entry.method,
    path: `/${WorkerService.typeName}/${entry.method.name}`,
    spanName: operationSpanName(kind),
    settles: entry.settles,
    settlesOnArrival: entry.settles && entry.keepsLease === undefined,
    keepsLease: (response: OperationResponse<K>) => entry.keepsLease?.(response) ?? false,
    outcome: (response: OperationResponse<K>) => entry.outcome?.(response),
    variableBytes: (request: OperationRequest<K>) => entry.variableBytes?.(request) ?? 0,
  });
}

/** Every operation, derived from {@link WORKER_OPERATIONS}, by kind. */
export const OPERATIONS: { readonly [K in OperationKind]: WorkerOperation<K> } = Object.freeze(
  Object.fromEntries(Object.keys(WORKER_OPERATIONS).map((kind) => [kind, derive(kind as OperationKind)])) as { [K in OperationKind]: WorkerOperation<K> },
);

/** Every operation, in table order. */
export const OPERATION_LIST: readonly WorkerOperation[] = Object.freeze(Object.values(OPERATIONS) as WorkerOperation[]);

/** The operation a `SessionRequest.body` case names, if it is one. */
export function operationOf(kind: string | undefined): WorkerOperation | undefined {
  return kind !== undefined && Object.hasOwn(OPERATIONS, kind) ? OPERATIONS[kind as OperationKind] : undefined;
}

/** The operation whose unary mirror has gRPC path `path`, if any. */
export function operationOfPath(path: string): WorkerOperation | undefined {
  return BY_PATH.get(path);
}
const BY_PATH: ReadonlyMap<string, WorkerOperation> = new Map(OPERATION_LIST.map((op) => [op.path, op]));

/** True when `body` is a task operation (narrows it to {@link OperationBody}). */
export function isOperationBody(body: SessionRequest["body"]): body is SessionRequest["body"] & OperationBody {
  return operationOf(body.case) !== undefined;
}

/** Estimated bytes of a task operation request's variable-size fields (see {@link OperationEntry.variableBytes}). */
export function requestVariableBytes<K extends OperationKind>(body: { readonly case: K; readonly value: OperationRequest<K> }): number {
  return OPERATIONS[body.case].variableBytes(body.value);
}
