import { createHash } from "node:crypto";

/**
 * Bearer tokens as configured (docs/security.md): each has a name, the secret (or its SHA-256),
 * roles, and the namespaces it may act in. Compiled once in config.ts: the secret is hashed and
 * dropped, so nothing downstream ever holds it.
 */

/** Roles a token may hold. What each role may call is the table in auth/policy.ts. */
export const ROLES = ["producer", "worker", "operator", "metrics"] as const;
export type Role = (typeof ROLES)[number];

/** The namespace grant meaning every namespace. */
export const ALL_NAMESPACES = "*";

/** One bearer token. Configured with `token` or `sha256`; compiled, only `sha256` is left. */
export interface TokenSpec {
  /** Who holds it (audit fields such as `cancelled_by`, logs); never the secret. */
  readonly name: string;
  /** The secret: 16..4096 printable ASCII characters without spaces. Compiled away. */
  readonly token?: string;
  /** Lowercase hex SHA-256 of the secret, for configuration files that must hold no plaintext. */
  readonly sha256?: string;
  /** At least one of {@link ROLES}. */
  readonly roles: readonly Role[];
  /** Namespaces it may act in; `"*"` grants every namespace. */
  readonly namespaces: readonly string[];
}

const NAME = /^[A-Za-z0-9._:@-]{1,128}$/;
const SECRET = /^[\x21-\x7e]{16,4096}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const NAMESPACE = /^[A-Za-z0-9._-]{1,64}$/;
const MIN_SECRET = 16;

/** Hex SHA-256 of a secret. */
export function sha256Hex(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/**
 * Validates token specs (from `source`, e.g. "FLOWFABRIC_AUTH_TOKENS" or a file path, named in
 * every error) and compiles them: secrets hashed, lists deduplicated, everything frozen.
 */
export function compileTokens(specs: readonly TokenSpec[], source: string): readonly TokenSpec[] {
  const names = new Set<string>();
  const digests = new Set<string>();
  const out = specs.map((spec, i) => {
    const at = `${source}[${i}]`;
    if (typeof spec !== "object" || spec === null) throw new Error(`${at}: must be an object with name, token (or sha256), roles, namespaces`);
    if (typeof spec.name !== "string" || !NAME.test(spec.name)) throw new Error(`${at}.name: must be 1..128 characters of [A-Za-z0-9._:@-]`);
    if (names.has(spec.name)) throw new Error(`${at}.name: "${spec.name}" is used by another token`);
    names.add(spec.name);
    if ((spec.token === undefined) === (spec.sha256 === undefined)) throw new Error(`${at}: give exactly one of token, sha256`);
    if (spec.token !== undefined && (typeof spec.token !== "string" || !SECRET.test(spec.token))) {
      throw new Error(`${at}.token: must be ${MIN_SECRET}..4096 printable ASCII characters without spaces (e.g. openssl rand -hex 32)`);
    }
    if (spec.sha256 !== undefined && (typeof spec.sha256 !== "string" || !SHA256.test(spec.sha256))) {
      throw new Error(`${at}.sha256: must be 64 lowercase hex digits (sha256sum of the token)`);
    }
    const sha256 = spec.token !== undefined ? sha256Hex(spec.token) : spec.sha256!;
    if (digests.has(sha256)) throw new Error(`${at}: the same secret is configured twice`);
    digests.add(sha256);
    return Object.freeze({
      name: spec.name,
      sha256,
      roles: Object.freeze(list(spec.roles, `${at}.roles`, (r) => (ROLES as readonly string[]).includes(r), `one of ${ROLES.join(", ")}`) as Role[]),
      namespaces: Object.freeze(list(spec.namespaces, `${at}.namespaces`, (n) => n === ALL_NAMESPACES || NAMESPACE.test(n), `"*" or 1..64 characters of [A-Za-z0-9._-]`)),
    });
  });
  return Object.freeze(out);
}

function list(values: unknown, field: string, ok: (v: string) => boolean, what: string): string[] {
  if (!Array.isArray(values) || values.length === 0) throw new Error(`${field}: must be a non-empty list`);
  values.forEach((v, i) => {
    if (typeof v !== "string" || !ok(v)) throw new Error(`${field}[${i}]: must be ${what}, got ${JSON.stringify(v)}`);
  });
  return [...new Set(values as string[])];
}

/**
 * `FLOWFABRIC_AUTH_TOKENS`: entries `name:token:roles:namespaces` separated by `;` or whitespace,
 * roles and namespaces comma-separated, e.g.
 * `billing-api:3f9c…:producer:billing; ops:a71e…:operator:*`.
 */
export function parseTokenList(text: string, source: string): TokenSpec[] {
  return text.split(/[;\s]+/).filter((e) => e !== "").map((entry, i) => {
    const parts = entry.split(":");
    if (parts.length !== 4) throw new Error(`${source}[${i}]: expected name:token:roles:namespaces (roles and namespaces comma-separated), got ${parts.length} part(s)`);
    const [name, token, roles, namespaces] = parts as [string, string, string, string];
    return { name, token, roles: roles.split(",").filter((r) => r !== "") as Role[], namespaces: namespaces.split(",").filter((n) => n !== "") };
  });
}

/** `FLOWFABRIC_AUTH_FILE`: JSON `{"tokens": [{name, token | sha256, roles, namespaces}, …]}`. */
export function parseTokenFile(text: string, source: string): TokenSpec[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const tokens = (doc as { tokens?: unknown } | null)?.tokens;
  if (typeof doc !== "object" || doc === null || !Array.isArray(tokens)) throw new Error(`${source}: expected {"tokens": [...]}`);
  const unknown = Object.keys(doc).filter((k) => k !== "tokens");
  if (unknown.length > 0) throw new Error(`${source}: unknown field ${unknown[0]}`);
  return tokens as TokenSpec[];
}
