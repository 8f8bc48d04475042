import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, createServer } from "node:net";
import { findOnPath, findServerBinary, INSTALL_HINT } from "./server-binary.js";

export interface ServerProcessOptions {
  /** Binary to run; default: valkey-server or redis-server from PATH. */
  readonly binary?: string;
  /** Port to listen on; 0 picks a free loopback port. */
  readonly port: number;
  /** Data folder (AOF lives here when persistence is on). Created if missing. */
  readonly dataDir: string;
  /** Append-only file with fsync every second; off = no persistence at all. */
  readonly persistence: boolean;
  /** How long to wait for the server to answer, in ms. Default 10000. */
  readonly startTimeoutMs?: number;
  /**
   * Password clients must AUTH with (requirepass), passed in a 0600 config file in the data
   * folder — never on the command line, where any local user could read it. Default: none.
   */
  readonly password?: string;
  /**
   * Run in its own process group, so a terminal's Ctrl-C (sent to the whole foreground group)
   * does not stop it before the gateway has drained; the gateway stops it last. Default false.
   */
  readonly detached?: boolean;
}

/** A valkey-server/redis-server child bound to 127.0.0.1. */
export interface ServerProcess {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly binary: string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
  /**
   * Sends SIGTERM now, without waiting (for a process `exit` handler); nothing once the server has
   * exited, so a recycled pid is never signalled.
   */
  terminate(): void;
}

/** Asks the kernel for a free loopback port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Spawns a server bound to 127.0.0.1 and waits until it answers. The child dies with its parent
 * (`setpriv --pdeathsig TERM` when available), and the answering server is checked to be this
 * child (INFO process_id), so a foreign server already on the port is never mistaken for ours.
 */
export async function startServerProcess(opts: ServerProcessOptions): Promise<ServerProcess> {
  const binary = findServerBinary(opts.binary);
  if (!binary) throw new Error(INSTALL_HINT);
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const port = opts.port === 0 ? await freePort() : opts.port;
  const config: string[] = [];
  if (opts.password !== undefined) {
    const file = join(opts.dataDir, "embedded.conf");
    writeFileSync(file, `requirepass ${opts.password}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    config.push(file);
  }
  const args = [
    ...config,
    "--port", String(port), "--bind", "127.0.0.1", "--dir", opts.dataDir, "--daemonize", "no",
    "--save", "", "--protected-mode", "yes", "--loglevel", "warning",
    ...(opts.persistence ? ["--appendonly", "yes", "--appendfsync", "everysec"] : ["--appendonly", "no"]),
  ];
  const setpriv = findOnPath("setpriv");
  const spawnOptions = { stdio: ["ignore", "pipe", "pipe"] as ["ignore", "pipe", "pipe"], detached: opts.detached ?? false };
  const child: ChildProcess = setpriv
    ? spawn(setpriv, ["--pdeathsig", "TERM", binary, ...args], spawnOptions)
    : spawn(binary, args, spawnOptions);
  let output = "";
  child.stdout?.on("data", (d: Buffer) => { output = (output + d.toString()).slice(-4000); });
  child.stderr?.on("data", (d: Buffer) => { output = (output + d.toString()).slice(-4000); });
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => child.once("exit", () => { exited = true; resolve(); }));
  const spawnError = new Promise<never>((_, reject) => child.once("error", reject));
  spawnError.catch(() => undefined);

  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  const url = opts.password === undefined ? `redis://127.0.0.1:${port}` : `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}`;
  for (;;) {
    if (exited) throw new Error(`${binary} exited during start-up:\n${output}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${binary} did not answer on port ${port} within the start timeout:\n${output}`);
    }
    const pid = await probePid(port, opts.password);
    if (pid !== null) {
      if (pid !== child.pid) {
        child.kill("SIGKILL");
        throw new Error(`port ${port} is answered by another server (pid ${pid}), not by our child ${child.pid}`);
      }
      break;
    }
    await Promise.race([new Promise((r) => setTimeout(r, 25)), exitPromise, spawnError]);
  }
  return {
    url,
    port,
    pid: child.pid ?? -1,
    binary,
    terminate() {
      if (!exited) child.kill("SIGTERM");
    },
    async stop() {
      if (exited) return;
      child.kill("SIGTERM");
      const force = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exitPromise;
      clearTimeout(force);
    },
  };
}

/** INFO server process_id of whatever answers on the port (after AUTH when a password is given); null when nothing answers yet. */
function probePid(port: number, password?: string): Promise<number | null> {
  return new Promise((resolve) => {
    let buf = "";
    const socket = connect({ host: "127.0.0.1", port });
    const done = (pid: number | null) => { socket.destroy(); resolve(pid); };
    socket.setTimeout(1000, () => done(null));
    socket.once("error", () => done(null));
    socket.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      const m = /process_id:(\d+)/.exec(buf);
      if (m) done(Number(m[1]));
      else if (buf.startsWith("-") || buf.includes("\r\n-")) done(null); // e.g. -LOADING: not ready yet
    });
    const auth = password === undefined ? "" : `*2\r\n$4\r\nAUTH\r\n$${Buffer.byteLength(password)}\r\n${password}\r\n`;
    socket.write(`${auth}*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n`);
  });
}
