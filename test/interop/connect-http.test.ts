import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, decodeBinaryHeader } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { ErrorDetailSchema, PublicState } from "../../sdk-ts/src/gen/flowfabric/v1/common_pb.js";
import { ExecutionService } from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import { startHarness, type Harness } from "../support/gateway.js";

/**
 * The unary API on the HTTP/1.1 listener: Connect JSON exactly as curl sends it (plain fetch),
 * gRPC-Web through a real gRPC-Web transport, and clear 400-class errors for bad JSON.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
});

const post = (method: string, body: string, contentType = "application/json") =>
  fetch(`${h.gateway.httpAddress}/flowfabric.v1.ExecutionService/${method}`, {
    method: "POST",
    headers: { "content-type": contentType, connection: "close" },
    body,
  });

test("curl-equivalent Connect JSON: create, describe and cancel", async () => {
  const created = await post("CreateExecution", JSON.stringify({ lane: "http", kind: "greet", input: Buffer.from("hello").toString("base64"), priority: 5, tags: { source: "curl" } }));
  expect(created.status).toBe(200);
  const { executionId, state } = (await created.json()) as { executionId: string; state: string };
  expect(executionId).toMatch(/^\d+:[0-9a-f-]{36}$/);
  expect(state).toBe("PUBLIC_STATE_WAITING");

  const described = await post("DescribeExecution", JSON.stringify({ executionId }));
  expect(described.status).toBe(200);
  const { execution } = (await described.json()) as { execution: Record<string, unknown> };
  expect(execution).toMatchObject({ executionId, lane: "http", kind: "greet", priority: 5, state: "PUBLIC_STATE_WAITING", tags: { source: "curl" } });

  const cancelled = await post("CancelExecution", JSON.stringify({ executionId, reason: "from curl" }));
  expect(cancelled.status).toBe(200);
  expect(await cancelled.json()).toEqual({ state: "PUBLIC_STATE_CANCELLED", cancelled: true });
});

test("malformed JSON gets a 400-class Connect error, not a crash", async () => {
  const res = await post("CreateExecution", "{ this is not json");
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  const err = (await res.json()) as { code: string; message: string };
  expect(err.code).toBe("invalid_argument");
  expect(err.message.length).toBeGreaterThan(0);
});

test("a wrongly typed or unknown JSON field is refused with a 400-class error", async () => {
  const res = await post("CreateExecution", JSON.stringify({ lane: "http", priority: "very high" }));
  expect(res.status).toBe(400);
  expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
  const unknown = await post("CreateExecution", JSON.stringify({ lane: "http", colour: "blue" }));
  expect(unknown.status).toBe(400);
});

test("a validation error names the field in the Connect error details and headers", async () => {
  const res = await post("CreateExecution", JSON.stringify({ lane: "bad lane!" }));
  expect(res.status).toBe(400);
  expect(res.headers.get("ff-error-reason")).toBe("INVALID_ARGUMENT");
  expect(res.headers.get("ff-error-field")).toBe("lane");
  const detail = fromBinary(ErrorDetailSchema, decodeBinaryHeader(res.headers.get("ff-error-detail-bin")!));
  expect({ reason: detail.reason, field: detail.field }).toEqual({ reason: "INVALID_ARGUMENT", field: "lane" });
  const body = (await res.json()) as { code: string; details: { type: string }[] };
  expect(body.code).toBe("invalid_argument");
  expect(body.details[0]?.type).toBe("flowfabric.v1.ErrorDetail");
});

test("gRPC-Web transport: create, describe and typed errors", async () => {
  const client = createClient(ExecutionService, createGrpcWebTransport({ baseUrl: h.gateway.httpAddress, httpVersion: "1.1" }));
  const { executionId } = await client.createExecution({ lane: "grpc-web", kind: "k", input: new Uint8Array([0, 255, 1]) });
  const { execution } = await client.describeExecution({ executionId });
  expect(execution?.state).toBe(PublicState.WAITING);
  const err = await client.describeExecution({ executionId: "nope" }).then(
    () => { throw new Error("expected an error"); },
    (e: unknown) => ConnectError.from(e),
  );
  expect(err.code).toBe(Code.InvalidArgument);
  expect(err.findDetails(ErrorDetailSchema)[0]).toMatchObject({ reason: "INVALID_ARGUMENT", field: "execution_id" });
});

test("Connect binary protocol client works on the same listener", async () => {
  const client = createClient(ExecutionService, createConnectTransport({ baseUrl: h.gateway.httpAddress, httpVersion: "1.1" }));
  const { executionId } = await client.createExecution({ lane: "connect", kind: "k" });
  const r = await client.getResult({ executionId });
  expect(r.state).toBe(PublicState.WAITING);
});
