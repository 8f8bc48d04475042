import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { Span } from "@opentelemetry/api";
import {
  ATTR_SESSION_CLOSE_REASON, CancelRequestedSchema, DrainSchema, HeartbeatAckSchema, type Hello,
  isOperationBody, LeaseLostSchema, type LeaseStatus, LeaseStatusSchema, MAX_BATCH_MESSAGES, type OperationBody, OperationErrorSchema, OPERATIONS,
  PartitionConfigSchema, PingSchema, PongSchema, responseBatch, responseSize, sessionOutbox, type SessionRequest,
  type SessionResponse, SessionResponseSchema, type Task, TaskPushSchema, type TurnBatcher, WelcomeSchema, type WorkerOperation,
} from "@flowfabric/sdk/wire";
import type { Authorizer } from "../auth/authorizer.js";
import { Caller } from "../auth/caller.js";
import type { GatewayOptions } from "../config.js";
import type { EngineBackend } from "../engine/backend.js";
import type { Grant, LeaseFence } from "../engine/types.js";
import { GatewayError, Reason } from "../errors.js";
import type { Logger } from "../logger.js";
import { task } from "../rpc/convert.js";
import { detailOf, statusOf } from "../rpc/error-table.js";
import { runOperation, type OperationHandlers } from "../rpc/task-operations.js";
import * as v from "../rpc/validate.js";
import type { SchedulableSession, SessionScheduler } from "../scheduler/schedulable.js";
import type { GatewayTelemetry } from "../telemetry/gateway-telemetry.js";
import { adoptHeld } from "./adoption.js";
import { HeldTasks, type HeldTask } from "./held-tasks.js";
import type { SessionRegistry } from "./session-registry.js";
import type { SessionTransport } from "./session-transport.js";

/**
 * Session states and their legal transitions:
 *   awaiting_hello -> active (Welcome sent) | closed
 *   active         -> draining (Drain sent; no more pushes) | closed
 *   draining       -> closed (grace over or every task settled)
 */
export type SessionState = "awaiting_hello" | "active" | "draining" | "closed";
const TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = {
  awaiting_hello: ["active", "closed"],
  active: ["draining", "closed"],
  draining: ["closed"],
  closed: [],
};

export interface SessionDeps {
  readonly engine: EngineBackend;
  readonly scheduler: SessionScheduler;
  readonly registry: SessionRegistry;
  readonly ops: OperationHandlers;
  readonly options: GatewayOptions;
  readonly limits: v.Limits;
  readonly log: Logger;
  readonly telemetry: GatewayTelemetry;
  readonly auth: Authorizer;
}

/** Errors after which the task is definitely no longer held by this worker. */
const DEFINITIVE: ReadonlySet<Reason> = new Set([Reason.STALE_LEASE, Reason.EXECUTION_NOT_ACTIVE, Reason.NOT_FOUND, Reason.LEASE_EXPIRED]);
const HELLO_TIMEOUT_MS = 10_000;
/** How long a session that must end waits for the answers of operations already running. */
const ENDING_ANSWER_WAIT_MS = 5_000;
const MAX_REQUEST_ID_BYTES = 64;

/** One worker stream: hello -> active -> draining -> closed. Every timer hangs off one AbortSignal. */
export class WorkerSession implements SchedulableSession {
  readonly id = randomUUID();
  private _state: SessionState = "awaiting_hello";
  namespace = "";
  lanes: readonly string[] = [];
  capabilities: readonly string[] = [];
  /** Sessions with equal keys can share one claim. */
  capabilityKey = "";
  workerId = "";
  instanceId = "";
  private capacity = 0;
  private reserved = 0;
  private readonly tasks = new HeldTasks();
  private readonly lifetime = new AbortController();
  private lastSentAtMs = Date.now();
  private lastReceivedAtMs = Date.now();
  private heartbeatRunning = false;
  private heartbeatPending = false;
  private nonce = 0n;
  private onSettled: (() => void) | undefined;
  private readonly log: Logger;
  /** The session's long-lived span (tracing on): per-task spans link to it. */
  private span: Span | undefined;
  /** Pushes held back until the answers they must follow are sent (see sendPushes). */
  private readonly deferred: Task[][] = [];
  /** Tasks in `deferred`. */
  private deferredTasks = 0;
  /** Set when the worker's Hello asked for batching: sends then go through `outbox`. */
  private outbox: TurnBatcher<SessionResponse> | undefined;
  /** Operations (and the Hello) still running: a stream that must end answers them first. */
  private readonly running = new Set<Promise<void>>();
  /** Set once the session must end (fatal): nothing more is read; running operations finish first. */
  private ending = false;

