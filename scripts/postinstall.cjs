#!/usr/bin/env node
/*
 * FlowFabric postinstall: make sure a valkey-server or redis-server binary exists for the embedded
 * default mode (`npm start` without VALKEY_URL) and for the tests, which start their own server; and
 * that the Python tests (`npm test` runs examples/python-worker and the sdk-python suite) find
 * grpcio, protobuf, protoc, venv, setuptools and wheel.
 *
 * - A binary on PATH (valkey-server, redis-server) or an executable VALKEY_SERVER_BIN: nothing to do.
 * - Missing pieces, running as root on Debian/Ubuntu with apt-get, FLOWFABRIC_SKIP_SERVER_INSTALL
 *   unset: `apt-get update` then one `apt-get install -y <missing packages>` (output streamed).
 * - Otherwise, or when apt fails: print the exact command to run. Never fails the npm install.
 *
 * Debian's redis-server package may start its own service on port 6379. That server is never used
 * by the embedded mode: the gateway spawns its own child on its own port and checks that the server
 * answering is that child (INFO process_id).
 *
 * Plain CommonJS, no dependencies: this runs before anything else is known to work.
 */
"use strict";

const { accessSync, constants, existsSync, statSync } = require("node:fs");
const { delimiter, join } = require("node:path");
const { spawnSync } = require("node:child_process");

const SERVER_BINARIES = ["valkey-server", "redis-server"];
const SERVER_PACKAGE = "redis-server";
/** Debian packages the Python interop tests need, each with the probe that says it is present. */
const PYTHON_PACKAGES = [
  { pkg: "python3-grpcio", present: () => pythonImports("grpc") },
  { pkg: "python3-protobuf", present: () => pythonImports("google.protobuf") },
  { pkg: "protobuf-compiler", present: () => findOnPath("protoc") !== null },
  // The Python SDK's install test: `python3 -m venv --system-site-packages` + an offline
  // `pip install --no-build-isolation ./sdk-python` (setuptools and wheel from Debian).
  { pkg: "python3-venv", present: () => pythonImports("ensurepip") },
  { pkg: "python3-setuptools", present: () => pythonImports("setuptools") },
  { pkg: "python3-wheel", present: () => pythonImports("wheel") },
];
const APT_TIMEOUT_MS = 15 * 60 * 1000;

function log(msg) {
  process.stdout.write(`[flowfabric postinstall] ${msg}\n`);
}

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function findOnPath(name) {
  for (const dir of (process.env.PATH || "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

/** The server binary the gateway would use, or null. */
function findServer() {
  const explicit = process.env.VALKEY_SERVER_BIN;
  if (explicit) {
    if (isExecutable(explicit)) return explicit;
    log(`VALKEY_SERVER_BIN=${explicit} is not an executable file; looking on PATH instead.`);
  }
  for (const name of SERVER_BINARIES) {
    const found = findOnPath(name);
    if (found) return found;
  }
  return null;
}

/** Debian's packages install into the system interpreter, which the interop tests also use. */
function pythonImports(module) {
  const python = process.env.FLOWFABRIC_PYTHON || "/usr/bin/python3";
  if (!isExecutable(python)) return false;
  return spawnSync(python, ["-c", `import ${module}`], { stdio: "ignore" }).status === 0;
}

function printManualHint(packages, reason) {
  const needsServer = packages.includes(SERVER_PACKAGE);
  if (needsServer) {
    log(`No valkey-server or redis-server binary found${reason ? ` (${reason})` : ""}.`);
    log("The embedded mode of `npm start` and the tests need one.");
  } else {
    log(`The Python interop tests need ${packages.join(", ")}${reason ? ` (${reason})` : ""}.`);
  }
  log("Install with:");
  log("");
  log(`    sudo apt-get install -y ${packages.join(" ")}`);
  log("");
  if (needsServer) {
    log("or set VALKEY_SERVER_BIN=/path/to/valkey-server, or point VALKEY_URL=redis://host:port");
    log("at an existing Valkey >= 7.2 / Redis >= 7.0 server.");
  }
}

/** Runs a command with its output streamed; true on exit code 0. */
function run(cmd, args, env) {
  log(`$ ${cmd} ${args.join(" ")}`);
  const res = spawnSync(cmd, args, {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, ...env },
    timeout: APT_TIMEOUT_MS,
  });
  if (res.error) {
    log(`${cmd} could not run: ${res.error.message}`);
    return false;
  }
  if (res.status !== 0) {
    log(`${cmd} exited with ${res.status === null ? `signal ${res.signal}` : `code ${res.status}`}.`);
    return false;
  }
  return true;
}

function main() {
  const server = findServer();
  if (server) log(`Using server binary ${server}.`);
  const missing = [
    ...(server ? [] : [SERVER_PACKAGE]),
    ...PYTHON_PACKAGES.filter((p) => !p.present()).map((p) => p.pkg),
  ];
  if (missing.length === 0) return;

  if (process.env.FLOWFABRIC_SKIP_SERVER_INSTALL) {
    printManualHint(missing, "FLOWFABRIC_SKIP_SERVER_INSTALL is set, not installing");
    return;
  }
  const isDebian = existsSync("/etc/debian_version");
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const aptGet = findOnPath("apt-get");
  if (!isDebian || !isRoot || !aptGet) {
    const why = !isDebian ? "not Debian/Ubuntu" : !isRoot ? "not running as root" : "apt-get not found";
    printManualHint(missing, `${why}: not installing automatically`);
    return;
  }

  log(`Installing ${missing.join(", ")} with apt-get (root, Debian/Ubuntu).`);
  log("Set FLOWFABRIC_SKIP_SERVER_INSTALL=1 to skip this step.");
  const aptEnv = { DEBIAN_FRONTEND: "noninteractive" };
  // A failed update (one unreachable source) may still leave usable lists: try the install anyway.
  if (!run(aptGet, ["update"], aptEnv)) log("apt-get update failed; trying the install with the lists at hand.");
  const ok = run(aptGet, ["install", "-y", ...missing], aptEnv);
  const after = findServer();
  if (after && !server) log(`Installed ${after}.`);
  const still = [
    ...(after ? [] : [SERVER_PACKAGE]),
    ...PYTHON_PACKAGES.filter((p) => !p.present()).map((p) => p.pkg),
  ];
  if (still.length > 0) {
    printManualHint(still, ok ? "apt-get finished but they are still missing" : "automatic installation failed");
  }
}

try {
  main();
} catch (err) {
  log(`unexpected error (ignored): ${err && err.stack ? err.stack : err}`);
}
process.exit(0);
