import { randomBytes } from "node:crypto";
import { credentials as grpcCredentials, type ChannelCredentials } from "@grpc/grpc-js";
import type { MeterProvider, TracerProvider } from "@opentelemetry/api";
import { ErrorCode, FlowFabricError } from "./errors.js";
import type { TraceMode } from "./telemetry/task-tracing.js";
import type { WorkerEvent } from "./worker-events.js";

/** Default gateway address. */
export const DEFAULT_ADDRESS = "127.0.0.1:50051";
/** Value of `Hello.sdk`. */
export const SDK_NAME = "flowfabric-sdk-ts/0.1.0";

/** gRPC transport settings shared by the worker and the client. */
export interface GrpcOptions {
  /** HTTP/2 PING interval, in milliseconds. Default 10000 (protocol rule 11). */
  readonly keepaliveTimeMs?: number;
  /** How long to wait for a PING answer before closing the connection, in milliseconds. Default 5000. */
  readonly keepaliveTimeoutMs?: number;
  /** Largest message the SDK accepts, in bytes. Default 64 MiB. */
  readonly maxReceiveMessageBytes?: number;
  /** Channel credentials; default insecure (plaintext HTTP/2). */
  readonly credentials?: ChannelCredentials;
}

/**
 * TLS to the gateway (its `FLOWFABRIC_TLS_CERT`), and optionally a client certificate for a
 * gateway that requires one (`FLOWFABRIC_TLS_CLIENT_CA`, mTLS). PEM text or bytes, as read from
 * the files. `tls: {}` uses the system's root certificates.
 */
export interface TlsOptions {
  /** CA certificate(s) that signed the gateway's certificate; default the system's roots. */
  readonly rootCerts?: string | Uint8Array;
  /** Client certificate chain for mTLS; goes with {@link privateKey}. */
  readonly certChain?: string | Uint8Array;
  /** Private key of {@link certChain}. */
  readonly privateKey?: string | Uint8Array;
}

/** Reconnect backoff settings (protocol rule 13). */
export interface ReconnectOptions {
  /** Cap of the first delay, in milliseconds. Default 100. */
  readonly initialDelayMs?: number;
  /** Largest delay cap, in milliseconds. Default 5000. */
  readonly maxDelayMs?: number;
  /** Failed attempts in a row after which the worker gives up and closes. Default Infinity. */
  readonly maxAttempts?: number;
}

/** Options of {@link FlowFabricWorker.connect}. */
export interface WorkerOptions {
  /** Gateway "host:port". Default "127.0.0.1:50051". */
  readonly address?: string;
  /** Stable worker identity, 1..128 chars of [A-Za-z0-9._:-]. */
  readonly workerId: string;
  /** Identity of this process; default `workerId` plus a random suffix. */
  readonly instanceId?: string;
  /** Namespace served. Default "default". */
  readonly namespace?: string;
  /** Lanes to take work from; at least one. */
  readonly lanes: readonly string[];
  /** Capabilities offered. Default none. */
  readonly capabilities?: readonly string[];
  /** Tasks run at once, 1..10000. Default 10. */
  readonly maxConcurrentTasks?: number;
  /** Reconnect backoff. */
  readonly reconnect?: ReconnectOptions;
  /** How long `connect()` keeps retrying for the first Welcome, in milliseconds. Default 10000. */
  readonly connectTimeoutMs?: number;
  /** Sent as `authorization: Bearer <token>` when set (docs/security.md). */
  readonly authToken?: string;
  /** TLS (and mTLS) to the gateway; default plaintext. Not together with `grpc.credentials`. */
  readonly tls?: TlsOptions;
  /** gRPC transport settings. */
  readonly grpc?: GrpcOptions;
  /** Observer of connection and lease events (for logs and metrics); must not throw. */
  readonly onEvent?: (event: WorkerEvent) => void;
  /**
   * How each task's `flowfabric.task` span joins the producer's trace: "child" (default; one
   * trace, producer -> dispatch -> task) or "link" (a new trace per task, linked to the dispatch
   * span). An execution's `traceMode` (tag `flowfabric.trace_mode`) overrides it.
   */
  readonly traceMode?: TraceMode;
  /** Tracer provider of task spans; default the global one (`@opentelemetry/api`). */
  readonly tracerProvider?: TracerProvider;
  /**
   * Meter provider of the handler-duration histogram; default the global one as registered when
   * the worker connects (register it before `connect()`).
   */
  readonly meterProvider?: MeterProvider;
}

