import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { backoffDelayMs } from "./backoff.js";
import { TASK_CONTROL, type ClaimedTask } from "./claimed-task.js";
import { ErrorCode, FlowFabricError, LocalReason } from "./errors.js";
import { CreditSchema, HeartbeatSchema, type SessionResponse, type Welcome } from "./gen/flowfabric/v1/worker_pb.js";
import { callMetadata, createGrpcClient } from "./grpc-call.js";
import { OperationRouter } from "./operation-router.js";
import { compileWorkerOptions, type CompiledWorkerOptions, type WorkerOptions } from "./options.js";
import { Slots } from "./task-queue.js";
import { TaskRegistry } from "./task-registry.js";
import { runTask, type RunOptions, type TaskHandler } from "./task-runner.js";
import { TaskTelemetry } from "./telemetry/task-tracing.js";
import { childController, every, sleep } from "./timers.js";
import type { WorkerEvent, WorkerState } from "./worker-events.js";
import { helloFor, WorkerSession, type SessionHandlers } from "./worker-session.js";

/** Legal state transitions (see {@link WorkerState}). */
const TRANSITIONS: Readonly<Record<WorkerState, readonly WorkerState[]>> = {
  connecting: ["active", "closed"],
  active: ["draining", "reconnecting", "closing", "closed"],
  draining: ["active", "reconnecting", "closing", "closed"],
  reconnecting: ["active", "closing", "closed"],
  closing: ["closed"],
  closed: [],
};

/** Hello refusals that retrying cannot fix; the first connect rejects with them at once. */
const FATAL_ON_CONNECT: ReadonlySet<string> = new Set([ErrorCode.INVALID_ARGUMENT, ErrorCode.UNAUTHENTICATED, ErrorCode.PERMISSION_DENIED, ErrorCode.UNIMPLEMENTED]);

/** Default heartbeat period until a Welcome says otherwise, in milliseconds. */
const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;

/** Options of {@link FlowFabricWorker.close}. */
export interface CloseOptions {
  /** How long running tasks may take to finish before their signals abort, in milliseconds. Default 30000. */
  readonly graceMs?: number;
}

/**
 * A FlowFabric worker: holds one Session stream to a gateway, receives pushed tasks and runs
 * them through {@link run} (or hands them out through {@link tasks}). Reconnects on its own,
 * re-adopting the leases of running tasks; follows gateway drains to a new session.
 */