  /**
   * `caller` is the stream's authenticated token (already allowed to open a Session): the Hello's
   * namespace must be one it grants.
   */
  constructor(private readonly deps: SessionDeps, private readonly transport: SessionTransport, private readonly caller: Caller = Caller.OPEN) {
    this.log = deps.log.child({ session: this.id });
    transport.signal.addEventListener("abort", () => this.close("stream ended"), { once: true });
    transport.onMessage((m) => (m instanceof GatewayError ? this.fatal(m) : this.receive(m)));
    transport.onRequestsEnd(() => {
      this.outbox?.flush();
      this.transport.end();
    });
    this.timer(HELLO_TIMEOUT_MS, () => {
      if (this._state === "awaiting_hello") this.fatal(new GatewayError(Reason.HELLO_REQUIRED, `no Hello within ${HELLO_TIMEOUT_MS} ms`));
    });
  }

  get state(): SessionState { return this._state; }
  get heldTasks(): number { return this.tasks.size; }

  /** Slots the scheduler may fill now. */
  get freeSlots(): number {
    return this._state === "active" ? Math.max(0, this.capacity - this.tasks.busy - this.reserved) : 0;
  }
  reserve(n: number): void { this.reserved += n; }
  unreserve(n: number): void { this.reserved = Math.max(0, this.reserved - n); }

  /** Pushes granted tasks; false when the session can no longer take them (the caller releases them). */
  push(grants: readonly Grant[]): boolean {
    if (this._state !== "active") return false;
    const tasks = grants.map(task);
    this.deps.telemetry.dispatched(grants, tasks, this, this.span);
    grants.forEach((g, i) => this.hold(g.fence, false, tasks[i]));
    this.deferred.push(tasks);
    this.deferredTasks += tasks.length;
    this.sendPushes();
    return true;
  }

  /**
   * Sends the pushes not sent yet, in order, while the worker stays within its limit counting as
   * it must (docs/protocol.md, "Acks and slots"): every task pushed to it and not yet answered
   * for good. A terminal operation frees its slot on arrival, so the next claim rides along with
   * it; the push of that claim waits here until the operation's answer is sent. Nothing waits
   * once no terminal operation is in flight (a lowered credit is the worker's own doing).
   */
  private sendPushes(): void {
    while (this.deferred.length > 0) {
      const next = this.deferred[0]!;
      const outstanding = this.tasks.size - this.deferredTasks;
      if (outstanding + next.length > this.capacity && this.tasks.settleInFlight()) return;
      this.deferred.shift();
      this.deferredTasks -= next.length;
      this.send({ case: "tasks", value: create(TaskPushSchema, { tasks: next }) });
    }
  }

  /** Another party cancelled a task this session holds. */
  cancelRequested(leaseId: string, executionId: string, reason: string, by: string): void {
    if (!this.dropTask(leaseId)) return;
    this.send({ case: "cancelRequested", value: create(CancelRequestedSchema, { executionId, leaseId, reason, cancelledBy: by }) });
    this.sendPushes();
    this.deps.scheduler.slotsFreed();
  }

  /** A lease this session holds is gone. */
  leaseLost(leaseId: string, executionId: string, reason: string): void {
    if (!this.dropTask(leaseId)) return;
    this.deps.telemetry.metrics.leasesLost.add(1);
    this.send({ case: "leaseLost", value: create(LeaseLostSchema, { executionId, leaseId, reason }) });
    this.sendPushes();
    this.deps.scheduler.slotsFreed();
  }

