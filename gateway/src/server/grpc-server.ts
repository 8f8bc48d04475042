import * as grpc from "@grpc/grpc-js";
import {
  AdminService, DETAIL_TRAILER, detailTrailerBytes, encodeStatusDetails, errorTrailers, ExecutionService, grpcServiceDefinition as strictDefinition,
  OPERATION_LIST, type SessionRequest, type SessionResponse, SignalService, STATUS_DETAILS_TRAILER, StreamService, type TailStreamRequest,
  type TailStreamResponse, WorkerService,
} from "@flowfabric/sdk/wire";
import { GatewayError } from "../errors.js";
import { clientKey, PerKeyLimit } from "./per-key-limit.js";
import { createLogger, type Logger } from "../logger.js";
import type { HeaderGetter } from "../auth/authorizer.js";
import { callContext, unaryCall, type CallContext } from "../rpc/call-context.js";
import { detailOf, statusOf } from "../rpc/error-table.js";
import { unaryMirror } from "../rpc/task-operations.js";
import type { SessionTransport } from "../sessions/session-transport.js";
import type { TailSink } from "../streams/tail-session.js";
import type { Services } from "./services.js";
import type { TlsMaterial } from "./tls.js";

/**
 * The gRPC listener (HTTP/2 cleartext): grpc-js, chosen for the worker hot path by measurement
 * (DESIGN §11: ~4x the bidi throughput of connect-node with many streams). Serves the Session
 * stream and every unary service. Dead peers are found by HTTP/2 keepalive pings.
 */
export interface GrpcListener {
  readonly port: number;
  /** Waits for calls to end; then forces. */
  close(graceMs: number): Promise<void>;
}

export interface GrpcListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxMessageBytes: number;
  readonly http2PingIntervalMs: number;
  readonly http2PingTimeoutMs: number;
  /** TLS (and mTLS with a client CA); cleartext HTTP/2 when absent. */
  readonly tls?: TlsMaterial | undefined;
  readonly maxSessionsPerConnection: number;
}

/** What the lenient deserializer hands over for bytes that are no message of the method's type. */
class Undecodable {
  constructor(readonly error: GatewayError) {}
}

/**
 * The generated service definition, with request decoding that never throws: grpc-js would answer
 * an undecodable message with a bare INTERNAL (and, on the Session, cut the stream off from the
 * operations still being answered). Here it arrives as an {@link Undecodable} the handler refuses
 * with INVALID_ARGUMENT naming `message`, in order with the messages before it.
 */
