import { Code, ConnectError, encodeBinaryHeader } from "@connectrpc/connect";
import {
  DETAIL_TRAILER, detailTrailerBytes, ErrorDetailSchema, errorTrailers,
} from "@flowfabric/sdk/wire";
import { GatewayError } from "../errors.js";
import type { Logger } from "../logger.js";
import { detailOf, statusOf } from "../rpc/error-table.js";

/** Any error -> a ConnectError with the ErrorDetail and the ff-error-* headers; INTERNAL ones are logged. */
export function connectError(err: unknown, log: Logger): ConnectError {
  const ge = GatewayError.from(err);
  if (ge.reason === "INTERNAL") log.error("internal error", { err: String(err) });
  const detail = detailOf(ge);
  const metadata = new Headers(errorTrailers(ge.reason, ge.field));
  metadata.set(DETAIL_TRAILER, encodeBinaryHeader(detailTrailerBytes(detail)));
  return new ConnectError(ge.message, statusOf(ge) as number as Code, metadata, [{ desc: ErrorDetailSchema, value: detail }], err);
}
