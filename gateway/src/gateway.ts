import { compileOptions, type GatewayOptions } from "./config.js";
import type { EngineBackend } from "./engine/backend.js";
import { ValkeyBackend } from "./engine/valkey-backend.js";
import { createLogger, type Logger } from "./logger.js";
import { AdminHandlers } from "./rpc/admin-service.js";
import { ExecutionHandlers } from "./rpc/execution-service.js";
import { TaskOperations } from "./rpc/task-operations.js";
import { Scanners } from "./scanners/scanners.js";
import { Scheduler } from "./scheduler/scheduler.js";
import { startGrpcListener, type GrpcListener } from "./server/grpc-server.js";
import { startHttpListener, type HttpListener } from "./server/http-server.js";
import type { Services } from "./server/services.js";
import { SessionRegistry } from "./sessions/session-registry.js";
import { WorkerSession } from "./sessions/worker-session.js";

/** A running gateway. */
export interface Gateway {
  readonly options: GatewayOptions;
  /** "host:port" of the gRPC listener (workers, gRPC clients). */
  readonly grpcAddress: string;
  /** "http://host:port" of the HTTP/1.1 listener (Connect JSON, gRPC-Web, /healthz). */
  readonly httpAddress: string;
  readonly engine: EngineBackend;
  /** Live sessions. */
  readonly sessions: SessionRegistry;
  /** Drain: stop pushing, send Drain, wait up to the grace for in-flight work, then close everything. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions extends Partial<GatewayOptions> {
  /** Required here: the embedded server is main.ts's business. */
  readonly valkeyUrl: string;
  readonly logger?: Logger;
}

/** Connects to Valkey, loads the library, and serves. */
export async function startGateway(start: StartOptions): Promise<Gateway> {
  const { logger, ...rest } = start;
  const options = compileOptions(rest);
  const log = (logger ?? createLogger("warn")).child({ gateway: options.gatewayId });
  const engine = await ValkeyBackend.connect({ url: options.valkeyUrl, partitions: options.partitions });
  const limits = { partitions: engine.partitions, maxPayloadBytes: options.maxPayloadBytes };
  const registry = new SessionRegistry();
  const scheduler = new Scheduler(engine, options, log);
  const ops = new TaskOperations(engine, limits, options.leaseTtlMs);
  let draining = false;
  const services: Services = {
    exec: new ExecutionHandlers(engine, limits),
    ops,
    admin: new AdminHandlers(engine),
    openSession: (transport) => {
      const session = new WorkerSession({ engine, scheduler, registry, ops, options, limits, log }, transport);
      if (draining) void session.drain(0);
    },
    healthy: () => !draining,
  };
  await engine.subscribe((event) => {
    registry.onEvent(event);
    scheduler.onEvent(event);
  });
  const scanners = new Scanners(engine, options, log);
  let grpc: GrpcListener | undefined;
  let http: HttpListener | undefined;
  try {
    grpc = await startGrpcListener({ ...options, port: options.grpcPort }, services, log);
    http = await startHttpListener({ ...options, port: options.httpPort }, services, log);
  } catch (err) {
    await grpc?.close(0);
    await engine.close();
    throw err;
  }
  scanners.start();
  scheduler.start();
  log.info("gateway serving", { grpcPort: grpc.port, httpPort: http.port, partitions: engine.partitions });

  let closing: Promise<void> | undefined;
  const grpcListener = grpc;
  const httpListener = http;
  return {
    options,
    grpcAddress: `${options.host}:${grpc.port}`,
    httpAddress: `http://${options.host}:${http.port}`,
    engine,
    sessions: registry,
    close(graceMs = options.drainGraceMs) {
      closing ??= (async () => {
        draining = true;
        await Promise.all([...registry.all()].map((s) => s.drain(graceMs)));
        scheduler.stop();
        await scanners.stop();
        await Promise.all([grpcListener.close(Math.min(graceMs, 1000)), httpListener.close()]);
        await engine.close();
      })();
      return closing;
    },
  };
}
