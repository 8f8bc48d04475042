import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { ClaimedTask } from "./claimed-task.js";
import { ErrorCode, FlowFabricError, LocalReason } from "./errors.js";
import type { Fence } from "./gen/flowfabric/v1/common_pb.js";
import {
  HelloSchema, PingSchema, PongSchema, SessionRequestSchema, WorkerService,
  type Hello, type SessionRequest, type SessionResponse, type Welcome,
} from "./gen/flowfabric/v1/worker_pb.js";
import { openBidiStream } from "./grpc-call.js";
import { SDK_NAME, type CompiledWorkerOptions } from "./options.js";
import { requestBatch, requestSize, sessionOutbox } from "./transport/session-batching.js";
import type { TurnBatcher } from "./transport/turn-batcher.js";
import { childController, every, sleep } from "./timers.js";

/** A session's own states: waiting for Welcome, welcomed, finished. */
export type SessionState = "opening" | "open" | "ended";

/** Idle periods without any inbound message after which a welcomed session is declared dead. */
export const SILENT_KEEPALIVE_PERIODS = 3;
/** How long `close()` waits for the gateway's status after half-closing, in milliseconds. */
export const CLOSE_WAIT_MS = 1000;

/** Callbacks of a {@link WorkerSession}; the worker implements them. */
export interface SessionHandlers {
  /** The first message arrived and was a Welcome. */
  welcome(session: WorkerSession, welcome: Welcome): void;
  /** Any later message except pings (answered here) and pongs. */
  message(session: WorkerSession, message: SessionResponse): void;
  /** The stream ended; called exactly once, also for a stream that never got its Welcome. */
  ended(session: WorkerSession, error: FlowFabricError): void;
}

/**
 * One `WorkerService.Session` stream: sends Hello, waits for Welcome, answers pings, pings after
 * `keepalive_interval_ms` of silence, and reports its end once. It knows nothing of tasks except
 * the list it offered for adoption (`held`, in `hello.held_leases` order).
 */
export class WorkerSession {
  #state: SessionState = "opening";
  #welcome: Welcome | undefined;
  #lastSentAt = Date.now();
  #lastReceivedAt = Date.now();
  #nonce = 0n;
  readonly #timers: AbortController;
  readonly #call: grpc.ClientDuplexStream<SessionRequest, SessionResponse>;
  readonly #statusSeen: Promise<void>;
  /** Set once the Welcome says the gateway takes batches: sends then go through it. */
  #outbox: TurnBatcher<SessionRequest> | undefined;
  /** Our side is half-closed (close()): nothing more is written. */
  #halfClosed = false;

