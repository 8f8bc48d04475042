import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { CreateExecutionRequestSchema, ExecutionService, type CreateExecutionResponse } from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import { MAX_PRIORITY as GATEWAY_MAX, MIN_PRIORITY as GATEWAY_MIN } from "../../gateway/src/engine/keys.js";
import { FlowFabricClient, FlowFabricError, MAX_PRIORITY, MIN_PRIORITY } from "../../sdk-ts/src/index.js";
import { startHarness, type Harness } from "../support/gateway.js";
import { errorDetailOf, rawClient } from "../support/raw-session.js";

/** The priority range is one range: the SDK, the gateway and the store agree on ±1000. */
let h: Harness;
let client: FlowFabricClient;
let raw: ReturnType<typeof rawClient>;

beforeAll(async () => {
  h = await startHarness();
  client = await FlowFabricClient.connect({ address: h.gateway.grpcAddress });
  raw = rawClient(ExecutionService, h.gateway.grpcAddress);
});
afterAll(async () => {
  client.close();
  raw.close();
  await h.stop();
});

test("the SDK and the gateway document and enforce the same range, ±1000", async () => {
  expect([MIN_PRIORITY, MAX_PRIORITY]).toEqual([-1000, 1000]);
  expect([GATEWAY_MIN, GATEWAY_MAX]).toEqual([MIN_PRIORITY, MAX_PRIORITY]);
  for (const priority of [MIN_PRIORITY, MAX_PRIORITY]) {
    const created = await client.createExecution({ lane: "priority-bounds", priority });
    expect((await client.describeExecution(created.executionId)).priority).toBe(priority);
  }
  // Past the range on the wire (no SDK check in the way): the gateway names the field.
  for (const priority of [MIN_PRIORITY - 1, MAX_PRIORITY + 1]) {
    const err = await raw.call<CreateExecutionResponse>("createExecution", create(CreateExecutionRequestSchema, { lane: "priority-bounds", priority })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(errorDetailOf(err)?.field).toBe("priority");
  }
});

test.each([1.5, Number.NaN, MAX_PRIORITY + 1, -1_000_000])("priority %p is refused by the SDK: INVALID_ARGUMENT naming `priority`", async (priority) => {
  const err = await client.createExecution({ lane: "priority-bad", priority }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(FlowFabricError);
  expect(err).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_ARGUMENT", field: "priority" });
  expect((err as Error).message).not.toMatch(/int32|encode|protobuf/i);
});

test("in a batch the field names the spec", async () => {
  const err = await client.createExecutions([{ lane: "priority-bad" }, { lane: "priority-bad", priority: 0.25 }]).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: "INVALID_ARGUMENT", field: "executions[1].priority" });
});
