/**
 * The Python SDK (sdk-python/, import name `flowfabric`): its own unittest suite against real
 * gateways, run here so `npm test` fails when it fails, plus the drift check of its generated stubs.
 *
 * - interpreter: /usr/bin/python3 (Debian's python3-grpcio/python3-protobuf live there; override
 *   with FLOWFABRIC_PYTHON);
 * - the suite (sdk-python/tests) starts its gateways itself: `node --import tsx gateway/src/main.ts`
 *   with an embedded redis-server in a temporary data folder, on free loopback ports
 *   (sdk-python/tests/harness.py); FLOWFABRIC_NODE is this jest's node;
 * - the test passes only if unittest ran every expected test, none skipped, and exited 0.
 */
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";

const ROOT = join(__dirname, "..", "..");
const PYTHON = process.env["FLOWFABRIC_PYTHON"] || "/usr/bin/python3";
const SDK = join(ROOT, "sdk-python");
/** Tests in sdk-python/tests; the run must report exactly this many. */
const EXPECTED_TESTS = 19;

test("the committed Python stubs match proto/ (sdk-python/generate.sh --check)", () => {
  const r = spawnSync("bash", [join(SDK, "generate.sh"), "--check"], { cwd: ROOT, encoding: "utf8" });
  expect(`${r.stdout}${r.stderr}`).toContain("up to date");
  expect(r.status).toBe(0);
});

test("the Python SDK's unittest suite passes against real gateways", async () => {
  const child = spawn(PYTHON, ["-m", "unittest", "discover", "-v", "-s", join(SDK, "tests"), "-t", join(SDK, "tests")], {
    cwd: ROOT,
    env: { ...process.env, PYTHONPATH: `${join(SDK, "src")}:${join(SDK, "tests")}`, FLOWFABRIC_NODE: process.execPath, PYTHONDONTWRITEBYTECODE: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => { output += d.toString(); });
  child.stderr!.on("data", (d: Buffer) => { output += d.toString(); });
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  const ranMatch = /Ran (\d+) tests? in/.exec(output);
  const ran = ranMatch ? Number(ranMatch[1]) : 0;
  const skipped = output.split("\n").some((l) => / \.\.\. skipped/.test(l));
  // unittest's own report (which test failed, with its traceback) is the failure message.
  if (code !== 0 || ran !== EXPECTED_TESTS || skipped) {
    throw new Error(`unittest exited ${code}, ran ${ran} of ${EXPECTED_TESTS} tests${skipped ? ", some skipped" : ""}:\n${output.slice(-12000)}`);
  }
  expect({ code, ran, skipped }).toEqual({ code: 0, ran: EXPECTED_TESTS, skipped: false });
}, 900_000);