  /** Stops pushes, tells the worker to reconnect elsewhere, waits for its tasks up to the grace, then closes. */
  async drain(graceMs: number, reason = "shutdown"): Promise<void> {
    if (this._state === "awaiting_hello") return this.fatal(new GatewayError(Reason.DRAINING, "gateway is draining"));
    if (this._state !== "active") return;
    this.transition("draining");
    this.deps.scheduler.removeSession(this);
    this.send({ case: "drain", value: create(DrainSchema, { reason, graceMs: BigInt(graceMs) }) });
    await new Promise<void>((resolve) => {
      const done = (): void => { clearTimeout(t); this.onSettled = undefined; resolve(); };
      const t = setTimeout(done, graceMs);
      this.onSettled = done;
      if (this.tasks.size === 0) done();
      this.lifetime.signal.addEventListener("abort", done, { once: true });
    });
    this.fatal(new GatewayError(Reason.DRAINING, "gateway drained this session; reconnect"));
  }

  private receive(message: SessionRequest): void {
    if (this._state === "closed" || this.ending) return;
    this.lastReceivedAtMs = Date.now();
    const body = message.body;
    if (this._state === "awaiting_hello") {
      if (body.case !== "hello") {
        this.fatal(new GatewayError(Reason.HELLO_REQUIRED, "the first Session message must be a Hello", "hello"));
        return;
      }
      this.track(this.hello(body.value).catch((err: unknown) => this.fatal(GatewayError.from(err))));
      return;
    }
    switch (body.case) {
      case "hello":
        this.fatal(new GatewayError(Reason.PROTOCOL_VIOLATION, "Hello may only be sent once per stream", "hello"));
        return;
      case "heartbeat":
        void this.heartbeat();
        return;
      case "ack":
        this.tasks.ack(body.value.leaseIds);
        return;
      case "credit":
        if (body.value.maxConcurrentTasks > 10_000) {
          this.operationError(message.requestId, GatewayError.invalid("credit.max_concurrent_tasks", "must be at most 10000"));
          return;
        }
        this.capacity = body.value.maxConcurrentTasks;
        this.sendPushes();
        this.deps.scheduler.slotsFreed();
        return;
      case "ping":
        this.send({ case: "pong", value: create(PongSchema, { nonce: body.value.nonce }) });
        return;
      case "pong":
        return;
      case "batch":
        this.receiveBatch(body.value.requests);
        return;
      default:
        if (isOperationBody(body)) this.track(this.operate(message.requestId, body));
        else this.operationError(message.requestId, GatewayError.invalid("body", "is required"));
    }
  }

  /**
   * The requests of a batch, one by one, in order — after checking the whole batch: a malformed
   * one (empty, too long, a Hello or a batch inside) ends the stream before any of it runs.
   */
  private receiveBatch(requests: readonly SessionRequest[]): void {
    const nested = requests.find((r) => r.body.case === "hello" || r.body.case === "batch")?.body.case;
    const bad = requests.length === 0 || requests.length > MAX_BATCH_MESSAGES
      ? `a batch holds 1..${MAX_BATCH_MESSAGES} requests, got ${requests.length}`
      : nested !== undefined ? `a batch may not contain a ${nested}` : undefined;
    if (bad !== undefined) {
      this.fatal(new GatewayError(Reason.PROTOCOL_VIOLATION, bad, "batch.requests"));
      return;
    }
    for (const request of requests) {
      this.receive(request);
      if (this._state === "closed" || this.ending) return;
    }
  }

