import { compileClientOptions, compileWorkerOptions, FlowFabricError } from "../../sdk-ts/src/index.js";

test("worker defaults are applied and the result is frozen", () => {
  const o = compileWorkerOptions({ workerId: "billing", lanes: ["invoices"] });
  expect(o).toMatchObject({
    address: "127.0.0.1:50051",
    workerId: "billing",
    namespace: "default",
    lanes: ["invoices"],
    capabilities: [],
    maxConcurrentTasks: 10,
    reconnect: { initialDelayMs: 100, maxDelayMs: 5000, maxAttempts: Infinity },
    connectTimeoutMs: 10_000,
    authToken: undefined,
    grpc: { keepaliveTimeMs: 10_000, keepaliveTimeoutMs: 5_000 },
  });
  expect(o.instanceId).toMatch(/^billing-[0-9a-f]{8}$/);
  expect(Object.isFrozen(o)).toBe(true);
  expect(Object.isFrozen(o.lanes)).toBe(true);
  expect(Object.isFrozen(o.reconnect)).toBe(true);
  expect(Object.isFrozen(o.grpc)).toBe(true);
});

test("instance ids are unique per compile and stay within 128 chars", () => {
  const a = compileWorkerOptions({ workerId: "w", lanes: ["l"] });
  const b = compileWorkerOptions({ workerId: "w", lanes: ["l"] });
  expect(a.instanceId).not.toBe(b.instanceId);
  expect(compileWorkerOptions({ workerId: "x".repeat(128), lanes: ["l"] }).instanceId.length).toBeLessThanOrEqual(128);
  expect(compileWorkerOptions({ workerId: "w", lanes: ["l"], instanceId: "fixed" }).instanceId).toBe("fixed");
});

test("the caller's arrays are copied", () => {
  const lanes = ["a"];
  const o = compileWorkerOptions({ workerId: "w", lanes, capabilities: ["gpu"] });
  lanes.push("b");
  expect(o.lanes).toEqual(["a"]);
  expect(o.capabilities).toEqual(["gpu"]);
});

test.each([
  [{ workerId: "", lanes: ["l"] }, "workerId"],
  [{ workerId: "w", lanes: [] }, "lanes"],
  [{ workerId: "w", lanes: ["ok", ""] }, "lanes[1]"],
  [{ workerId: "w", lanes: ["l"], maxConcurrentTasks: 0 }, "maxConcurrentTasks"],
  [{ workerId: "w", lanes: ["l"], maxConcurrentTasks: 1.5 }, "maxConcurrentTasks"],
  [{ workerId: "w", lanes: ["l"], maxConcurrentTasks: 10_001 }, "maxConcurrentTasks"],
  [{ workerId: "w", lanes: ["l"], reconnect: { initialDelayMs: 0 } }, "reconnect.initialDelayMs"],
  [{ workerId: "w", lanes: ["l"], reconnect: { initialDelayMs: 500, maxDelayMs: 100 } }, "reconnect.maxDelayMs"],
  [{ workerId: "w", lanes: ["l"], reconnect: { maxAttempts: 0 } }, "reconnect.maxAttempts"],
  [{ workerId: "w", lanes: ["l"], grpc: { keepaliveTimeMs: -1 } }, "grpc.keepaliveTimeMs"],
])("invalid worker options are refused with INVALID_ARGUMENT naming the field (%j)", (options, field) => {
  let caught: unknown;
  try {
    compileWorkerOptions(options as never);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(FlowFabricError);
  expect(caught).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_ARGUMENT", field });
});

test("client defaults", () => {
  const o = compileClientOptions();
  expect(o).toMatchObject({ address: "127.0.0.1:50051", namespace: "default", connectTimeoutMs: 10_000, callTimeoutMs: 30_000 });
  expect(Object.isFrozen(o)).toBe(true);
  expect(compileClientOptions({ address: "gw:1", namespace: "ns" })).toMatchObject({ address: "gw:1", namespace: "ns" });
});

test("an auth token must fit in a header: printable ASCII, no spaces or newlines", () => {
  expect(compileClientOptions({ authToken: "s3cr3t.t0ken" }).authToken).toBe("s3cr3t.t0ken");
  for (const bad of ["token\n", "two words", ""]) {
    for (const compile of [() => compileClientOptions({ authToken: bad }), () => compileWorkerOptions({ workerId: "w", lanes: ["l"], authToken: bad })]) {
      let error: unknown;
      try { compile(); } catch (e) { error = e; }
      expect(error).toBeInstanceOf(FlowFabricError);
      expect(error).toMatchObject({ code: "INVALID_ARGUMENT", field: "authToken" });
    }
  }
});
