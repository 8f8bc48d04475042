/**
 * Secrets never leave the process in clear: the password of a store URL, registered values (the
 * embedded server's generated password, tokens). {@link redact} is applied to every log line, the
 * startup banner and the fatal error main.ts prints.
 */

const REPLACEMENT = "[REDACTED]";
const known = new Set<string>();

/** Registers a value that must never be printed (ignored when shorter than 4 characters). */
export function registerSecret(value: string): void {
  if (value.length >= 4) known.add(value);
}

/** `redis://user:pass@host` -> `redis://user:[REDACTED]@host` (also a bare `:pass@` or `pass@` userinfo). */
export function redactUrlCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^/@\s,]*)@/gi, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(":");
    return colon >= 0 ? `${scheme}${userinfo.slice(0, colon)}:${REPLACEMENT}@` : `${scheme}${REPLACEMENT}@`;
  });
}

/** `text` with URL credentials and every registered secret replaced. */
export function redact(text: string): string {
  let out = redactUrlCredentials(text);
  for (const secret of known) {
    if (out.includes(secret)) out = out.split(secret).join(REPLACEMENT);
  }
  return out;
}

/** Field names whose values are secrets wherever they appear in a log line. */
export const SECRET_FIELDS: readonly string[] = ["password", "token", "authorization", "secret", "requirepass"];