/** Compiled gRPC settings: every default applied. */
export interface CompiledGrpcOptions {
  /** See {@link GrpcOptions.keepaliveTimeMs}. */
  readonly keepaliveTimeMs: number;
  /** See {@link GrpcOptions.keepaliveTimeoutMs}. */
  readonly keepaliveTimeoutMs: number;
  /** See {@link GrpcOptions.maxReceiveMessageBytes}. */
  readonly maxReceiveMessageBytes: number;
  /** See {@link GrpcOptions.credentials} (or built from `tls`); undefined means insecure. */
  readonly credentials: ChannelCredentials | undefined;
}

/** {@link WorkerOptions} with every default applied; frozen. */
export interface CompiledWorkerOptions {
  /** Gateway "host:port". */
  readonly address: string;
  /** Worker identity. */
  readonly workerId: string;
  /** Process identity. */
  readonly instanceId: string;
  /** Namespace. */
  readonly namespace: string;
  /** Lanes (at least one). */
  readonly lanes: readonly string[];
  /** Capabilities. */
  readonly capabilities: readonly string[];
  /** Tasks run at once. */
  readonly maxConcurrentTasks: number;
  /** Reconnect backoff. */
  readonly reconnect: { readonly initialDelayMs: number; readonly maxDelayMs: number; readonly maxAttempts: number };
  /** First-connect budget, in milliseconds. */
  readonly connectTimeoutMs: number;
  /** Bearer token, when set. */
  readonly authToken: string | undefined;
  /** gRPC settings. */
  readonly grpc: CompiledGrpcOptions;
  /** Event observer (a no-op by default). */
  readonly onEvent: (event: WorkerEvent) => void;
  /** Trace mode of task spans. */
  readonly traceMode: TraceMode;
  /** Tracer provider; undefined means the global one. */
  readonly tracerProvider: TracerProvider | undefined;
  /** Meter provider; undefined means the global one. */
  readonly meterProvider: MeterProvider | undefined;
}

/** Options of {@link FlowFabricClient.connect}. */
export interface ClientOptions {
  /** Gateway "host:port". Default "127.0.0.1:50051". */
  readonly address?: string;
  /** Namespace used when a spec names none. Default "default". */
  readonly namespace?: string;
  /** How long `connect()` waits for the channel to be ready, in milliseconds. Default 10000. */
  readonly connectTimeoutMs?: number;
  /** Deadline of each call, in milliseconds. Default 30000. */
  readonly callTimeoutMs?: number;
  /**
   * How long `createExecution`/`createExecutions` keep re-sending a create that went unanswered
   * (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED: the gateway or its store was away), with backoff,
   * in milliseconds; 0 turns the retries off. Default 60000, at most 300000. Safe: every create
   * carries an idempotency key (one the SDK generates when the spec has none).
   */
  readonly createRetryWindowMs?: number;
  /** Sent as `authorization: Bearer <token>` when set (docs/security.md). */
  readonly authToken?: string;
  /** TLS (and mTLS) to the gateway; default plaintext. Not together with `grpc.credentials`. */
  readonly tls?: TlsOptions;
  /** gRPC transport settings. */
  readonly grpc?: GrpcOptions;
}

/** {@link ClientOptions} with every default applied; frozen. */
export interface CompiledClientOptions {
  /** Gateway "host:port". */
  readonly address: string;
  /** Default namespace. */
  readonly namespace: string;
  /** Readiness budget, in milliseconds. */
  readonly connectTimeoutMs: number;
  /** Per-call deadline, in milliseconds. */
  readonly callTimeoutMs: number;
  /** Retry window of unanswered creates, in milliseconds (0: no retries). */
  readonly createRetryWindowMs: number;
  /** Bearer token, when set. */
  readonly authToken: string | undefined;
  /** gRPC settings. */
  readonly grpc: CompiledGrpcOptions;
}