export class FlowFabricWorker {
  /** The compiled options. */
  readonly options: CompiledWorkerOptions;
  #state: WorkerState = "connecting";
  readonly #client: grpc.Client;
  readonly #timers = new AbortController();
  readonly #reconnectTimers = childController(this.#timers.signal);
  #heartbeatTimers: AbortController | undefined;
  readonly #router = new OperationRouter();
  readonly #tasks = new TaskRegistry(this.#router, (event) => this.#emit(event), {
    client: () => this.#client,
    metadata: () => callMetadata(this.options.authToken),
    callTimeoutMs: 30_000,
  });
  readonly #sessions = new Set<WorkerSession>();
  readonly #welcomeWaiters = new Map<WorkerSession, (error: FlowFabricError | undefined) => void>();
  #opSession: WorkerSession | undefined;
  #connecting = false;
  #consumer: "run" | "tasks" | undefined;
  #closing: Promise<void> | undefined;
  readonly #closed: Promise<void>;
  #resolveClosed!: (error: FlowFabricError | undefined) => void;
  readonly #telemetry: TaskTelemetry;

  private constructor(options: CompiledWorkerOptions) {
    this.options = options;
    this.#telemetry = new TaskTelemetry(options.workerId, options.traceMode, options.tracerProvider, options.meterProvider);
    this.#client = createGrpcClient(options.address, options.grpc);
    this.#closed = new Promise<void>((resolve, reject) => {
      this.#resolveClosed = (error) => (error === undefined ? resolve() : reject(error));
    });
    this.#closed.catch(() => undefined);
  }

  /**
   * Connects and resolves once the first Welcome arrives. Rejects with a {@link FlowFabricError}:
   * the gateway's refusal of the Hello (e.g. INVALID_ARGUMENT with `field` "hello.lanes"), or
   * UNAVAILABLE/NOT_CONNECTED when no session was welcomed within `connectTimeoutMs`.
   */
  static async connect(options: WorkerOptions): Promise<FlowFabricWorker> {
    const worker = new FlowFabricWorker(compileWorkerOptions(options));
    try {
      await worker.#connectLoop(true);
    } catch (error) {
      worker.#shutdownNow(undefined);
      throw error;
    }
    return worker;
  }

  /** Current connection state. */
  get state(): WorkerState {
    return this.#state;
  }

  /** Tasks this worker holds (running or settling). */
  get activeTaskCount(): number {
    return this.#tasks.size;
  }

  /**
   * Runs `handler` for every pushed task, at most `maxConcurrentTasks` at once (see
   * {@link TaskHandler} for how its outcome settles the task). Resolves when the worker closes;
   * rejects if the worker gave up reconnecting. Cannot be combined with {@link tasks}.
   * Each handler runs inside a `flowfabric.task` span (see {@link WorkerOptions.traceMode}) when
   * a tracer provider is in place, and its duration is recorded in `flowfabric.task.handler.duration`.
   */
  async run(handler: TaskHandler, options: RunOptions = {}): Promise<void> {
    this.#claimConsumer("run");
    const slots = new Slots(this.options.maxConcurrentTasks);
    for (;;) {
      await slots.acquire();
      const task = await this.#tasks.next();
      if (task === undefined) break;
      void runTask(task, handler, (error) => {
        this.#emit({ type: "settle_failed", executionId: task.executionId, error });
        options.onSettleError?.(error, task);
      }, this.#telemetry).finally(() => slots.release());
    }
    await this.#closed;
  }

  /**
   * The pushed tasks as an async iterable, ending when the worker starts closing. The caller
   * must settle every task. Cannot be combined with {@link run}.
   */
  tasks(): AsyncIterable<ClaimedTask> {
    this.#claimConsumer("tasks");
    const next = (): Promise<IteratorResult<ClaimedTask, undefined>> =>
      this.#tasks.next().then((task) => (task === undefined ? { done: true, value: undefined } : { done: false, value: task }));
    return { [Symbol.asyncIterator]: () => ({ next }) };
  }

  /**
   * Stops taking work (`credit 0`), releases tasks not yet handed out, waits up to `graceMs`
   * for running tasks to settle, then aborts the remaining tasks' signals (kind "shutdown"),
   * closes the stream and resolves. Idempotent.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#close(options.graceMs ?? 30_000);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    if (this.#state === "closed") return;
    this.#transition("closing");
    this.#opSession?.send({ case: "credit", value: create(CreditSchema, { maxConcurrentTasks: 0 }) });
    this.#tasks.stopIntake();
    if (this.#tasks.size > 0) await Promise.race([this.#tasks.whenIdle(), sleep(graceMs, this.#timers.signal)]);
    this.#tasks.shutdown("the worker is shutting down");
    this.#reconnectTimers.abort();
    await Promise.all([...this.#sessions].map((session) => session.close()));
    this.#shutdownNow(undefined);
  }

  #shutdownNow(error: FlowFabricError | undefined): void {
    if (this.#state === "closed") return;
    this.#transition("closed");
    this.#tasks.stopIntake();
    this.#tasks.shutdown(error?.message ?? "the worker closed");
    for (const session of this.#sessions) session.abort(LocalReason.CLOSED, "the worker closed");
    this.#router.close(error ?? FlowFabricError.local(ErrorCode.CANCELLED, LocalReason.CLOSED, "the worker is closed"));
    this.#timers.abort();
    this.#client.close();
    this.#resolveClosed(error);
  }

  #claimConsumer(kind: "run" | "tasks"): void {
    if (this.#consumer !== undefined) {
      throw FlowFabricError.local(ErrorCode.FAILED_PRECONDITION, LocalReason.CONSUMER_EXISTS, `${this.#consumer}() was already called on this worker`);
    }
    this.#consumer = kind;
  }

  // ---- connection ------------------------------------------------------------------------

  async #connectLoop(first: boolean): Promise<void> {
    if (this.#connecting) return;
    this.#connecting = true;
    const deadline = first ? Date.now() + this.options.connectTimeoutMs : Infinity;
    const { maxAttempts } = this.options.reconnect;
    try {
      for (let attempt = 1; ; attempt++) {
        if (this.#state === "closed" || this.#reconnectTimers.signal.aborted) return;
        const error = await this.#openSession(Math.min(deadline, Date.now() + this.options.connectTimeoutMs));
        if (error === undefined) return;
        if (first && FATAL_ON_CONNECT.has(error.code)) throw error;
        if (attempt >= maxAttempts || Date.now() >= deadline) {
          const gaveUp = new FlowFabricError({ code: ErrorCode.UNAVAILABLE, reason: LocalReason.NOT_CONNECTED, message: `no session after ${attempt} attempt(s): ${error.message}`, cause: error });
          if (first) throw gaveUp;
          this.#shutdownNow(gaveUp);
          return;
        }
        const delayMs = Math.min(backoffDelayMs(attempt - 1, this.options.reconnect), Math.max(0, deadline - Date.now()));
        this.#emit({ type: "reconnect_scheduled", attempt, delayMs, error });
        await sleep(delayMs, this.#reconnectTimers.signal);
      }
    } finally {
      this.#connecting = false;
    }
  }

  /**
   * Opens a session offering the running tasks' leases; resolves undefined once welcomed, else
   * the error (UNAVAILABLE/NOT_CONNECTED when no Welcome came by `welcomeDeadline`, Unix ms).
   */
  #openSession(welcomeDeadline: number): Promise<FlowFabricError | undefined> {
    const held = this.#tasks.held();
    const hello = helloFor(this.options, held.map((task) => task[TASK_CONTROL].fence));
    const metadata = callMetadata(this.options.authToken);
    return new Promise((resolve) => {
      const session = new WorkerSession(this.#client, hello, metadata, held, this.#handlers, this.#timers.signal);
      this.#sessions.add(session);
      const timer = setTimeout(() => session.abort(LocalReason.NOT_CONNECTED, `no Welcome from ${this.options.address} in time`, ErrorCode.UNAVAILABLE), Math.max(0, welcomeDeadline - Date.now()));
      this.#welcomeWaiters.set(session, (error) => {
        clearTimeout(timer);
        resolve(error);
      });
    });
  }

  readonly #handlers: SessionHandlers = {
    welcome: (session, welcome) => this.#onWelcome(session, welcome),
    message: (session, message) => this.#onMessage(session, message),
    ended: (session, error) => this.#onEnded(session, error),
  };

  #onWelcome(session: WorkerSession, welcome: Welcome): void {
    if (this.#state === "closed") {
      void session.close();
      return;
    }
    const adopted = this.#tasks.adopt(session.held, welcome.adoptions);
    this.#opSession = session;
    this.#router.setTarget(session);
    if (this.#state === "closing") session.send({ case: "credit", value: create(CreditSchema, { maxConcurrentTasks: 0 }) });
    else this.#transition("active");
    this.#startHeartbeats(Number(welcome.heartbeatIntervalMs) || DEFAULT_HEARTBEAT_INTERVAL_MS);
    this.#emit({ type: "session_started", sessionId: welcome.sessionId, gatewayId: welcome.gatewayId, adopted, notAdopted: session.held.length - adopted });
    this.#takeWaiter(session)?.(undefined);
  }

  #onEnded(session: WorkerSession, error: FlowFabricError): void {
    this.#sessions.delete(session);
    this.#tasks.forgetSession(session);
    this.#router.sessionEnded(session);
    this.#emit({ type: "session_ended", sessionId: session.welcome?.sessionId, error });
    const waiter = this.#takeWaiter(session);
    if (waiter !== undefined) {
      waiter(error);
      return;
    }
    if (session !== this.#opSession) return; // a drained session finishing
    this.#opSession = undefined;
    if (this.#state === "active" || this.#state === "draining") this.#transition("reconnecting");
    if (this.#state === "reconnecting" || (this.#state === "closing" && this.#tasks.size > 0)) void this.#connectLoop(false);
  }

  #takeWaiter(session: WorkerSession): ((error: FlowFabricError | undefined) => void) | undefined {
    const waiter = this.#welcomeWaiters.get(session);
    this.#welcomeWaiters.delete(session);
    return waiter;
  }

  /**
   * Heartbeats renew the leases of held tasks; a worker holding none sends none (its session's
   * keepalive pings prove it alive), so an idle worker costs its gateway one ping and one pong
   * per keepalive interval instead of a heartbeat round per heartbeat interval.
   */
  #startHeartbeats(intervalMs: number): void {
    this.#heartbeatTimers?.abort();
    this.#heartbeatTimers = childController(this.#timers.signal);
    every(intervalMs, this.#heartbeatTimers.signal, () => {
      this.#tasks.tick();
      if (this.#tasks.size === 0) return;
      const session = this.#opSession;
      session?.send({ case: "heartbeat", value: create(HeartbeatSchema, { sentAtMs: BigInt(Date.now()) }) });
    });
  }

  // ---- messages ----------------------------------------------------------------------------

  #onMessage(session: WorkerSession, message: SessionResponse): void {
    if (this.#router.answer(message)) return;
    const body = message.body;
    switch (body.case) {
      case "tasks":
        // While closing, pushes stay unacknowledged: the gateway requeues them when the stream ends.
        if (this.#state !== "closing" && this.#state !== "closed") this.#tasks.receive(session, body.value);
        break;
      case "heartbeatAck":
        this.#tasks.heartbeatAck(body.value);
        break;
      case "leaseLost":
        this.#tasks.leaseLost(body.value);
        break;
      case "cancelRequested":
        this.#tasks.cancelRequested(body.value);
        break;
      case "drain":
        this.#emit({ type: "drain", reason: body.value.reason, graceMs: Number(body.value.graceMs) });
        if (session !== this.#opSession) break;
        if (this.#state === "active") this.#transition("draining");
        void this.#connectLoop(false);
        break;
      default:
        break; // welcome twice, unsolicited answers: ignored
    }
  }

  #transition(to: WorkerState): void {
    const from = this.#state;
    if (from === to) return;
    if (!TRANSITIONS[from].includes(to)) throw new Error(`FlowFabricWorker: illegal transition ${from} -> ${to}`);
    this.#state = to;
    this.#emit({ type: "state", from, to });
  }

  #emit(event: WorkerEvent): void {
    try {
      this.options.onEvent(event);
    } catch {
      // observers must not break the worker
    }
  }
}