  private async hello(h: Hello): Promise<void> {
    const { options, engine, limits } = this.deps;
    this.workerId = v.identifier(h.workerId, "hello.worker_id");
    this.instanceId = v.identifier(h.instanceId, "hello.instance_id");
    this.namespace = v.namespaceOf(h.namespace, "hello.namespace");
    this.caller.requireNamespace(this.namespace, "hello.namespace");
    if (h.lanes.length === 0) throw GatewayError.invalid("hello.lanes", "at least one lane is required");
    if (h.lanes.length > 64) throw GatewayError.invalid("hello.lanes", "at most 64 lanes");
    this.lanes = [...new Set(h.lanes.map((l, i) => v.lane(l, `hello.lanes[${i}]`)))];
    this.capabilities = v.capabilities(h.capabilities, "hello.capabilities");
    this.capabilityKey = this.capabilities.join(",");
    if (h.maxConcurrentTasks < 1 || h.maxConcurrentTasks > 10_000) throw GatewayError.invalid("hello.max_concurrent_tasks", "must be in [1, 10000]");
    if (h.heldLeases.length > 10_000) throw GatewayError.invalid("hello.held_leases", "at most 10000 entries");
    const held = h.heldLeases.map((f, i) => v.fence(f, `hello.held_leases[${i}]`, limits));
    v.maxBytes(h.sdk, "hello.sdk", 128);
    this.capacity = h.maxConcurrentTasks;

    const claimant = { sessionId: this.id, workerId: this.workerId, workerInstanceId: this.instanceId };
    // A lease is adopted only into a session of its execution's namespace.
    const adoptions = await adoptHeld(engine, held, claimant, options.leaseTtlMs,
      (fence, i) => this.deps.auth.requireExecutionIn(fence.executionId, `hello.held_leases[${i}].execution_id`, this.namespace));
    if (this._state !== "awaiting_hello") return; // closed while adopting
    for (const a of adoptions) {
      if (a.adopted) this.hold(a.fence, true, undefined);
    }
    this.transition("active");
    this.deps.registry.add(this);
    this.span = this.deps.telemetry.startSession(this, (name) => this.transport.header(name));
    this.send({
      case: "welcome",
      value: create(WelcomeSchema, {
        sessionId: this.id,
        gatewayId: options.gatewayId,
        leaseTtlMs: BigInt(options.leaseTtlMs),
        heartbeatIntervalMs: BigInt(options.heartbeatIntervalMs),
        keepaliveIntervalMs: BigInt(options.keepaliveIntervalMs),
        maxMessageBytes: options.maxMessageBytes,
        maxPayloadBytes: options.maxPayloadBytes,
        batching: true,
        partitions: create(PartitionConfigSchema, { executionPartitions: engine.partitions }),
        adoptions: adoptions.map((a) => a.result),
      }),
    });
    // After the Welcome, which always travels alone (the worker expects it first, unwrapped).
    if (h.batching) this.outbox = sessionOutbox((m) => this.transport.send(m), responseBatch, responseSize, options.maxMessageBytes);
    this.startKeepalive();
    this.deps.scheduler.addSession(this);
  }

  /** Renews every held lease (one FCALL per partition) and reports each outcome. Rounds never overlap. */
  private async heartbeat(): Promise<void> {
    if (this.heartbeatRunning) {
      this.heartbeatPending = true;
      return;
    }
    this.heartbeatRunning = true;
    try {
      do {
        this.heartbeatPending = false;
        const held = this.tasks.renewableFences(Date.now(), this.deps.options.leaseTtlMs);
        const results = held.length > 0 ? await this.deps.engine.renew(held, this.id, this.deps.options.leaseTtlMs) : [];
        let lost = 0;
        let renewed = 0;
        const leases: LeaseStatus[] = [];
        results.forEach((r, i) => {
          const leaseId = held[i]!.leaseId;
          if (r.renewed) renewed++;
          else {
            // A lease whose terminal operation is in flight (its own complete may just have
            // committed) or that is gone meanwhile is not reported lost: that answer decides.
            const t = this.tasks.get(leaseId);
            if (t === undefined || t.settlesInFlight > 0) return;
            if (this.dropTask(leaseId)) lost++;
          }
          leases.push(create(LeaseStatusSchema, {
            executionId: r.executionId, leaseId, renewed: r.renewed,
            leaseExpiresAtMs: BigInt(Math.max(0, r.leaseExpiresAtMs)), reason: r.reason ?? "",
          }));
        });
        const { metrics } = this.deps.telemetry;
        if (renewed > 0) metrics.leaseRenewals.add(renewed);
        if (renewed < results.length) metrics.leaseRenewalFailures.add(results.length - renewed);
        if (lost > 0) metrics.leasesLost.add(lost);
        this.send({ case: "heartbeatAck", value: create(HeartbeatAckSchema, { leases }) });
        if (lost > 0) {
          this.sendPushes();
          this.deps.scheduler.slotsFreed();
        }
      } while (this.heartbeatPending && this._state !== "closed");
    } catch (err) {
      // No ack: the worker counts a missed renewal. The leases stay valid until their TTL.
      this.deps.telemetry.metrics.leaseRenewalFailures.add(Math.max(1, this.tasks.size));
      this.log.warn("heartbeat renewal failed", { err: String(err) });
    } finally {
      this.heartbeatRunning = false;
    }
  }