/** Validates {@link WorkerOptions} and applies defaults. Throws INVALID_ARGUMENT naming the field. */
export function compileWorkerOptions(options: WorkerOptions): CompiledWorkerOptions {
  const workerId = requireText(options.workerId, "workerId");
  if (!Array.isArray(options.lanes) || options.lanes.length === 0) invalid("lanes", "at least one lane is required");
  options.lanes.forEach((lane, i) => requireText(lane, `lanes[${i}]`));
  const maxConcurrentTasks = integerIn(options.maxConcurrentTasks ?? 10, 1, 10_000, "maxConcurrentTasks");
  const initialDelayMs = positive(options.reconnect?.initialDelayMs ?? 100, "reconnect.initialDelayMs");
  const maxDelayMs = positive(options.reconnect?.maxDelayMs ?? 5000, "reconnect.maxDelayMs");
  if (maxDelayMs < initialDelayMs) invalid("reconnect.maxDelayMs", "must be >= reconnect.initialDelayMs");
  const maxAttempts = options.reconnect?.maxAttempts ?? Infinity;
  if (!(maxAttempts >= 1)) invalid("reconnect.maxAttempts", "must be >= 1");
  const traceMode = options.traceMode ?? "child";
  if (traceMode !== "child" && traceMode !== "link") invalid("traceMode", 'must be "child" or "link"');
  return Object.freeze({
    address: options.address ?? DEFAULT_ADDRESS,
    workerId,
    instanceId: options.instanceId ?? `${workerId.slice(0, 119)}-${randomBytes(4).toString("hex")}`,
    namespace: options.namespace ?? "default",
    lanes: Object.freeze([...options.lanes]),
    capabilities: Object.freeze([...(options.capabilities ?? [])]),
    maxConcurrentTasks,
    reconnect: Object.freeze({ initialDelayMs, maxDelayMs, maxAttempts }),
    connectTimeoutMs: positive(options.connectTimeoutMs ?? 10_000, "connectTimeoutMs"),
    authToken: authToken(options.authToken),
    grpc: compileGrpcOptions(options.grpc, options.tls),
    onEvent: options.onEvent ?? (() => undefined),
    traceMode,
    tracerProvider: options.tracerProvider,
    meterProvider: options.meterProvider,
  });
}

/** Validates {@link ClientOptions} and applies defaults. */
export function compileClientOptions(options: ClientOptions = {}): CompiledClientOptions {
  return Object.freeze({
    address: options.address ?? DEFAULT_ADDRESS,
    namespace: options.namespace ?? "default",
    connectTimeoutMs: positive(options.connectTimeoutMs ?? 10_000, "connectTimeoutMs"),
    callTimeoutMs: positive(options.callTimeoutMs ?? 30_000, "callTimeoutMs"),
    createRetryWindowMs: integerIn(options.createRetryWindowMs ?? 60_000, 0, 300_000, "createRetryWindowMs"),
    authToken: authToken(options.authToken),
    grpc: compileGrpcOptions(options.grpc, options.tls),
  });
}

function compileGrpcOptions(options: GrpcOptions | undefined, tls: TlsOptions | undefined): CompiledGrpcOptions {
  if (tls !== undefined && options?.credentials !== undefined) invalid("tls", "give either tls or grpc.credentials, not both");
  return Object.freeze({
    keepaliveTimeMs: positive(options?.keepaliveTimeMs ?? 10_000, "grpc.keepaliveTimeMs"),
    keepaliveTimeoutMs: positive(options?.keepaliveTimeoutMs ?? 5_000, "grpc.keepaliveTimeoutMs"),
    maxReceiveMessageBytes: positive(options?.maxReceiveMessageBytes ?? 64 * 1024 * 1024, "grpc.maxReceiveMessageBytes"),
    credentials: tls !== undefined ? tlsCredentials(tls) : options?.credentials,
  });
}

/** Channel credentials from {@link TlsOptions}. */
function tlsCredentials(tls: TlsOptions): ChannelCredentials {
  if (typeof tls !== "object" || tls === null) invalid("tls", "must be an object ({} for the system's root certificates)");
  if ((tls.certChain === undefined) !== (tls.privateKey === undefined)) invalid("tls.certChain", "goes with tls.privateKey: give both or neither");
  const pem = (value: string | Uint8Array | undefined, field: string): Buffer | null => {
    if (value === undefined) return null;
    if (typeof value !== "string" && !(value instanceof Uint8Array)) invalid(field, "must be PEM text or bytes");
    if (value.length === 0) invalid(field, "must not be empty");
    return Buffer.from(value);
  };
  return grpcCredentials.createSsl(pem(tls.rootCerts, "tls.rootCerts"), pem(tls.privateKey, "tls.privateKey"), pem(tls.certChain, "tls.certChain"));
}

/** A bearer token travels in a header: printable ASCII only (a newline read from a file is a common slip). */
function authToken(token: string | undefined): string | undefined {
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) invalid("authToken", "must be non-empty printable ASCII without spaces or newlines");
  return token;
}

function invalid(field: string, message: string): never {
  throw new FlowFabricError({ code: ErrorCode.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", field, message: `${field}: ${message}` });
}

function requireText(value: unknown, field: string): string {
  if (typeof value !== "string" || value === "") invalid(field, "must be a non-empty string");
  return value;
}

function positive(value: number, field: string): number {
  if (typeof value !== "number" || !(value > 0)) invalid(field, "must be a positive number");
  return value;
}

function integerIn(value: number, min: number, max: number, field: string): number {
  if (!Number.isInteger(value) || value < min || value > max) invalid(field, `must be an integer in [${min}, ${max}]`);
  return value;
}
