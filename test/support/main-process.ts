import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { createInterface } from "node:readline";

/** `npm start`'s entry point (gateway/src/main.ts) in a child process, as deployed. */
export const MAIN = resolve(__dirname, "../../gateway/src/main.ts");
/** The `flowfabric-gateway` executable: the compiled main.ts (gateway/dist), after `npm run build`. */
export const GATEWAY_BIN = resolve(__dirname, "../../gateway/bin/flowfabric-gateway.cjs");

export interface MainProcess {
  readonly child: ChildProcess;
  /** Its stdout, line by line. */
  readonly lines: AsyncIterableIterator<string>;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
}

/**
 * Starts main.ts with `env` over this process's environment (ports 0 and no VALKEY_URL unless
 * given): from its source through tsx, or with `compiled` the built executable with plain node.
 * `detached`: in its own process group (pid = group id), as a terminal runs it, so a test can send
 * the group a Ctrl-C.
 */
export function startMain(env: Record<string, string>, { compiled = false, detached = false } = {}): MainProcess {
  const child = spawn(process.execPath, compiled ? [GATEWAY_BIN] : ["--import", "tsx", MAIN], {
    env: { ...process.env, VALKEY_URL: "", FLOWFABRIC_GRPC_PORT: "0", FLOWFABRIC_HTTP_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached,
  });
  let all = "";
  child.stderr!.on("data", (d: Buffer) => { all += d.toString(); });
  const rl = createInterface({ input: child.stdout! });
  rl.on("line", (l) => { all += `${l}\n`; });
  return { child, lines: rl[Symbol.asyncIterator](), output: () => all };
}

/** The first line matching `re`. */
export async function lineMatching(lines: AsyncIterableIterator<string>, re: RegExp): Promise<RegExpExecArray> {
  for await (const line of lines) {
    const m = re.exec(line);
    if (m) return m;
  }
  throw new Error(`no line matched ${re}`);
}

/** The JSON log lines main.ts wrote so far whose `msg` is `msg`. */
export function logLines(main: MainProcess, msg: string): Record<string, unknown>[] {
  return main.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l["msg"] === msg);
}

/** The gRPC address main.ts prints once it serves. */
export async function grpcAddressOf(main: MainProcess): Promise<string> {
  return (await lineMatching(main.lines, /gRPC \(workers, gRPC clients\):\s+(\S+)/))[1]!;
}
