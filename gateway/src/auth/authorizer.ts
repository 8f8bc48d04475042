import type { IncomingMessage, ServerResponse } from "node:http";
import type { EngineBackend } from "../engine/backend.js";
import { GatewayError, Reason } from "../errors.js";
import * as v from "../rpc/validate.js";
import { Authenticator, Caller, namespaceDenied } from "./caller.js";
import { ACCESS_POLICIES } from "./policy.js";
import type { Role, TokenSpec } from "./tokens.js";

/** Execution namespaces remembered (an execution's namespace never changes). */
const NAMESPACE_CACHE_MAX = 100_000;

/** Header getter of a call (grpc-js Metadata or fetch Headers). */
export type HeaderGetter = (name: string) => string | undefined;

/**
 * The gateway's one access check, applied by both listeners before a handler runs and by the
 * Session: authenticates the bearer token, looks the RPC up in the access table
 * (auth/policy.ts), checks the role, the namespaces the request names, and the namespace of
 * every execution it names. Without tokens every call is {@link Caller.OPEN} and nothing is looked up.
 */
export class Authorizer {
  private readonly authn: Authenticator;
  private readonly namespaces = new Map<string, string>();

  constructor(tokens: readonly TokenSpec[], private readonly engine: Pick<EngineBackend, "namespaceOf">, private readonly limits: v.Limits) {
    this.authn = new Authenticator(tokens);
  }

  /** True when tokens are configured. */
  get enabled(): boolean {
    return this.authn.enabled;
  }

  /** The caller of a call with these headers (UNAUTHENTICATED when its token is missing or unknown). */
  authenticate(header: HeaderGetter): Caller {
    return this.authn.authenticate(header("authorization"));
  }

  /** Authenticates and authorizes one call of the RPC at `path` with `request`; resolves to its caller. */
  async authorize(path: string, request: unknown, header: HeaderGetter): Promise<Caller> {
    const caller = this.authenticate(header);
    if (caller === Caller.OPEN) return caller;
    const policy = ACCESS_POLICIES.get(path);
    if (!policy) throw new GatewayError(Reason.PERMISSION_DENIED, `no access policy for ${path}`);
    caller.requireRole(policy.roles, path);
    for (const [field, ns] of policy.namespaces?.(request) ?? []) caller.requireNamespace(v.namespaceOf(ns, field), field);
    if (!caller.allNamespaces) {
      for (const [field, id] of policy.executions?.(request) ?? []) {
        const ns = await this.executionNamespace(id, field);
        if (!caller.mayUse(ns)) throw namespaceDenied(`token "${caller.name}"`, ns, field);
      }
    }
    return caller;
  }

  /**
   * The caller of a stream opened at `path` whose requests are checked as they come (the worker
   * Session): token and role only, synchronously, before anything is read from the stream.
   */
  authorizeStream(path: string, header: HeaderGetter): Caller {
    const caller = this.authenticate(header);
    if (caller === Caller.OPEN) return caller;
    const policy = ACCESS_POLICIES.get(path);
    if (!policy) throw new GatewayError(Reason.PERMISSION_DENIED, `no access policy for ${path}`);
    caller.requireRole(policy.roles, path);
    return caller;
  }

  /**
   * PERMISSION_DENIED naming `field` unless execution `id` belongs to `namespace` (a Session's
   * operations and lease adoptions stay in the Hello's namespace).
   */
  async requireExecutionIn(id: string, field: string, namespace: string): Promise<void> {
    const ns = await this.executionNamespace(id, field);
    if (ns !== namespace) throw namespaceDenied(`a session of namespace "${namespace}"`, ns, field);
  }

  /** The namespace of execution `id` (INVALID_ARGUMENT for a malformed id, NOT_FOUND for an unknown one). */
  async executionNamespace(id: string, field: string): Promise<string> {
    const known = this.namespaces.get(id);
    if (known !== undefined) return known;
    v.executionIdOf(id, field, this.limits);
    const ns = await this.engine.namespaceOf(id);
    if (ns === undefined) throw new GatewayError(Reason.NOT_FOUND, `${field}: no execution ${id}`, field, { executionId: id });
    if (this.namespaces.size >= NAMESPACE_CACHE_MAX) this.namespaces.delete(this.namespaces.keys().next().value!);
    this.namespaces.set(id, ns);
    return ns;
  }
}

/**
 * A plain HTTP route (`GET /metrics`) behind a bearer token with one of `roles`: 401 with
 * `www-authenticate: Bearer` when the token is missing or unknown, 403 for a token without the role.
 */
export function tokenProtected(auth: Authorizer, roles: readonly Role[], what: string, route: (req: IncomingMessage, res: ServerResponse) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    try {
      auth.authenticate((name) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v[0] : v;
      }).requireRole(roles, what);
    } catch (err) {
      const ge = GatewayError.from(err);
      const status = ge.reason === Reason.UNAUTHENTICATED ? 401 : 403;
      res.writeHead(status, { "content-type": "application/json", ...(status === 401 ? { "www-authenticate": 'Bearer realm="flowfabric"' } : {}) });
      res.end(JSON.stringify({ code: ge.reason.toLowerCase(), message: ge.message }));
      return;
    }
    route(req, res);
  };
}
