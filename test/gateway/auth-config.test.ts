/** Token configuration, the non-loopback rule, the authenticator and the access table (no server needed, except main.ts's refusal). */
import { once } from "node:events";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DescFile } from "@bufbuild/protobuf";
import { Authenticator, Caller } from "../../gateway/src/auth/caller.js";
import { ACCESS_POLICIES } from "../../gateway/src/auth/policy.js";
import { compileTokens, parseTokenList, sha256Hex } from "../../gateway/src/auth/tokens.js";
import { compileOptions, isLoopback, optionsFromEnv } from "../../gateway/src/config.js";
import { GatewayError } from "../../gateway/src/errors.js";
import { startMain } from "../support/main-process.js";

const SECRET = "s3cret-0123456789abcdef";
const dir = mkdtempSync(join(tmpdir(), "ff-auth-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const errorOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  throw new Error("expected an error");
};

test("FLOWFABRIC_AUTH_TOKENS entries are name:token:roles:namespaces; the secret is hashed and dropped", () => {
  const o = compileOptions(optionsFromEnv({ FLOWFABRIC_AUTH_TOKENS: `api:${SECRET}:producer,operator:acme,beta ;\n ops:other-secret-0123456789:operator:*` }));
  expect(o.authTokens).toEqual([
    { name: "api", sha256: sha256Hex(SECRET), roles: ["producer", "operator"], namespaces: ["acme", "beta"] },
    { name: "ops", sha256: sha256Hex("other-secret-0123456789"), roles: ["operator"], namespaces: ["*"] },
  ]);
  expect(JSON.stringify(o)).not.toContain(SECRET);
  expect(errorOf(() => optionsFromEnv({ FLOWFABRIC_AUTH_TOKENS: `api:${SECRET}:producer` }))).toMatch(/^FLOWFABRIC_AUTH_TOKENS\[0\]: expected name:token:roles:namespaces/);
});

test("FLOWFABRIC_AUTH_FILE is JSON with token or sha256 entries, combined with FLOWFABRIC_AUTH_TOKENS; errors name the variable and file", () => {
  const file = join(dir, "tokens.json");
  writeFileSync(file, JSON.stringify({ tokens: [{ name: "hashed", sha256: sha256Hex(SECRET), roles: ["worker"], namespaces: ["acme"] }] }));
  const o = compileOptions(optionsFromEnv({ FLOWFABRIC_AUTH_FILE: file, FLOWFABRIC_AUTH_TOKENS: "ops:other-secret-0123456789:operator:*" }));
  expect(o.authTokens.map((t) => t.name)).toEqual(["ops", "hashed"]);
  expect(new Authenticator(o.authTokens).authenticate(`Bearer ${SECRET}`).name).toBe("hashed");

  expect(errorOf(() => optionsFromEnv({ FLOWFABRIC_AUTH_FILE: join(dir, "missing.json") }))).toMatch(/^FLOWFABRIC_AUTH_FILE: cannot read .*missing\.json/);
  writeFileSync(file, "{nope");
  expect(errorOf(() => optionsFromEnv({ FLOWFABRIC_AUTH_FILE: file }))).toMatch(/^FLOWFABRIC_AUTH_FILE .*tokens\.json: not valid JSON/);
  writeFileSync(file, JSON.stringify({ tokens: [{ name: "x", token: SECRET, roles: ["boss"], namespaces: ["a"] }] }));
  expect(errorOf(() => optionsFromEnv({ FLOWFABRIC_AUTH_FILE: file }))).toMatch(/tokens\[0\]\.roles\[0\]: must be one of producer, worker, operator, metrics, got "boss"/);
});

test("token specs are checked field by field, and a rejected secret is never echoed", () => {
  const base = { name: "n", token: SECRET, roles: ["worker" as const], namespaces: ["a"] };
  const cases: [object, RegExp][] = [
    [{ ...base, token: "short" }, /^t\[0\]\.token: must be 16\.\.4096 printable ASCII/],
    [{ ...base, token: `${SECRET} x` }, /^t\[0\]\.token:/],
    [{ ...base, sha256: sha256Hex("x") }, /^t\[0\]: give exactly one of token, sha256/],
    [{ name: "n", sha256: "ABC", roles: ["worker"], namespaces: ["a"] }, /^t\[0\]\.sha256: must be 64 lowercase hex digits/],
    [{ ...base, name: "a b" }, /^t\[0\]\.name:/],
    [{ ...base, roles: [] }, /^t\[0\]\.roles: must be a non-empty list/],
    [{ ...base, namespaces: ["a/b"] }, /^t\[0\]\.namespaces\[0\]: must be "\*" or 1\.\.64 characters/],
  ];
  for (const [spec, re] of cases) {
    const message = errorOf(() => compileTokens([spec as never], "t"));
    expect(message).toMatch(re);
    expect(message).not.toContain(SECRET);
  }
  expect(errorOf(() => compileTokens([base, { ...base, token: `${SECRET}-2` }], "t"))).toMatch(/^t\[1\]\.name: "n" is used by another token/);
  expect(errorOf(() => compileTokens([base, { ...base, name: "m" }], "t"))).toMatch(/^t\[1\]: the same secret is configured twice/);
});

test("no tokens on a non-loopback host is refused, naming the variables, unless FLOWFABRIC_ALLOW_INSECURE is set", () => {
  for (const host of ["0.0.0.0", "::", "10.1.2.3", "example.com"]) {
    const message = errorOf(() => compileOptions({ host }));
    expect(message).toContain(`refusing to listen on ${host} (FLOWFABRIC_HOST) without authentication`);
    for (const name of ["FLOWFABRIC_AUTH_TOKENS", "FLOWFABRIC_AUTH_FILE", "FLOWFABRIC_ALLOW_INSECURE=1"]) expect(message).toContain(name);
  }
  expect(compileOptions(optionsFromEnv({ FLOWFABRIC_HOST: "0.0.0.0", FLOWFABRIC_ALLOW_INSECURE: "1" })).allowInsecure).toBe(true);
  expect(compileOptions({ host: "0.0.0.0", authTokens: [{ name: "n", token: SECRET, roles: ["worker"], namespaces: ["a"] }] }).host).toBe("0.0.0.0");
  for (const host of ["127.0.0.1", "127.8.9.10", "localhost", "::1", "[::1]"]) expect(isLoopback(host)).toBe(true);
  expect(errorOf(() => optionsFromEnv({ FLOWFABRIC_ALLOW_INSECURE: "maybe" }))).toMatch(/FLOWFABRIC_ALLOW_INSECURE must be 1 or 0/);
});

test("/metrics is token-protected by default once tokens exist; TLS files go in pairs", () => {
  const tokens = [{ name: "n", token: SECRET, roles: ["metrics" as const], namespaces: ["*"] }];
  expect(compileOptions({}).metricsAuth).toBe("open");
  expect(compileOptions({ authTokens: tokens }).metricsAuth).toBe("token");
  expect(compileOptions(optionsFromEnv({ FLOWFABRIC_METRICS_AUTH: "open", FLOWFABRIC_AUTH_TOKENS: `n:${SECRET}:metrics:*` })).metricsAuth).toBe("open");
  expect(errorOf(() => compileOptions({ metricsAuth: "token" }))).toMatch(/FLOWFABRIC_METRICS_AUTH.*needs tokens/);
  expect(errorOf(() => compileOptions(optionsFromEnv({ FLOWFABRIC_TLS_CERT: "/x.pem" })))).toMatch(/FLOWFABRIC_TLS_CERT.*FLOWFABRIC_TLS_KEY.*set both or neither/);
  expect(errorOf(() => compileOptions(optionsFromEnv({ FLOWFABRIC_TLS_CLIENT_CA: "/ca.pem" })))).toMatch(/FLOWFABRIC_TLS_CLIENT_CA.*needs TLS/);
});

test("the authenticator: missing, malformed and unknown tokens are UNAUTHENTICATED; the scheme is case-insensitive; no tokens means open", () => {
  const authn = new Authenticator(compileTokens([{ name: "w", token: SECRET, roles: ["worker"], namespaces: ["a"] }], "t"));
  for (const header of [undefined, "", SECRET, `Basic ${SECRET}`, "Bearer ", `Bearer ${SECRET}x`]) {
    let err: unknown;
    try {
      authn.authenticate(header);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ reason: "UNAUTHENTICATED", field: "authorization" });
    expect((err as Error).message).not.toContain(SECRET);
  }
  const caller = authn.authenticate(`bearer ${SECRET}`);
  expect(caller).toMatchObject({ name: "w", allNamespaces: false });
  expect(caller.mayUse("a")).toBe(true);
  expect(caller.mayUse("b")).toBe(false);
  expect(new Authenticator([]).authenticate(undefined)).toBe(Caller.OPEN);
});