  private async operate(requestId: string, body: OperationBody): Promise<void> {
    if (requestId === "" || Buffer.byteLength(requestId) > MAX_REQUEST_ID_BYTES) {
      this.operationError(requestId, GatewayError.invalid("request_id", `must be 1..${MAX_REQUEST_ID_BYTES} bytes`));
      return;
    }
    const op: WorkerOperation = OPERATIONS[body.case];
    const leaseId = body.value.fence?.leaseId ?? "";
    // The handler is done with a settling task: its slot is free now, so the next claim is
    // pipelined with this operation instead of waiting for it (one Redis round trip per cycle).
    // A suspend may keep the lease (already satisfied): its slot is freed by the answer instead.
    const settling = op.settlesOnArrival ? this.markSettling(leaseId) : undefined;
    const span = this.deps.telemetry.startOperation(op, body.value, this.span, this.tasks.get(leaseId));
    try {
      // A lease this session holds is of its namespace; any other fence is looked up (tokens
      // limited to some namespaces only: the hot path of a held lease has no await before the call).
      if (!this.caller.allNamespaces && !this.tasks.has(leaseId) && body.value.fence) {
        await this.deps.auth.requireExecutionIn(body.value.fence.executionId, `${op.field}.fence.execution_id`, this.namespace);
      }
      const value = await runOperation(this.deps.ops, body, op.field);
      const response = { case: body.case, value } as SessionResponse["body"];
      this.deps.telemetry.endOperation(span, op, response.value);
      // The answer first: a push waiting for this slot must follow it (sendPushes).
      this.send(response, requestId);
      if (op.settles && !op.keepsLease(value)) this.settle(leaseId);
    } catch (err) {
      const ge = GatewayError.from(err);
      this.deps.telemetry.endOperation(span, op, undefined, ge);
      if (ge.reason === Reason.INTERNAL) this.log.error("operation failed", { op: body.case, err: String(err) });
      this.operationError(requestId, ge);
      if (op.settles && DEFINITIVE.has(ge.reason)) this.settle(leaseId);
      else if (settling) this.tasks.settleFailed(settling, Date.now());
    }
    if (op.settles) this.sendPushes();
  }

  private settle(leaseId: string): void {
    if (this.dropTask(leaseId)) this.deps.scheduler.slotsFreed();
  }

  /** Holds a pushed (`pushed` = its Task) or adopted (undefined: no trace context known) lease. */
  private hold(fence: LeaseFence, acked: boolean, pushed: Task | undefined): void {
    this.tasks.hold(fence, acked, pushed);
    this.deps.registry.holdLease(fence.leaseId, this);
  }

  /** A terminal operation for the task arrived; returns the held task (undefined when not held). */
  private markSettling(leaseId: string): HeldTask | undefined {
    const marked = this.tasks.markSettling(leaseId);
    if (marked?.freed) this.deps.scheduler.slotsFreed();
    return marked?.held;
  }

  /** Forgets a task; true when it was held. */
  private dropTask(leaseId: string): boolean {
    if (this.tasks.drop(leaseId) === undefined) return false;
    this.deps.registry.dropLease(leaseId, this);
    if (this.tasks.size === 0) this.onSettled?.();
    return true;
  }

