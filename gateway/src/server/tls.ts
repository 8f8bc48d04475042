import { readFileSync } from "node:fs";
import type { GatewayOptions } from "../config.js";

/** PEM material of both listeners, read once at start. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Client CA: set means mTLS (a client certificate it signed is required). */
  readonly clientCa: Buffer | undefined;
}

/** Reads the TLS files named by the options; undefined when TLS is off. Errors name the variable and the file. */
export function loadTls(options: Pick<GatewayOptions, "tlsCertFile" | "tlsKeyFile" | "tlsClientCaFile">): TlsMaterial | undefined {
  if (options.tlsCertFile === "") return undefined;
  return {
    cert: read(options.tlsCertFile, "FLOWFABRIC_TLS_CERT"),
    key: read(options.tlsKeyFile, "FLOWFABRIC_TLS_KEY"),
    clientCa: options.tlsClientCaFile === "" ? undefined : read(options.tlsClientCaFile, "FLOWFABRIC_TLS_CLIENT_CA"),
  };
}

function read(file: string, variable: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${variable}: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