test("the access table has a row for every RPC of every generated service", async () => {
  const genDir = join(__dirname, "../../sdk-ts/src/gen/flowfabric/v1");
  const paths: string[] = [];
  for (const file of readdirSync(genDir).filter((f) => f.endsWith("_pb.ts"))) {
    const mod = (await import(join(genDir, file))) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      const desc = value as Partial<DescFile>;
      if (desc.kind !== "file") continue;
      for (const service of desc.services ?? []) for (const m of service.methods) paths.push(`/${service.typeName}/${m.name}`);
    }
  }
  expect(paths.length).toBeGreaterThanOrEqual(16);
  expect(paths.filter((p) => !ACCESS_POLICIES.has(p))).toEqual([]);
});

test("npm start on 0.0.0.0 without tokens exits 1 with a message naming the variables", async () => {
  const main = startMain({ FLOWFABRIC_HOST: "0.0.0.0", FLOWFABRIC_AUTH_TOKENS: "", FLOWFABRIC_AUTH_FILE: "", FLOWFABRIC_ALLOW_INSECURE: "" });
  const [code] = (await once(main.child, "exit")) as [number | null];
  expect(code).toBe(1);
  expect(main.output()).toMatch(/refusing to listen on 0\.0\.0\.0 \(FLOWFABRIC_HOST\) without authentication.*FLOWFABRIC_AUTH_TOKENS.*FLOWFABRIC_AUTH_FILE.*FLOWFABRIC_ALLOW_INSECURE=1/s);
}, 30_000);