  private operationError(requestId: string, err: GatewayError): void {
    this.send({ case: "error", value: create(OperationErrorSchema, { code: statusOf(err), detail: detailOf(err) }) }, requestId);
  }

  /** Sends one message: at once, or with the other messages of this turn when the worker batches. */
  private send(body: SessionResponse["body"], requestId = ""): void {
    if (this._state === "closed") return;
    this.lastSentAtMs = Date.now();
    const message = create(SessionResponseSchema, { requestId, body });
    if (this.outbox) this.outbox.add(message);
    else this.transport.send(message);
  }

  /** Application-level keepalive: Ping when idle; a worker silent for too long is considered dead. */
  private startKeepalive(): void {
    const { keepaliveIntervalMs, heartbeatIntervalMs } = this.deps.options;
    const silenceLimitMs = Math.max(3 * heartbeatIntervalMs, 2 * keepaliveIntervalMs);
    const check = (): void => {
      const now = Date.now();
      if (now - this.lastReceivedAtMs > silenceLimitMs) {
        this.fatal(new GatewayError(Reason.UNAVAILABLE, `no message from the worker for ${silenceLimitMs} ms`));
        return;
      }
      if (now - this.lastSentAtMs >= keepaliveIntervalMs) this.send({ case: "ping", value: create(PingSchema, { nonce: ++this.nonce }) });
    };
    const iv = setInterval(check, Math.max(50, Math.floor(keepaliveIntervalMs / 3)));
    iv.unref();
    this.lifetime.signal.addEventListener("abort", () => clearInterval(iv), { once: true });
  }

  /** Keeps `work` in {@link running} until it settles. */
  private track(work: Promise<void>): void {
    this.running.add(work);
    void work.finally(() => this.running.delete(work));
  }

  private timer(ms: number, fn: () => void): void {
    const t = setTimeout(fn, ms);
    t.unref();
    this.lifetime.signal.addEventListener("abort", () => clearTimeout(t), { once: true });
  }

  private transition(to: SessionState): void {
    if (!TRANSITIONS[this._state].includes(to)) throw new Error(`illegal session transition ${this._state} -> ${to}`);
    this._state = to;
  }

  /**
   * Ends the stream with an error status, then closes — after the operations already running have
   * sent their answers (bounded by ENDING_ANSWER_WAIT_MS): nothing more is read meanwhile, and the
   * stream always ends with a status.
   */
  private fatal(err: GatewayError): void {
    if (this._state === "closed" || this.ending) return;
    this.ending = true;
    const finish = (): void => {
      if (this._state === "closed") return;
      this.outbox?.flush();
      this.transport.end(err);
      this.close(err.message);
    };
    if (this.running.size === 0) return finish();
    const bound = new Promise<void>((resolve) => this.timer(ENDING_ANSWER_WAIT_MS, resolve));
    void Promise.race([Promise.allSettled([...this.running]), bound]).then(finish);
  }

  /** Closes the session: unacknowledged tasks go back to the queue at once; acknowledged ones keep their lease for re-adoption. */
  close(why: string): void {
    if (this._state === "closed") return;
    const wasActive = this._state !== "awaiting_hello";
    this.transition("closed");
    this.lifetime.abort();
    if (wasActive) {
      this.deps.scheduler.removeSession(this);
      this.deps.registry.remove(this);
    }
    for (const held of this.tasks.clear()) {
      this.deps.registry.dropLease(held.fence.leaseId, this);
      if (!held.acked) {
        this.deps.engine.release(held.fence).catch((err: unknown) => this.log.warn("release of unacknowledged task failed", { err: String(err) }));
      }
    }
    this.deferred.length = 0;
    this.deferredTasks = 0;
    this.onSettled?.();
    if (!this.transport.signal.aborted) this.transport.end();
    this.span?.setAttribute(ATTR_SESSION_CLOSE_REASON, why);
    this.span?.end();
    this.log.info("session closed", { why, worker: this.workerId, instance: this.instanceId });
  }
}
