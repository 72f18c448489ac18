// A registry's "no": the HTTP status, the registry's own error codes (capped, printable) and what the request
// presented, as an error that holds no secret. verify.ts turns it into a Diagnosis.
import { parseWwwAuthenticate } from "./auth.js";
import { retryAfterMs, type HttpResponse } from "./http.js";
import { registryText } from "./text.js";

/** What the failing request presented: nothing, an anonymous token, Basic credentials, or a token got with them. */
export type Presented = "none" | "anonymous-token" | "basic" | "token";

interface RegistryErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

/** An HTTP answer that is not success. Holds status, the registry's error codes and no secret. */
export class RegistryHttpError extends Error {
  constructor(
    /** What was asked for. `token` means the token service refused. */
    readonly what: "manifest" | "blob" | "tags" | "token",
    readonly host: string,
    readonly status: number,
    readonly errors: RegistryErrorEntry[],
    readonly presented: Presented,
    readonly retryAfterMs?: number,
    /** The `error=` of a Bearer challenge, e.g. `insufficient_scope`. */
    readonly challengeError?: string,
  ) {
    super(`${what} on ${host}: HTTP ${status}${errors.length ? ` ${errors.map((e) => e.code).join(", ")}` : ""}`);
    this.name = "RegistryHttpError";
  }

  get codes(): string[] {
    return this.errors.map((e) => e.code);
  }
}

/** At most this many of a registry's error entries are kept; codes and messages are printable and capped. */
const MAX_ERRORS = 5;
const MAX_CODE_CHARS = 64;
const MAX_MESSAGE_CHARS = 300;

/** Parse a registry error body `{"errors":[{code,message,detail}]}`; anything else gives []. */
export function parseErrors(body: Buffer): RegistryErrorEntry[] {
  try {
    const j = JSON.parse(body.toString("utf8")) as { errors?: unknown };
    if (!Array.isArray(j.errors)) return [];
    return j.errors
      .filter((e): e is Record<string, unknown> => typeof e === "object" && e !== null)
      .slice(0, MAX_ERRORS)
      .map((e) => ({
        code: registryText(e.code ?? "UNKNOWN", MAX_CODE_CHARS) || "UNKNOWN",
        message: registryText(e.message ?? "", MAX_MESSAGE_CHARS),
        ...(e.detail !== undefined ? { detail: e.detail } : {}),
      }));
  } catch {
    return [];
  }
}

/** A failed answer as a RegistryHttpError: its error codes, Retry-After, and a Bearer challenge's `error=`. */
export function httpError(
  what: RegistryHttpError["what"],
  host: string,
  res: HttpResponse,
  body: Buffer,
  presented: Presented,
  now: number,
): RegistryHttpError {
  const challenge = parseWwwAuthenticate(res.headers.get("www-authenticate")).find((c) => c.scheme === "bearer");
  return new RegistryHttpError(
    what,
    host,
    res.status,
    parseErrors(body),
    presented,
    retryAfterMs(res.headers.get("retry-after"), now),
    challenge?.params.error,
  );
}
