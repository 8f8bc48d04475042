/**
 * Interop: the Python SDK (sdk-python, grpcio) against a gateway with bearer tokens: a worker and
 * a client with a token of namespace "acme" run an execution; an unknown
 * token is UNAUTHENTICATED and another namespace's execution PERMISSION_DENIED, as seen from
 * Python. Interpreter: /usr/bin/python3 (override with FLOWFABRIC_PYTHON), PYTHONPATH=sdk-python/src.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { FlowFabricClient } from "../../sdk-ts/src/index.js";
import { startHarness, type Harness } from "../support/gateway.js";

const ROOT = join(__dirname, "..", "..");
const PYTHON = process.env["FLOWFABRIC_PYTHON"] || "/usr/bin/python3";
const TOKEN = "python-acme-0123456789abcdef";
const BETA = "python-beta-0123456789abcdef";

const SCRIPT = String.raw`
import json, sys, time, flowfabric
address, token, foreign = sys.argv[1:4]
worker = flowfabric.Worker(address, lanes=["py-auth"], namespace="acme", auth_token=token,
                           worker_id="py-auth", max_concurrent_tasks=2, handle_signals=False,
                           on_event=lambda name, fields: print(name, fields, file=sys.stderr, flush=True))
worker.start(lambda task: b"py:" + task.input, wait_welcome_s=45)
client = flowfabric.Client(address, namespace="acme", auth_token=token)
created = client.create_execution("py-auth", "k", b"hi")
deadline = time.monotonic() + 45
while True:
    result = client.get_result(created.execution_id)
    if result.state == "completed" or time.monotonic() > deadline:
        break
    time.sleep(0.05)
out = {"state": result.state, "result": (result.result or b"").decode()}
def code_of(fn):
    try:
        fn()
        return "OK"
    except flowfabric.FlowFabricError as err:
        return f"{err.code}/{err.reason}/{err.field or ''}"
bad = flowfabric.Client(address, namespace="acme", auth_token="unknown-0123456789abcdef")
out["unknown_token"] = code_of(lambda: bad.describe_execution(created.execution_id))
out["foreign"] = code_of(lambda: client.describe_execution(foreign))
worker.stop(0)
print(json.dumps(out), flush=True)
`;

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    authTokens: [
      { name: "py-acme", token: TOKEN, roles: ["producer", "worker"], namespaces: ["acme"] },
      { name: "ts-beta", token: BETA, roles: ["producer"], namespaces: ["beta"] },
    ],
  });
});
afterAll(async () => {
  await h.stop();
});

test("a Python worker and client with a token run an execution; a wrong token and another namespace are refused", async () => {
  const beta = await FlowFabricClient.connect({ address: h.gateway.grpcAddress, authToken: BETA, namespace: "beta" });
  const foreign = (await beta.createExecution({ lane: "elsewhere", kind: "k" })).executionId;
  beta.close();
  const child = spawn(PYTHON, ["-c", SCRIPT, h.gateway.grpcAddress, TOKEN, foreign], {
    cwd: ROOT, env: { ...process.env, PYTHONPATH: join(ROOT, "sdk-python", "src"), PYTHONDONTWRITEBYTECODE: "1" }, stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on("data", (d: Buffer) => { stderr += d.toString(); });
  const [code] = (await once(child, "exit")) as [number | null];
  expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
  expect(JSON.parse(stdout.trim().split("\n").pop()!)).toEqual({
    state: "completed",
    result: "py:hi",
    unknown_token: "UNAUTHENTICATED/UNAUTHENTICATED/authorization",
    foreign: "PERMISSION_DENIED/PERMISSION_DENIED/execution_id",
  });
}, 120_000);
