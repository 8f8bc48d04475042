import type { Resource } from "@opentelemetry/resources";
import type { IMetricReader } from "@opentelemetry/sdk-metrics";
import { WorkerService } from "@flowfabric/sdk/wire";
import { Authorizer, tokenProtected } from "./auth/authorizer.js";
import { METRICS_ROLES } from "./auth/policy.js";
import { compileOptions, isLoopback, type GatewayOptions } from "./config.js";
import type { EngineBackend } from "./engine/backend.js";
import { checkStoreConfig, storeNotReady } from "./engine/store-checks.js";
import { ValkeyBackend } from "./engine/valkey-backend.js";
import { GatewayError } from "./errors.js";
import { createLogger, type Logger } from "./logger.js";
import { AdminHandlers } from "./rpc/admin-service.js";
import { ExecutionHandlers } from "./rpc/execution-service.js";
import { SignalHandlers } from "./rpc/signal-service.js";
import { SuspensionOperations } from "./rpc/suspension-operations.js";
import type { SignalLimits } from "./rpc/validate-signals.js";
import { WaitpointKeyring } from "./signals/waitpoint-keyring.js";
import { StreamHandlers } from "./rpc/stream-service.js";
import { TaskOperations } from "./rpc/task-operations.js";
import { Scanners } from "./scanners/scanners.js";
import { Scheduler } from "./scheduler/scheduler.js";
import { startGrpcListener, type GrpcListener } from "./server/grpc-server.js";
import { startHttpListener, type HttpListener } from "./server/http-server.js";
import { loadTls } from "./server/tls.js";
import type { Services } from "./server/services.js";
import { SessionRegistry } from "./sessions/session-registry.js";
import { WorkerSession } from "./sessions/worker-session.js";
import { TailRegistry } from "./streams/tail-registry.js";
import { GatewayMetrics } from "./telemetry/gateway-metrics.js";
import { GatewayTelemetry } from "./telemetry/gateway-telemetry.js";
import { eligibleDepthReader, startMetricsEndpoint } from "./telemetry/metrics-endpoint.js";

/** A running gateway. */
export interface Gateway {
  readonly options: GatewayOptions;
  /** "host:port" of the gRPC listener (workers, gRPC clients). */
  readonly grpcAddress: string;
  /** "http://host:port" ("https://…" with TLS) of the HTTP/1.1 listener (Connect JSON, gRPC-Web, /healthz, GET /metrics). */
  readonly httpAddress: string;
  readonly engine: EngineBackend;
  /** Live sessions. */
  readonly sessions: SessionRegistry;
  /** Live TailStream calls. */
  readonly tails: TailRegistry;
  /** Drain: stop pushing, send Drain, wait up to the grace for in-flight work, then close everything. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions extends Partial<GatewayOptions> {
  /** Required here: the embedded server is main.ts's business. */
  readonly valkeyUrl: string;
  readonly logger?: Logger;
  /**
   * Extra readers of the gateway's metrics besides `GET /metrics` (e.g. main.ts's OTLP push from
   * `OTEL_METRICS_EXPORTER`). Traces need nothing here: the gateway uses the global tracer provider.
   */
  readonly metricReaders?: readonly IMetricReader[];
  /**
   * The resource of the gateway's metrics (main.ts passes the one its spans use, from
   * `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`); `service.instance.id` is the gateway id.
   * Default: `service.name` = flowfabric-gateway.
   */
  readonly resource?: Resource;
  /**
   * Secret (hex) of the first waitpoint token key, used only on a deployment's first boot
   * (main.ts reads FLOWFABRIC_WAITPOINT_SECRET); random when absent. Never part of `options`.
   */
  readonly waitpointSecretHex?: string | undefined;
}

