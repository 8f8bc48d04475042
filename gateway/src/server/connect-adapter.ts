import type { IncomingMessage, ServerResponse } from "node:http";
import { Code, ConnectError, createConnectRouter, type ConnectRouter, type ConnectRouterOptions, type ContextValues } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { createAsyncIterable, encodeEnvelope, readAllBytes, type UniversalHandler, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import { errorFromJsonBytes, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { GatewayError } from "../errors.js";
import type { Logger } from "../logger.js";
import { connectError } from "./connect-error.js";

/**
 * connect-node's adapter, with one correction: connect-es answers a request body that is not a
 * valid protobuf message with INTERNAL ("parse binary: …", HTTP 500), a condition the caller
 * caused. For unary RPCs (Connect binary and gRPC-Web) that answer is rewritten to
 * INVALID_ARGUMENT naming `message`, as the gRPC listener answers; everything else passes through.
 */
export interface ConnectAdapterOptions extends ConnectRouterOptions {
  routes(router: ConnectRouter): void;
  contextValues?: (req: IncomingMessage) => ContextValues;
}

const PARSE_ERROR = /^(\[internal\] )?parse binary: /;

export function connectAdapter(options: ConnectAdapterOptions, log: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  const router = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options });
  options.routes(router);
  const paths = new Map<string, UniversalHandler>();
  for (const handler of router.handlers) {
    const input = handler.method.input.typeName;
    paths.set(handler.requestPath, handler.method.methodKind === "unary" ? refusingUndecodable(handler, input, log) : handler);
  }
  return (req, res) => {
    const handler = paths.get((req.url ?? "").split("?", 2)[0] ?? "");
    if (!handler) {
      res.writeHead(404).end();
      return;
    }
    const uReq = universalRequestFromNodeRequest(req, res, undefined, options.contextValues?.(req));
    handler(uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
  };
}

function undecodable(input: string, why: string, log: Logger) {
  return connectError(GatewayError.invalid("message", `is not a valid ${input} message (${why.replace(PARSE_ERROR, "").slice(0, 200)})`), log);
}

/** A unary handler whose "parse binary" INTERNAL answers become INVALID_ARGUMENT (Connect and gRPC-Web). */
function refusingUndecodable(handler: UniversalHandler, input: string, log: Logger): UniversalHandler {
  const wrapped = async (req: Parameters<UniversalHandler>[0]): Promise<UniversalServerResponse> => {
    const res = await handler(req);
    const type = res.header?.get("content-type") ?? "";
    if (res.status === 500 && type.startsWith("application/json") && res.body) {
      const bytes = await readAllBytes(res.body, Number.MAX_SAFE_INTEGER);
      const err = errorFromJsonBytes(bytes, undefined, new ConnectError("unparseable error body", Code.Internal));
      if (!PARSE_ERROR.test(err.rawMessage)) return { ...res, body: createAsyncIterable([bytes]) };
      const refused = undecodable(input, err.rawMessage, log);
      const body = errorToJsonBytes(refused, {});
      const header = new Headers(res.header);
      refused.metadata.forEach((value, key) => header.set(key, value));
      header.set("content-length", String(body.byteLength));
      return { status: 400, header, body: createAsyncIterable([body]) };
    }
    if (type.startsWith("application/grpc-web") && !type.includes("text") && res.body) {
      const bytes = await readAllBytes(res.body, Number.MAX_SAFE_INTEGER);
      // A unary error answer is one trailer frame: flag 0x80, length, "grpc-status: 13\r\n…".
      if (bytes.byteLength >= 5 && (bytes[0]! & trailerFlag) === trailerFlag) {
        const trailer = trailerParse(bytes.subarray(5));
        const message = decodeURIComponent(trailer.get("grpc-message") ?? "");
        if (trailer.get("grpc-status") === "13" && PARSE_ERROR.test(message)) {
          const fixed = new Headers();
          setTrailerStatus(fixed, undecodable(input, message, log));
          return { ...res, body: createAsyncIterable([encodeEnvelope(trailerFlag, trailerSerialize(fixed))]) };
        }
      }
      return { ...res, body: createAsyncIterable([bytes]) };
    }
    return res;
  };
  return Object.assign(wrapped, handler);
}