  /** Opens the stream and sends `hello`. `held` are the tasks whose fences `hello.held_leases` carries. */
  constructor(
    client: grpc.Client,
    hello: Hello,
    metadata: grpc.Metadata,
    readonly held: readonly ClaimedTask[],
    private readonly handlers: SessionHandlers,
    parentSignal: AbortSignal,
  ) {
    this.#timers = childController(parentSignal);
    this.#call = openBidiStream(client, WorkerService.method.session, metadata);
    this.#call.on("error", () => undefined); // the outcome is read from "status"
    this.#statusSeen = new Promise((resolve) => {
      this.#call.on("status", (status: grpc.StatusObject) => {
        resolve();
        this.#finish(statusError(status));
      });
    });
    this.#call.on("data", (message: SessionResponse) => this.#receive(message));
    this.send({ case: "hello", value: hello });
  }

  /** Current state. */
  get state(): SessionState {
    return this.#state;
  }

  /** The Welcome, once received. */
  get welcome(): Welcome | undefined {
    return this.#welcome;
  }

  /**
   * Writes one message (with the others of this turn in one batch when the gateway takes
   * batches); returns false (and writes nothing) once the session has ended.
   */
  send(body: SessionRequest["body"], requestId = ""): boolean {
    if (this.#state === "ended" || this.#halfClosed) return false;
    this.#lastSentAt = Date.now();
    const message = create(SessionRequestSchema, { requestId, body });
    if (this.#outbox) this.#outbox.add(message);
    else this.#write(message);
    return true;
  }

  #write(message: SessionRequest): void {
    if (this.#state !== "ended") this.#call.write(message);
  }

  /** Half-closes the stream, waits briefly for the gateway's status, then cancels. */
  async close(): Promise<void> {
    if (this.#state === "ended") return;
    this.#outbox?.flush();
    this.#halfClosed = true;
    this.#call.end();
    const settled = await Promise.race([this.#statusSeen.then(() => true), sleep(CLOSE_WAIT_MS, this.#timers.signal)]);
    if (settled !== true || this.state !== "ended") this.abort(LocalReason.CLOSED, "session closed by the worker");
  }

  /** Ends the stream at once (reported to `ended` with the given reason). */
  abort(reason: string, message: string, code: ErrorCode = ErrorCode.CANCELLED): void {
    if (this.#state === "ended") return;
    this.#finish(new FlowFabricError({ code, reason, message }));
    this.#call.cancel();
  }

  #receive(message: SessionResponse): void {
    if (this.#state === "ended") return;
    this.#lastReceivedAt = Date.now();
    const body = message.body;
    if (this.#state === "opening") {
      if (body.case !== "welcome") {
        this.abort(LocalReason.PROTOCOL_VIOLATION, `expected welcome, got ${body.case ?? "nothing"}`, ErrorCode.INTERNAL);
        return;
      }
      this.#state = "open";
      this.#welcome = body.value;
      if (body.value.batching) {
        this.#outbox = sessionOutbox((m) => this.#write(m), requestBatch, requestSize, body.value.maxMessageBytes || 4 * 1024 * 1024);
      }
      this.#startKeepalive(Number(body.value.keepaliveIntervalMs) || 15_000);
      this.handlers.welcome(this, body.value);
      return;
    }
    if (body.case === "batch") {
      for (const inner of body.value.responses) {
        if (inner.body.case === "welcome" || inner.body.case === "batch") {
          this.abort(LocalReason.PROTOCOL_VIOLATION, `a batch may not contain a ${inner.body.case}`, ErrorCode.INTERNAL);
          return;
        }
        this.#receive(inner);
        if (this.state === "ended") return; // a message of the batch ended the session
      }
    } else if (body.case === "ping") {
      this.send({ case: "pong", value: create(PongSchema, { nonce: body.value.nonce }) });
    } else if (body.case !== "pong") {
      this.handlers.message(this, message);
    }
  }

  #startKeepalive(intervalMs: number): void {
    every(Math.max(1, Math.floor(intervalMs / 4)), this.#timers.signal, () => {
      const now = Date.now();
      if (now - this.#lastReceivedAt > SILENT_KEEPALIVE_PERIODS * intervalMs) {
        this.abort("KEEPALIVE_TIMEOUT", `no message from the gateway for ${now - this.#lastReceivedAt} ms`, ErrorCode.UNAVAILABLE);
      } else if (now - this.#lastSentAt >= intervalMs) {
        this.#nonce += 1n;
        this.send({ case: "ping", value: create(PingSchema, { nonce: this.#nonce }) });
      }
    });
  }

  #finish(error: FlowFabricError): void {
    if (this.#state === "ended") return;
    this.#state = "ended";
    this.#timers.abort();
    this.handlers.ended(this, error);
  }
}

/** The Hello a worker with `options` sends, offering `heldLeases` for re-adoption. */
export function helloFor(options: CompiledWorkerOptions, heldLeases: readonly Fence[]): Hello {
  return create(HelloSchema, {
    workerId: options.workerId,
    instanceId: options.instanceId,
    namespace: options.namespace,
    lanes: [...options.lanes],
    capabilities: [...options.capabilities],
    maxConcurrentTasks: options.maxConcurrentTasks,
    heldLeases: [...heldLeases],
    sdk: SDK_NAME,
    batching: true,
  });
}

function statusError(status: grpc.StatusObject): FlowFabricError {
  if (status.code === grpc.status.OK) {
    return new FlowFabricError({ code: ErrorCode.UNAVAILABLE, reason: "STREAM_ENDED", message: "the gateway ended the session" });
  }
  const error = Object.assign(new Error(`${status.code} ${status.details}`), { code: status.code, details: status.details, metadata: status.metadata });
  return FlowFabricError.fromServiceError(error);
}
