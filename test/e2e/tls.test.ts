/**
 * TLS and mTLS on both listeners (docs/security.md): a throwaway CA made with openssl at test
 * time; the SDK (gRPC listener) and a Connect client (HTTPS listener) round trip with a bearer
 * token; with a client CA, a client without a certificate gets nothing through on either listener.
 */
import { request as httpsRequest } from "node:https";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ExecutionService } from "../../sdk-ts/src/gen/flowfabric/v1/execution_pb.js";
import { FlowFabricClient, FlowFabricWorker, type TlsOptions } from "../../sdk-ts/src/index.js";
import type { Gateway } from "../../gateway/src/index.js";
import { eventually, startHarness, type Harness } from "../support/gateway.js";
import { makeTestPki, type TestPki } from "../support/tls.js";

const TOKEN = "tls-test-token-0123456789abcdef";
let pki: TestPki;
let h: Harness;
let mtls: Gateway;

beforeAll(async () => {
  pki = makeTestPki();
  const tls = { tlsCertFile: pki.files.serverCert, tlsKeyFile: pki.files.serverKey };
  h = await startHarness({ ...tls, authTokens: [{ name: "app", token: TOKEN, roles: ["producer", "worker", "operator"], namespaces: ["*"] }] });
  mtls = await h.startGateway({ ...tls, tlsClientCaFile: pki.files.ca, authTokens: [] });
});
afterAll(async () => {
  await h.stop();
  pki.remove();
});

/** An SDK producer + worker round trip through `gateway` with these TLS settings. */
async function roundTrip(gateway: Gateway, tls: TlsOptions, authToken?: string): Promise<string> {
  const lane = `tls-${Math.random().toString(36).slice(2)}`;
  const common = { address: gateway.grpcAddress, tls, ...(authToken ? { authToken } : {}) };
  const client = await FlowFabricClient.connect(common);
  const worker = await FlowFabricWorker.connect({ ...common, workerId: "tls-worker", lanes: [lane] });
  try {
    void worker.run(async (task) => `secured ${task.inputText()}`);
    const { executionId } = await client.createExecution({ lane, kind: "k", input: "hello" });
    const result = await eventually(() => client.getResult(executionId), (r) => r.state === "completed");
    return Buffer.from(result.result ?? new Uint8Array()).toString();
  } finally {
    await worker.close();
    client.close();
  }
}

/** A Connect client on the HTTPS listener, trusting the test CA (and presenting a client certificate when given). */
function connectClient(gateway: Gateway, authToken?: string, withCert = false) {
  const bearer: Interceptor = (next) => (req) => {
    if (authToken) req.header.set("authorization", `Bearer ${authToken}`);
    return next(req);
  };
  return createClient(ExecutionService, createConnectTransport({
    baseUrl: gateway.httpAddress,
    httpVersion: "1.1",
    interceptors: [bearer],
    nodeOptions: { ca: pki.pem.ca, ...(withCert ? { cert: pki.pem.clientCert, key: pki.pem.clientKey } : {}) },
  }));
}

/** GET /healthz over HTTPS: the status, or the connection error. */
function healthz(gateway: Gateway, withCert: boolean): Promise<number | Error> {
  return new Promise((resolve) => {
    const req = httpsRequest(new URL("/healthz", gateway.httpAddress), {
      ca: pki.pem.ca, ...(withCert ? { cert: pki.pem.clientCert, key: pki.pem.clientKey } : {}),
    }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", resolve);
    req.end();
  });
}

test("over TLS, the SDK client and worker run an execution with a bearer token on the gRPC listener", async () => {
  expect(h.gateway.httpAddress).toMatch(/^https:\/\//);
  expect(await roundTrip(h.gateway, { rootCerts: pki.pem.ca }, TOKEN)).toBe("secured hello");
});

test("over HTTPS, a Connect client creates and describes an execution with a bearer token", async () => {
  const client = connectClient(h.gateway, TOKEN);
  const created = await client.createExecution({ lane: "tls-connect", kind: "k", input: new TextEncoder().encode("x") });
  const described = await client.describeExecution({ executionId: created.executionId });
  expect(described.execution?.executionId).toBe(created.executionId);
  await expect(connectClient(h.gateway).describeExecution({ executionId: created.executionId })).rejects.toMatchObject({ code: 16 }); // Unauthenticated
});

test("a TLS listener refuses a plaintext gRPC client and a client that does not trust its CA", async () => {
  await expect(FlowFabricClient.connect({ address: h.gateway.grpcAddress, authToken: TOKEN, connectTimeoutMs: 1500 }))
    .rejects.toMatchObject({ code: "UNAVAILABLE", reason: "NOT_CONNECTED" });
  await expect(FlowFabricClient.connect({ address: h.gateway.grpcAddress, authToken: TOKEN, tls: {}, connectTimeoutMs: 1500 }))
    .rejects.toMatchObject({ code: "UNAVAILABLE", reason: "NOT_CONNECTED" });
});

test("mTLS: with a client certificate both listeners serve; without one, nothing gets through on either", async () => {
  const withCert: TlsOptions = { rootCerts: pki.pem.ca, certChain: pki.pem.clientCert, privateKey: pki.pem.clientKey };
  expect(await roundTrip(mtls, withCert)).toBe("secured hello");
  expect(await healthz(mtls, true)).toBe(200);
  const created = await connectClient(mtls, undefined, true).createExecution({ lane: "mtls", kind: "k" });
  expect(created.executionId).not.toBe("");

  // No client certificate: the handshake fails, so no call is answered.
  const anonymous = await FlowFabricClient.connect({ address: mtls.grpcAddress, tls: { rootCerts: pki.pem.ca }, connectTimeoutMs: 1500, callTimeoutMs: 1500 })
    .then((c) => c.describeExecution(created.executionId).finally(() => c.close()), (e: unknown) => e);
  expect(anonymous).toMatchObject({ code: "UNAVAILABLE" });
  const refused = await healthz(mtls, false);
  expect(typeof refused).not.toBe("number");
  expect(String((refused as NodeJS.ErrnoException).code)).toMatch(/CERTIFICATE_REQUIRED|ECONNRESET|EPIPE/);
  const connectRefused = await connectClient(mtls).describeExecution({ executionId: created.executionId }).then(() => "answered", (e: unknown) => String(e));
  expect(connectRefused).toMatch(/certificate required|ECONNRESET|socket hang up/i);
});

test("the SDK checks its TLS options, naming the field", async () => {
  await expect(FlowFabricClient.connect({ tls: { certChain: "x" } })).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "tls.certChain" });
  await expect(FlowFabricWorker.connect({ workerId: "w", lanes: ["l"], tls: { rootCerts: "" } })).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "tls.rootCerts" });
});
