import { lineMatching, startMain, type MainProcess } from "../support/main-process.js";
import { startTestServer, type TestServer } from "../support/redis.js";

/** `npm start` describes its metrics with the resource its spans use (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES). */
let server: TestServer;
let main: MainProcess | undefined;
beforeAll(async () => { server = await startTestServer(); });
afterAll(async () => {
  if (main && main.child.exitCode === null) {
    const exited = new Promise((r) => main!.child.once("exit", r));
    main.child.kill("SIGTERM");
    await exited;
  }
  await server.stop();
});

test("GET /metrics target_info carries OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, plus the gateway id", async () => {
  main = startMain({
    VALKEY_URL: server.url,
    OTEL_SERVICE_NAME: "orders-gateway", OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=staging,service.namespace=shop",
  });
  const gatewayId = (await lineMatching(main.lines, /^FlowFabric gateway (\S+)/))[1]!;
  const http = (await lineMatching(main.lines, /HTTP \(Connect JSON, gRPC-Web, health\):\s+(\S+)/))[1]!;
  const text = await (await fetch(`${http}/metrics`)).text();
  const info = text.split("\n").find((l) => l.startsWith("target_info{")) ?? "";
  expect(info).toContain('service_name="orders-gateway"');
  expect(info).toContain('deployment_environment="staging"');
  expect(info).toContain('service_namespace="shop"');
  expect(info).toContain(`service_instance_id="${gatewayId}"`);
}, 30_000);
