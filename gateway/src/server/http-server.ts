import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { createContextKey, createContextValues, type ConnectRouter, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  AdminService, ExecutionService, OPERATION_LIST, SignalService, StreamService, type TailStreamRequest, WorkerService,
} from "@flowfabric/sdk/wire";
import type { Logger } from "../logger.js";
import { callContext, unaryCall, type CallContext } from "../rpc/call-context.js";
import { unaryMirror } from "../rpc/task-operations.js";
import { connectAdapter } from "./connect-adapter.js";
import { connectError } from "./connect-error.js";
import { connectTail } from "./connect-tail.js";
import type { Services } from "./services.js";
import type { TlsMaterial } from "./tls.js";
import { clientKey } from "./per-key-limit.js";

/** The caller's address ("host:port"), from the socket (connect-node passes it as a context value). */
const PEER = createContextKey("", { description: "peer address" });

/**
 * The HTTP/1.1 listener: Connect (JSON and binary) and gRPC-Web for every unary RPC, generated
 * from the same service definitions as the gRPC listener, StreamService.TailStream (server
 * streaming), plus GET /healthz (liveness) and GET /readyz (readiness). The worker Session stream needs HTTP/2 and lives on the gRPC
 * listener only.
 */
export interface HttpListener {
  readonly port: number;
  close(): Promise<void>;
}

export interface HttpListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxMessageBytes: number;
  /** HTTPS (and mTLS with a client CA); plain HTTP/1.1 when absent. */
  readonly tls?: TlsMaterial | undefined;
}

export async function startHttpListener(opts: HttpListenerOptions, services: Services, log: Logger, extraRoutes: Map<string, (req: IncomingMessage, res: ServerResponse) => void> = new Map()): Promise<HttpListener> {
  const wrap = <Req, Res>(fn: (req: Req, ctx: CallContext) => Promise<Res>) =>
    async (req: Req, ctx: HandlerContext): Promise<Res> => {
      try {
        return await unaryCall(services, rpcPath(ctx), req, (name) => ctx.requestHeader.get(name) ?? undefined, fn);
      } catch (err) {
        throw connectError(err, log);
      }
    };
  const { exec, ops, admin, streams, signals } = services;
  const routes = (router: ConnectRouter): void => {
    router.service(ExecutionService, {
      createExecution: wrap(exec.createExecution.bind(exec)),
      createExecutions: wrap(exec.createExecutions.bind(exec)),
      describeExecution: wrap(exec.describeExecution.bind(exec)),
      getResult: wrap(exec.getResult.bind(exec)),
      cancelExecution: wrap(exec.cancelExecution.bind(exec)),
      resumeExecution: wrap(exec.resumeExecution.bind(exec)),
    });
    router.service(AdminService, {
      getPartitionConfig: wrap(admin.getPartitionConfig.bind(admin)),
      rotateWaitpointSecret: wrap(admin.rotateWaitpointSecret.bind(admin)),
    });
    router.service(SignalService, { deliverSignal: wrap(signals.deliverSignal.bind(signals)) });
    // The unary mirrors of the worker operations (the Session stream needs HTTP/2: gRPC listener only).
    router.service(WorkerService, Object.fromEntries(OPERATION_LIST.map((op) => [
      op.method.localName,
      wrap(unaryMirror(ops, op)),
    ])) as Partial<ServiceImpl<typeof WorkerService>>);
    router.service(StreamService, {
      readStream: wrap(streams.readStream.bind(streams)),
      tailStream: (req: TailStreamRequest, ctx: HandlerContext) => connectTail({
        tailStream: async (r, sink, client) => {
          await callContext(services.auth, rpcPath(ctx), r, (name) => ctx.requestHeader.get(name) ?? undefined);
          streams.tailStream(r, sink, client);
        },
      }, req, ctx, log, clientKey(ctx.requestHeader.get("authorization") ?? undefined, ctx.values.get(PEER))),
    });
  };
  // Strict JSON: an unknown field (usually a typo in a hand-written request) is an error, not ignored.
  const adapter = connectAdapter({
    routes, grpc: false, grpcWeb: true, connect: true, readMaxBytes: opts.maxMessageBytes,
    jsonOptions: { ignoreUnknownFields: false },
    contextValues: (req) => createContextValues().set(PEER, `${req.socket.remoteAddress ?? ""}:${req.socket.remotePort ?? 0}`),
  }, log);
  const handler: RequestListener = (req, res) => {
    const path = (req.url ?? "").split("?")[0] ?? "";
    if (path === "/healthz" && req.method === "GET") {
      // Liveness: the process serves (a draining gateway is alive: let it finish).
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: services.healthy() ? "ok" : "draining" }));
      return;
    }
    if (path === "/readyz" && req.method === "GET") {
      services.notReady().then((why) => {
        res.writeHead(why === null ? 200 : 503, { "content-type": "application/json" });
        res.end(JSON.stringify(why === null ? { status: "ready" } : { status: "not_ready", reason: why }));
      }, () => { res.writeHead(503).end(); });
      return;
    }
    const extra = extraRoutes.get(path);
    if (extra) return extra(req, res);
    adapter(req, res);
  };
  const tls = opts.tls;
  const server: Server = tls
    ? createTlsServer({ cert: tls.cert, key: tls.key, ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}) }, handler)
    : createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => { server.off("error", reject); resolve(); });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function rpcPath(ctx: HandlerContext): string {
  return `/${ctx.service.typeName}/${ctx.method.name}`;
}
