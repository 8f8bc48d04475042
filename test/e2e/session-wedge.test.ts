import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { FenceSchema } from "../../sdk-ts/src/gen/flowfabric/v1/common_pb.js";
import { SessionRequestSchema, SessionResponseSchema, type SessionResponse } from "../../sdk-ts/src/gen/flowfabric/v1/worker_pb.js";
import { fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { startHarness, type Harness } from "../support/gateway.js";

/**
 * A Session that receives an undecodable message after valid and malformed operations: every
 * operation sent before it is answered, then the stream ends with INVALID_ARGUMENT naming the
 * message — it never stays open without a status, and the gateway serves on.
 */
let h: Harness;
beforeAll(async () => { h = await startHarness(); });
afterAll(async () => { await h.stop(); });

const UUID = "00000000-0000-4000-8000-000000000000";
const fence = create(FenceSchema, { executionId: `0:${UUID}`, leaseId: UUID, leaseEpoch: 1n, attemptId: UUID });

/** A Session call whose writes are raw bytes, so a test can send what no encoder would. */
function rawBytesSession(address: string): { client: grpc.Client; call: grpc.ClientDuplexStream<Buffer, SessionResponse> } {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest<Buffer, SessionResponse>(
    "/flowfabric.v1.WorkerService/Session", (b) => b, (b) => fromBinary(SessionResponseSchema, b));
  return { client, call };
}
const encode = (init: MessageInitShape<typeof SessionRequestSchema>): Buffer => Buffer.from(toBinary(SessionRequestSchema, create(SessionRequestSchema, init)));

test("malformed operations then an undecodable message: earlier operations answered, then a status", async () => {
  const { client, call } = rawBytesSession(h.gateway.grpcAddress);
  const received: SessionResponse[] = [];
  call.on("data", (m: SessionResponse) => {
    received.push(...(m.body.case === "batch" ? m.body.value.responses : [m]));
  });
  call.on("error", () => undefined);
  const status = new Promise<grpc.StatusObject>((r) => call.on("status", r));
  call.write(encode({ body: { case: "hello", value: { workerId: "w", instanceId: "wedge", lanes: ["wedge"], maxConcurrentTasks: 1 } } }));
  // Well-formed operations on an unknown execution (each answered NOT_FOUND after a store call),
  // malformed ones (answered at once), then bytes that are no protobuf message at all.
  call.write(encode({ requestId: "a", body: { case: "complete", value: { fence } } }));
  call.write(encode({ requestId: "b", body: { case: "complete", value: {} } }));
  call.write(encode({ requestId: "c", body: { case: "updateProgress", value: { fence, percent: 5 } } }));
  call.write(encode({ requestId: "", body: { case: "fail", value: { fence } } }));
  call.write(encode({ requestId: "d", body: { case: "renewLease", value: { fence } } }));
  call.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
  const st = await status;
  expect(st.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(st.metadata.get("ff-error-field")[0]).toBe("message");
  const answered = received.filter((m) => m.body.case === "error").map((m) => m.requestId).sort();
  expect(answered).toEqual(["", "a", "b", "c", "d"]);
  expect(received[0]?.body.case).toBe("welcome");
  client.close();
});

test("an undecodable first message ends the stream with INVALID_ARGUMENT, never INTERNAL", async () => {
  const { client, call } = rawBytesSession(h.gateway.grpcAddress);
  call.on("data", () => undefined);
  call.on("error", () => undefined);
  const status = new Promise<grpc.StatusObject>((r) => call.on("status", r));
  call.write(Buffer.from([0x0a, 0xff, 0xff]));
  expect((await status).code).toBe(grpc.status.INVALID_ARGUMENT);
  client.close();
});

test("an undecodable unary request is INVALID_ARGUMENT, and the gateway still serves", async () => {
  const client = new grpc.Client(h.gateway.grpcAddress, grpc.credentials.createInsecure());
  const err = await new Promise<grpc.ServiceError>((resolve) => {
    client.makeUnaryRequest("/flowfabric.v1.ExecutionService/CreateExecution", (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0xff, 0xff, 0xff]),
      (e) => resolve(e!));
  });
  expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(err.metadata.get("ff-error-field")[0]).toBe("message");
  client.close();
});

test("an undecodable Connect binary or gRPC-Web request is INVALID_ARGUMENT naming message, not INTERNAL", async () => {
  const url = `${h.gateway.httpAddress}/flowfabric.v1.ExecutionService/CreateExecution`;
  const connect = await fetch(url, { method: "POST", headers: { "content-type": "application/proto" }, body: new Uint8Array([0xff, 0xff, 0xff]) });
  expect(connect.status).toBe(400);
  expect(connect.headers.get("ff-error-field")).toBe("message");
  expect(((await connect.json()) as { code: string }).code).toBe("invalid_argument");
  const web = await fetch(url, { method: "POST", headers: { "content-type": "application/grpc-web+proto" }, body: new Uint8Array([0, 0, 0, 0, 3, 0xff, 0xff, 0xff]) });
  const trailer = Buffer.from(await web.arrayBuffer()).toString("latin1");
  expect(web.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(trailer)?.[1]).toBe(String(grpc.status.INVALID_ARGUMENT));
});
