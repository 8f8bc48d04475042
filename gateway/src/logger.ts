import { context, isSpanContextValid, trace } from "@opentelemetry/api";
import { pino, type Logger as PinoLogger } from "pino";
import { redact, SECRET_FIELDS } from "./secrets.js";

/**
 * Structured JSON logs on stderr (pino), one line per event: `time` (ISO), `level` (name), `msg`,
 * then flat fields. A line written while a span is active carries its `trace_id` and `span_id`.
 * Secrets are redacted from every line: fields named like one (password, token, authorization,
 * ...) and, in every string value, URL credentials and registered secrets (secrets.ts).
 */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** True for a level name FLOWFABRIC_LOG_LEVEL accepts. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** Every string in `value` (deep) redacted; secret-named fields replaced whole. */
function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redact(value);
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_FIELDS.includes(k.toLowerCase()) ? "[REDACTED]" : scrub(v, depth + 1);
  }
  return out;
}

/** Written with process.stderr.write (synchronous on a pipe or file; tests capture it). */
const STDERR = { write: (line: string): void => { process.stderr.write(line); } };

function wrap(p: PinoLogger): Logger {
  const at = (fn: "debug" | "info" | "warn" | "error") => (msg: string, fields?: Record<string, unknown>): void => {
    if (!p.isLevelEnabled(fn)) return;
    if (fields) p[fn](fields, redact(msg));
    else p[fn](redact(msg));
  };
  return {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: (fields) => wrap(p.child(scrub(fields) as Record<string, unknown>)),
  };
}

export function createLogger(level: LogLevel = "info", base: Record<string, unknown> = {}): Logger {
  const p = pino({
    level,
    base: null,
    timestamp: pino.stdTimeFunctions.isoTime,
    messageKey: "msg",
    formatters: {
      level: (label) => ({ level: label }),
      log: (fields) => scrub(fields) as Record<string, unknown>,
    },
    mixin: () => {
      const span = trace.getSpanContext(context.active());
      return span !== undefined && isSpanContextValid(span) ? { trace_id: span.traceId, span_id: span.spanId } : {};
    },
  }, STDERR);
  return wrap(Object.keys(base).length > 0 ? p.child(scrub(base) as Record<string, unknown>) : p);
}
