import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { ErrorDetailSchema, type ErrorDetail } from "../gen/flowfabric/v1/common_pb.js";

/**
 * Error details on the wire. Every gateway error carries a flowfabric.v1.ErrorDetail three ways:
 * - the standard gRPC way: `grpc-status-details-bin` holding a google.rpc.Status whose details
 *   contain `type.googleapis.com/flowfabric.v1.ErrorDetail` (what Connect and grpc-status tooling read);
 * - `ff-error-detail-bin`: the ErrorDetail itself, serialized — for stub users, who can decode it
 *   with the classes generated from proto/ alone (no google.rpc.Status needed);
 * - plain ASCII trailers `ff-error-reason` and `ff-error-field`, for clients that do not decode protobuf.
 */
export const ERROR_DETAIL_TYPE_URL = "type.googleapis.com/flowfabric.v1.ErrorDetail";
export const STATUS_DETAILS_TRAILER = "grpc-status-details-bin";
export const DETAIL_TRAILER = "ff-error-detail-bin";
export const REASON_TRAILER = "ff-error-reason";
export const FIELD_TRAILER = "ff-error-field";

/** The value of the `ff-error-detail-bin` trailer: the serialized ErrorDetail (base64 on HTTP/1.1 and in Connect headers, as every `-bin` header). */
export function detailTrailerBytes(detail: ErrorDetail): Uint8Array {
  return toBinary(ErrorDetailSchema, detail);
}

/**
 * Makes any text a legal header/trailer value: printable ASCII other than "%" stays, everything
 * else (non-ASCII, control characters) is percent-encoded as UTF-8 bytes, as grpc-message is.
 * Clients decode with decodeURIComponent. User text (e.g. a tag key in a field path) never
 * reaches a header raw.
 */
export function headerSafe(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The plain error trailers (name, header-safe value) for an error's reason and field. */
export function errorTrailers(reason: string, field: string): Array<[string, string]> {
  const trailers: Array<[string, string]> = [[REASON_TRAILER, headerSafe(reason)]];
  if (field) trailers.push([FIELD_TRAILER, headerSafe(field)]);
  return trailers;
}

/** Encodes a google.rpc.Status { code, message, details: [Any(ErrorDetail)] }. */
export function encodeStatusDetails(code: number, message: string, detail: ErrorDetail): Uint8Array {
  const any = new BinaryWriter().tag(1, 2).string(ERROR_DETAIL_TYPE_URL).tag(2, 2).bytes(toBinary(ErrorDetailSchema, detail)).finish();
  return new BinaryWriter().tag(1, 0).int32(code).tag(2, 2).string(message).tag(3, 2).bytes(any).finish();
}

/** Finds the ErrorDetail inside an encoded google.rpc.Status; undefined when absent or malformed. */
export function decodeStatusDetails(bytes: Uint8Array): ErrorDetail | undefined {
  try {
    const status = new BinaryReader(bytes);
    while (status.pos < status.len) {
      const [field, wireType] = status.tag();
      if (field !== 3 || wireType !== 2) { status.skip(wireType); continue; }
      const any = new BinaryReader(status.bytes());
      let typeUrl = "";
      let value: Uint8Array | undefined;
      while (any.pos < any.len) {
        const [f, wt] = any.tag();
        if (f === 1 && wt === 2) typeUrl = any.string();
        else if (f === 2 && wt === 2) value = any.bytes();
        else any.skip(wt);
      }
      if (typeUrl === ERROR_DETAIL_TYPE_URL && value) return fromBinary(ErrorDetailSchema, value);
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** Builds an ErrorDetail message. */
export function errorDetail(reason: string, message: string, field = "", metadata: Record<string, string> = {}): ErrorDetail {
  return create(ErrorDetailSchema, { reason, message, field, metadata });
}
