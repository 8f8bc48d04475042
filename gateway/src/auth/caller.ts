import { createHash, timingSafeEqual } from "node:crypto";
import { GatewayError, Reason } from "../errors.js";
import { ALL_NAMESPACES, ROLES, type Role, type TokenSpec } from "./tokens.js";

/** Who is calling: the token's name, roles and namespaces (or, with auth off, anyone). */
export class Caller {
  /** Every caller of a gateway without tokens: all roles, all namespaces; audited as "operator". */
  static readonly OPEN = new Caller("operator", ROLES, [ALL_NAMESPACES]);

  readonly roles: ReadonlySet<Role>;
  private readonly namespaces: ReadonlySet<string>;
  /** True when the caller may act in every namespace (no per-execution lookups needed). */
  readonly allNamespaces: boolean;

  constructor(readonly name: string, roles: readonly Role[], namespaces: readonly string[]) {
    this.roles = new Set(roles);
    this.namespaces = new Set(namespaces);
    this.allNamespaces = this.namespaces.has(ALL_NAMESPACES);
  }

  mayUse(namespace: string): boolean {
    return this.allNamespaces || this.namespaces.has(namespace);
  }

  /** PERMISSION_DENIED unless the caller holds one of `roles`. */
  requireRole(roles: readonly Role[], what: string): void {
    if (roles.some((r) => this.roles.has(r))) return;
    throw new GatewayError(Reason.PERMISSION_DENIED, `token "${this.name}" may not call ${what}: it needs the role ${roles.join(" or ")}`, "", {
      token: this.name, required_roles: roles.join(","),
    });
  }

  /** PERMISSION_DENIED naming `field` unless the caller may act in `namespace`. */
  requireNamespace(namespace: string, field: string): void {
    if (this.mayUse(namespace)) return;
    throw namespaceDenied(this.name, namespace, field);
  }
}

export function namespaceDenied(who: string, namespace: string, field: string): GatewayError {
  return new GatewayError(Reason.PERMISSION_DENIED, `${field}: ${who} may not act in namespace "${namespace}"`, field, { namespace });
}

/**
 * Turns the `authorization` header into a Caller. The presented token is hashed and compared
 * with every configured digest by `timingSafeEqual`, without stopping at a match, so the time
 * taken says nothing about the secrets. With no tokens configured everyone is {@link Caller.OPEN}.
 */
export class Authenticator {
  private readonly entries: readonly { readonly digest: Buffer; readonly caller: Caller }[];

  constructor(tokens: readonly TokenSpec[]) {
    this.entries = tokens.map((t) => ({ digest: Buffer.from(t.sha256 ?? "", "hex"), caller: new Caller(t.name, t.roles, t.namespaces) }));
  }

  /** True when tokens are configured (calls must carry one). */
  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /** UNAUTHENTICATED for a missing, malformed or unknown token. The token never appears in errors. */
  authenticate(authorization: string | undefined): Caller {
    if (!this.enabled) return Caller.OPEN;
    if (authorization === undefined || authorization === "") {
      throw unauthenticated("missing bearer token: send the header authorization: Bearer <token>");
    }
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    if (!m) throw unauthenticated("the authorization header must be \"Bearer <token>\"");
    const digest = createHash("sha256").update(m[1]!, "utf8").digest();
    let found: Caller | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(digest, e.digest)) found = e.caller;
    }
    if (!found) throw unauthenticated("unknown bearer token");
    return found;
  }
}

function unauthenticated(message: string): GatewayError {
  return new GatewayError(Reason.UNAUTHENTICATED, message, "authorization");
}
