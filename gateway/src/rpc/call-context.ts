import type { Authorizer, HeaderGetter } from "../auth/authorizer.js";
import type { Caller } from "../auth/caller.js";

/** What a handler knows about its caller, whichever transport carried the call. */
export interface CallContext {
  /** W3C traceparent from the request metadata; empty when absent. */
  readonly traceparent: string;
  readonly tracestate: string;
  /** Who is calling, for audit fields (e.g. cancelled_by): the token's name, or "operator" without auth. */
  readonly principal: string;
  /** The authenticated caller (roles, namespaces). */
  readonly caller: Caller;
}

/**
 * The one entry of every unary and server-streaming call on both listeners: authenticates and
 * authorizes it (auth/policy.ts) and builds its CallContext. Throws UNAUTHENTICATED or
 * PERMISSION_DENIED before the handler runs.
 */
export async function callContext(auth: Authorizer, path: string, request: unknown, get: HeaderGetter): Promise<CallContext> {
  const caller = await auth.authorize(path, request, get);
  return { ...traceHeaders(get), principal: caller.name, caller };
}

/** The W3C trace headers of a call. */
export function traceHeaders(get: HeaderGetter): Pick<CallContext, "traceparent" | "tracestate"> {
  return { traceparent: get("traceparent") ?? "", tracestate: get("tracestate") ?? "" };
}

/** What {@link unaryCall} needs of the gateway's services. */
export interface CallServices {
  readonly auth: Authorizer;
  readonly telemetry: { rpc<T>(path: string, request: unknown, trace: Pick<CallContext, "traceparent" | "tracestate">, fn: () => Promise<T>): Promise<T> };
}

/** One unary call on either listener: its span, then the access check, then the handler. */
export function unaryCall<Req, Res>(services: CallServices, path: string, request: Req, get: HeaderGetter, fn: (req: Req, ctx: CallContext) => Promise<Res>): Promise<Res> {
  return services.telemetry.rpc(path, request, traceHeaders(get), async () => fn(request, await callContext(services.auth, path, request, get)));
}