function grpcServiceDefinition(service: Parameters<typeof strictDefinition>[0]): grpc.ServiceDefinition {
  const def = strictDefinition(service);
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(def)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          return new Undecodable(GatewayError.invalid("message", `is not a valid ${method.path.split("/")[2] ?? ""} request message (${why.slice(0, 200)})`));
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

export async function startGrpcListener(opts: GrpcListenerOptions, services: Services, log: Logger): Promise<GrpcListener> {
  const server = new grpc.Server({
    "grpc.keepalive_time_ms": opts.http2PingIntervalMs,
    "grpc.keepalive_timeout_ms": opts.http2PingTimeoutMs,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.max_receive_message_length": opts.maxMessageBytes,
    "grpc.max_send_message_length": opts.maxMessageBytes,
  });
  const unary = <Req, Res>(fn: (req: Req, ctx: CallContext) => Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      const request: unknown = call.request;
      if (request instanceof Undecodable) return callback(serviceError(request.error, log));
      unaryCall(services, call.getPath(), call.request, metadataGetter(call.metadata), fn).then(
        (res) => callback(null, res),
        (err: unknown) => callback(serviceError(err, log)),
      );
    };
  const { exec, ops, admin, streams, signals } = services;
  const sessionsPerConnection = new PerKeyLimit("session", "max_sessions_per_connection", opts.maxSessionsPerConnection);
  const worker: grpc.UntypedServiceImplementation = {
    session: (call: grpc.ServerDuplexStream<SessionRequest, SessionResponse>) => {
      // The peer address names the HTTP/2 connection (its client port differs per connection).
      const release = sessionsPerConnection.acquire(call.getPeer());
      const transport = sessionTransport(call);
      if (release instanceof GatewayError) return transport.end(release);
      transport.signal.addEventListener("abort", release, { once: true });
      services.openSession(transport);
    },
  };
  for (const op of OPERATION_LIST) worker[op.method.localName] = unary(unaryMirror(ops, op));
  server.addService(grpcServiceDefinition(WorkerService), worker);
  server.addService(grpcServiceDefinition(StreamService), {
    readStream: unary(streams.readStream.bind(streams)),
    tailStream: (call: grpc.ServerWritableStream<TailStreamRequest, TailStreamResponse>) => {
      const sink = tailSink(call, log);
      const request: unknown = call.request;
      if (request instanceof Undecodable) return sink.end(request.error);
      const auth = call.metadata.get("authorization")[0];
      const client = clientKey(typeof auth === "string" ? auth : undefined, call.getPeer());
      callContext(services.auth, call.getPath(), call.request, metadataGetter(call.metadata))
        .then(() => streams.tailStream(call.request, sink, client))
        .catch((err: unknown) => sink.end(GatewayError.from(err)));
    },
  });
  server.addService(grpcServiceDefinition(ExecutionService), {
    createExecution: unary(exec.createExecution.bind(exec)),
    createExecutions: unary(exec.createExecutions.bind(exec)),
    describeExecution: unary(exec.describeExecution.bind(exec)),
    getResult: unary(exec.getResult.bind(exec)),
    cancelExecution: unary(exec.cancelExecution.bind(exec)),
    resumeExecution: unary(exec.resumeExecution.bind(exec)),
  });
  server.addService(grpcServiceDefinition(AdminService), {
    getPartitionConfig: unary(admin.getPartitionConfig.bind(admin)),
    rotateWaitpointSecret: unary(admin.rotateWaitpointSecret.bind(admin)),
  });
  server.addService(grpcServiceDefinition(SignalService), {
    deliverSignal: unary(signals.deliverSignal.bind(signals)),
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${opts.host}:${opts.port}`, serverCredentials(opts.tls), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    port,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => { server.forceShutdown(); resolve(); }, graceMs);
        server.tryShutdown(() => { clearTimeout(force); resolve(); });
      }),
  };
}

function serverCredentials(tls: TlsMaterial | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(tls.clientCa ?? null, [{ private_key: tls.key, cert_chain: tls.cert }], tls.clientCa !== undefined);
}

function metadataGetter(md: grpc.Metadata): HeaderGetter {
  return (name) => {
    const v = md.get(name)[0];
    return typeof v === "string" ? v : undefined;
  };
}

/** GatewayError -> grpc-js status with ErrorDetail in grpc-status-details-bin and plain trailers. */
export function serviceError(err: unknown, log: Logger): Partial<grpc.StatusObject> {
  const ge = GatewayError.from(err);
  if (ge.reason === "INTERNAL") log.error("internal error", { err: String(err), stack: err instanceof Error ? err.stack : undefined });
  const code = statusOf(ge);
  const metadata = new grpc.Metadata();
  const detail = detailOf(ge);
  metadata.set(STATUS_DETAILS_TRAILER, Buffer.from(encodeStatusDetails(code, ge.message, detail)));
  metadata.set(DETAIL_TRAILER, Buffer.from(detailTrailerBytes(detail)));
  for (const [name, value] of errorTrailers(ge.reason, ge.field)) metadata.set(name, value);
  return { code, details: ge.message, metadata };
}

/** A session's fatal error is logged by the session itself, not again by its transport. */
const SILENT = createLogger("silent");

/**
 * The lifetime of a server call, shared by the Session and TailStream adapters: `signal` aborts
 * when the peer cancels, the call errors or closes; `end` finishes our side once (an error
 * becomes the call's status).
 */
function callLifetime(call: Pick<NodeJS.EventEmitter, "on" | "emit"> & { end(): void }, log: Logger) {
  const ac = new AbortController();
  let ended = false;
  const gone = (): void => ac.abort();
  call.on("cancelled", gone);
  call.on("error", gone);
  call.on("close", gone);
  return {
    signal: ac.signal,
    gone,
    /** True while messages may still be written. */
    open: (): boolean => !ended && !ac.signal.aborted,
    end: (error?: GatewayError): void => {
      if (ended) return;
      ended = true;
      if (error) call.emit("error", serviceError(error, log));
      else call.end();
    },
  };
}

/** Adapts a grpc-js duplex call to the session's transport. */
function sessionTransport(call: grpc.ServerDuplexStream<SessionRequest, SessionResponse>): SessionTransport {
  const life = callLifetime(call, SILENT);
  let requestsEnd: (() => void) | undefined;
  // The worker half-closed: it is leaving. Finish our side too (the session first sends what it has).
  call.on("end", () => {
    if (requestsEnd) requestsEnd();
    else { life.end(); life.gone(); }
  });
  return {
    signal: life.signal,
    header: metadataGetter(call.metadata),
    send: (message) => {
      if (life.open()) call.write(message);
    },
    end: (error) => { life.end(error); life.gone(); },
    onMessage: (handler) => call.on("data", (m: unknown) => handler(m instanceof Undecodable ? m.error : m as SessionRequest)),
    onRequestsEnd: (handler) => { requestsEnd = handler; },
  };
}

/** Adapts a grpc-js server-streaming call to a tail's sink (write() false = back-pressure). */
function tailSink(call: grpc.ServerWritableStream<TailStreamRequest, TailStreamResponse>, log: Logger): TailSink {
  const life = callLifetime(call, log);
  return {
    signal: life.signal,
    send: (message) => (life.open() ? call.write(message) : true),
    onDrain: (callback) => { call.on("drain", callback); },
    end: (error) => life.end(error),
  };
}
