/** What a handler knows about its caller, whichever transport carried the call. */
export interface CallContext {
  /** W3C traceparent from the request metadata; empty when absent. */
  readonly traceparent: string;
  readonly tracestate: string;
  /** Who is calling, for audit fields (e.g. cancelled_by). */
  readonly principal: string;
}

/** Builds a CallContext from a header getter (grpc-js Metadata or fetch Headers). */
export function callContext(get: (name: string) => string | undefined): CallContext {
  return {
    traceparent: get("traceparent") ?? "",
    tracestate: get("tracestate") ?? "",
    principal: "operator",
  };
}
