import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ExecutionService } from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import {
  SessionRequestSchema, WorkerService,
  type SessionRequest, type SessionResponse,
} from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { grpcClientConstructor } from "../../sdk-ts/src/transport/grpc-service.js";
import { decodeStatusDetails, STATUS_DETAILS_TRAILER } from "../../sdk-ts/src/transport/status-details.js";

/**
 * A protocol-level worker for fault tests: it speaks the Session stream message by message, with
 * none of the SDK's automatic acks, heartbeats or reconnects, so a test can misbehave on purpose.
 */
export class RawSession {
  private readonly queue: SessionResponse[] = [];
  private waiters: { match: (m: SessionResponse) => boolean; resolve: (m: SessionResponse) => void; reject: (e: Error) => void }[] = [];
  readonly call: grpc.ClientDuplexStream<SessionRequest, SessionResponse>;
  /** Every message as received on the wire (a batch is one entry here; `next` sees its contents). */
  readonly received: SessionResponse[] = [];
  readonly client: grpc.Client;
  status: grpc.StatusObject | undefined;
  private readonly ended: Promise<grpc.StatusObject>;

  /**
   * `token`: sent as `authorization: Bearer <token>`. `channel`: share one HTTP/2 connection
   * between sessions (default: the client's own channel).
   */
  constructor(address: string, token?: string, channel?: grpc.Channel) {
    const Ctor = grpcClientConstructor(WorkerService);
    this.client = new Ctor(address, grpc.credentials.createInsecure(), channel ? { channelOverride: channel } : {});
    this.call = (this.client as unknown as { session(md: grpc.Metadata): grpc.ClientDuplexStream<SessionRequest, SessionResponse> }).session(bearer(token));
    this.call.on("data", (wire: SessionResponse) => {
      this.received.push(wire);
      for (const m of wire.body.case === "batch" ? wire.body.value.responses : [wire]) {
        const i = this.waiters.findIndex((w) => w.match(m));
        if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
        else this.queue.push(m);
      }
    });
    this.ended = new Promise((resolve) => {
      this.call.on("status", (s: grpc.StatusObject) => {
        this.status = s;
        for (const w of this.waiters) w.reject(new Error(`stream ended: ${s.code} ${s.details}`));
        this.waiters = [];
        resolve(s);
      });
      this.call.on("error", () => undefined);
    });
  }

  send(init: MessageInitShape<typeof SessionRequestSchema>): void {
    this.call.write(create(SessionRequestSchema, init));
  }

  /** The next message (queued or future) whose body case is `kind` (and that passes `where`). */
  next<K extends NonNullable<SessionResponse["body"]["case"]>>(kind: K, where: (m: SessionResponse) => boolean = () => true, timeoutMs = 10_000): Promise<SessionResponse & { body: Extract<SessionResponse["body"], { case: K }> }> {
    const match = (m: SessionResponse): boolean => m.body.case === kind && where(m);
    const i = this.queue.findIndex(match);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0] as never);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${kind} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ match, resolve: (m) => { clearTimeout(t); resolve(m as never); }, reject: (e) => { clearTimeout(t); reject(e); } });
    });
  }

  /** Resolves with the stream's final status. */
  finished(): Promise<grpc.StatusObject> {
    return this.ended;
  }

  /** Hard close: cancel the call and the channel (like a crashed process). */
  kill(): void {
    this.call.cancel();
    this.client.close();
  }
}

/** Request metadata with `authorization: Bearer <token>` when a token is given. */
export function bearer(token: string | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set("authorization", `Bearer ${token}`);
  return md;
}

/** A raw unary client for a generated service (methods by localName), returning promises; `token` is sent as a bearer token. */
export function rawClient(service: typeof WorkerService | typeof ExecutionService, address: string, token?: string): { call<Res>(method: string, req: unknown): Promise<Res>; close(): void } {
  const Ctor = grpcClientConstructor(service as never);
  const client = new Ctor(address, grpc.credentials.createInsecure()) as unknown as Record<string, (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void> & grpc.Client;
  return {
    call: <Res>(method: string, req: unknown) =>
      new Promise<Res>((resolve, reject) => {
        const fn = client[method];
        if (!fn) return reject(new Error(`no method ${method}`));
        fn.call(client, req, bearer(token), (err, res) => (err ? reject(err) : resolve(res as Res)));
      }),
    close: () => client.close(),
  };
}

/** The ErrorDetail carried by a grpc-js error, if any. */
export function errorDetailOf(err: unknown): { code: number; reason: string; field: string; metadata: Record<string, string> } {
  const e = err as grpc.ServiceError;
  const bin = e.metadata?.get(STATUS_DETAILS_TRAILER)[0];
  const detail = bin instanceof Buffer ? decodeStatusDetails(bin) : undefined;
  return { code: e.code, reason: detail?.reason ?? "", field: detail?.field ?? "", metadata: { ...detail?.metadata } };
}