/** Connects to Valkey, loads the library, and serves. */
export async function startGateway(start: StartOptions): Promise<Gateway> {
  const { logger, metricReaders, resource, waitpointSecretHex, ...rest } = start;
  const options = compileOptions(rest);
  const log = (logger ?? createLogger("warn")).child({ gateway: options.gatewayId });
  const tls = loadTls(options);
  if (!tls && options.authTokens.length > 0 && !isLoopback(options.host)) {
    log.warn("bearer tokens travel in cleartext: serve TLS (FLOWFABRIC_TLS_CERT, FLOWFABRIC_TLS_KEY) or terminate TLS in front of the gateway", { host: options.host });
  }
  const engine = await ValkeyBackend.connect({
    url: options.valkeyUrl, partitions: options.partitions, frameBlockMs: options.tailBlockMs,
    onConnectionHealth: (state, err) => {
      if (state === "down") log.warn("store connection lost; reconnecting (commands wait meanwhile)", { err: String(err) });
      else log.info("store connection back");
    },
  });
  try {
    await checkStoreConfig(engine.connection, { allowEviction: options.allowEviction }, log);
  } catch (err) {
    await engine.close();
    throw err;
  }
  const limits = {
    partitions: engine.partitions,
    maxPayloadBytes: options.maxPayloadBytes,
    frames: {
      maxFrameBytes: options.maxFrameBytes,
      maxStreamFrames: options.maxStreamFrames,
      maxStreamBytes: options.maxStreamBytes,
      maxSummaryBytes: options.maxSummaryBytes,
    },
  };
  const signalLimits: SignalLimits = {
    maxSignalsPerExecution: options.maxSignalsPerExecution,
    maxSignalPayloadBytes: options.maxSignalPayloadBytes,
    maxWaitpointsPerExecution: options.maxWaitpointsPerExecution,
    maxPendingWaitpointMs: options.maxPendingWaitpointMs,
  };
  let keyring: WaitpointKeyring;
  try {
    keyring = await WaitpointKeyring.open(engine, { initialSecretHex: waitpointSecretHex, refreshMs: options.keyringRefreshMs, log });
  } catch (err) {
    await engine.close();
    throw err;
  }
  const registry = new SessionRegistry();
  const scheduler = new Scheduler(engine, options, log);
  const metricsEndpoint = startMetricsEndpoint(resource, options.gatewayId, metricReaders);
  const telemetry = new GatewayTelemetry(new GatewayMetrics(metricsEndpoint.meter, {
    sessions: () => registry.size,
    leases: () => registry.leaseCount,
    queues: () => servedQueues(registry),
    eligibleDepth: eligibleDepthReader(engine.connection, engine.partitions),
  }), options.gatewayId, options.leaseTtlMs);
  const suspension = new SuspensionOperations(engine, keyring, limits, signalLimits);
  const ops = new TaskOperations(engine, limits, options.leaseTtlMs, suspension, "unary", telemetry.metrics);
  const tails = new TailRegistry(engine, {
    maxTails: options.maxTails,
    maxTailsPerClient: options.maxTailsPerClient,
    readBatch: 1000,
    keepaliveMs: options.tailKeepaliveMs,
    recheckMs: options.tailRecheckMs,
    maxMessageBytes: Math.min(1024 * 1024, Math.floor(options.maxMessageBytes / 2)),
  });
  const auth = new Authorizer(options.authTokens, engine, limits);
  let draining = false;
  const services: Services = {
    exec: new ExecutionHandlers(engine, limits),
    ops,
    admin: new AdminHandlers(engine, keyring, options.waitpointKeyGraceMs),
    signals: new SignalHandlers(engine, keyring, limits, signalLimits, telemetry),
    streams: new StreamHandlers(engine, limits, tails),
    auth,
    telemetry,
    openSession: (transport) => {
      let caller;
      try {
        caller = auth.authorizeStream(SESSION_PATH, transport.header);
      } catch (err) {
        transport.end(GatewayError.from(err));
        return;
      }
      const session = new WorkerSession({ engine, scheduler, registry, ops, options, limits, log, telemetry, auth }, transport, caller);
      if (draining) void session.drain(0);
    },
    healthy: () => !draining,
    notReady: async () => (draining ? "draining" : storeNotReady(engine.connection, options.readyTimeoutMs)),
  };
  await engine.subscribe((event) => {
    registry.onEvent(event);
    scheduler.onEvent(event);
  });
  const scanners = new Scanners(engine, options, log);
  let grpc: GrpcListener | undefined;
  let http: HttpListener | undefined;
  try {
    grpc = await startGrpcListener({ ...options, port: options.grpcPort, tls }, services, log);
    const metricsRoute = options.metricsAuth === "token" ? tokenProtected(auth, METRICS_ROLES, "GET /metrics", metricsEndpoint.handle) : metricsEndpoint.handle;
    http = await startHttpListener({ ...options, port: options.httpPort, tls }, services, log, new Map([["/metrics", metricsRoute]]));
  } catch (err) {
    await grpc?.close(0);
    await metricsEndpoint.shutdown();
    keyring.close();
    await engine.close();
    throw err;
  }
  scanners.start();
  scheduler.start();
  log.info("gateway serving", {
    grpcPort: grpc.port, httpPort: http.port, partitions: engine.partitions,
    auth: auth.enabled ? `${options.authTokens.length} token(s)` : "off", tls: tls ? (tls.clientCa ? "mtls" : "tls") : "off",
  });

  let closing: Promise<void> | undefined;
  const grpcListener = grpc;
  const httpListener = http;
  return {
    options,
    grpcAddress: `${options.host}:${grpc.port}`,
    httpAddress: `${tls ? "https" : "http"}://${options.host}:${http.port}`,
    engine,
    sessions: registry,
    tails,
    close(graceMs = options.drainGraceMs) {
      closing ??= (async () => {
        draining = true;
        tails.drain();
        await Promise.all([...registry.all()].map((s) => s.drain(graceMs)));
        scheduler.stop();
        await scanners.stop();
        await Promise.all([grpcListener.close(Math.min(graceMs, 1000)), httpListener.close()]);
        await metricsEndpoint.shutdown();
        keyring.close();
        await engine.close();
      })();
      return closing;
    },
  };
}

const SESSION_PATH = `/${WorkerService.typeName}/${WorkerService.method.session.name}`;

/** The queues (namespace, lane) the live sessions serve, each once. */
function* servedQueues(registry: SessionRegistry): Iterable<readonly [string, string]> {
  const seen = new Set<string>();
  for (const session of registry.all()) {
    for (const lane of session.lanes) {
      const key = `${session.namespace}/${lane}`;
      if (seen.has(key)) continue;
      seen.add(key);
      yield [session.namespace, lane];
    }
  }
}
