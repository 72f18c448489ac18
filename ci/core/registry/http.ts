// The one place registry HTTP requests are sent: a total deadline per verification, bounded retries with
// backoff for 5xx/429 only (honouring Retry-After), a request counter, and network failures turned into a
// named reason (refused, DNS, TLS, timeout) instead of undici's bare `fetch failed`.

/** One verification's budget and bookkeeping, shared by every request it makes. */
export interface Call {
  /** Epoch milliseconds after which no request starts and running ones are aborted. */
  deadline: number;
  /** Incremented for every HTTP request actually sent (retries and token fetches included). */
  requests: number;
  /** The caller's cancellation (Ctrl-C, a CI cancel): aborts the running request and starts no other. */
  signal?: AbortSignal;
}

/** What the client asks of an HTTP request: the part of fetch's RequestInit it uses. */
export interface HttpInit {
  method: "GET" | "HEAD";
  headers: Record<string, string>;
  redirect: "manual" | "follow";
  signal: AbortSignal;
}

/** What the client reads of an answer: the part of fetch's Response it uses (a real Response fits). */
export interface HttpResponse {
  status: number;
  ok: boolean;
  headers: { get(name: string): string | null };
  body: {
    cancel(): Promise<void>;
    getReader(): {
      read(): Promise<{ done: true; value?: Uint8Array } | { done: false; value: Uint8Array }>;
      cancel(): Promise<void>;
    };
  } | null;
}

/** node-http.ts's nodeHttpFetch, or the global fetch. */
export type HttpFetch = (url: URL, init: HttpInit) => Promise<HttpResponse>;

export interface Transport {
  fetch: HttpFetch;
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Retries after the first attempt, for 5xx/429 only. */
  retries: number;
  /** First backoff; doubles per retry. */
  backoffMs: number;
  /** Longest single wait, Retry-After included; a longer demand ends the retries. */
  maxWaitMs: number;
}

type NetworkReason = "refused" | "dns" | "tls" | "timeout" | "reset" | "aborted" | "other";

/** The distribution spec's limit for a manifest (and what registries enforce on push): 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** An error answer is read only this far: its codes and a short message are all that is used. */
const MAX_ERROR_BYTES = 64 * 1024;

/** An answer whose body outgrew its limit; the rest was not read (an endless body costs nothing). */
export class BodyTooLarge extends Error {
  constructor(
    readonly host: string,
    readonly limit: number,
    /** What was asked for (`manifest`, `tags`, …), when the caller knows. */
    readonly what?: string,
  ) {
    super(`${host}: the ${what ?? "answer"} is larger than ${limit} bytes`);
    this.name = "BodyTooLarge";
  }
}

/** A request that got no HTTP answer. Carries no URL query and no header: nothing secret. */
export class NetworkFailure extends Error {
  constructor(
    readonly host: string,
    readonly reason: NetworkReason,
    readonly detail: string,
  ) {
    super(`${host}: ${detail}`);
    this.name = "NetworkFailure";
  }
}

const TLS_CODES = /^(CERT_|ERR_TLS|ERR_SSL|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|EPROTO$|HOSTNAME_MISMATCH)/;

/** Classify what fetch threw (undici wraps the socket error in `cause`). */
export function classifyNetworkError(host: string, err: unknown, timeoutMs?: number): NetworkFailure {
  const e = err as {
    name?: string;
    message?: string;
    code?: string;
    cause?: { code?: string; message?: string; name?: string };
  };
  if (e?.name === "Aborted") return new NetworkFailure(host, "aborted", "cancelled (interrupted)");
  if (e?.name === "TimeoutError" || e?.name === "AbortError" || e?.cause?.name === "TimeoutError") {
    return new NetworkFailure(
      host,
      "timeout",
      `no answer within the ${timeoutMs !== undefined ? `${Math.round(timeoutMs)} ms ` : ""}time budget (timeout)`,
    );
  }
  const code = e?.cause?.code ?? e?.code ?? "";
  const msg = e?.cause?.message ?? e?.message ?? String(err);
  if (code === "ECONNREFUSED")
    return new NetworkFailure(host, "refused", `connection refused (ECONNREFUSED): nothing is listening on ${host}`);
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME") {
    return new NetworkFailure(host, "dns", `DNS lookup of ${host.replace(/:\d+$/, "")} failed (${code})`);
  }
  if (TLS_CODES.test(code) || /certificate|ssl|tls/i.test(msg)) {
    return new NetworkFailure(host, "tls", `TLS handshake failed (${code || msg})`);
  }
  if (code === "ECONNRESET" || code === "UND_ERR_SOCKET" || code === "EPIPE" || code === "UND_ERR_CLOSED") {
    return new NetworkFailure(host, "reset", `the connection was closed mid-request (${code})`);
  }
  if (code === "UND_ERR_CONNECT_TIMEOUT" || code === "ETIMEDOUT" || code === "UND_ERR_HEADERS_TIMEOUT") {
    return new NetworkFailure(host, "timeout", `connecting timed out (${code})`);
  }
  return new NetworkFailure(host, "other", `request failed (${code || msg})`);
}

/** `Retry-After` as milliseconds to wait: delta-seconds or an HTTP date. */
export function retryAfterMs(header: string | null | undefined, now: number): number | undefined {
  if (!header) return undefined;
  const v = header.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** Exponential backoff: base, 2·base, 4·base, … (no jitter: one client, bounded retries). */
export function backoffMs(attempt: number, base: number): number {
  return base * 2 ** attempt;
}

/** Whether a status is worth retrying: server errors and rate limiting, never 4xx auth or not-found. */
export function isRetryable(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

/** The `rel="next"` target of a `Link` header, resolved against the request URL. */
export function nextLink(header: string | null | undefined, base: URL): URL | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m && /(?:^|;)\s*rel="?next"?\s*(?:;|$)/i.test(m[2]!)) return new URL(m[1]!, base);
  }
  return undefined;
}

/**
 * Send one request within `call`'s deadline, retrying 5xx/429 with backoff. The last answer is returned
 * whatever its status (the caller diagnoses it); a request that gets no answer throws NetworkFailure.
 */
export async function send(url: URL, init: Omit<HttpInit, "signal">, call: Call, t: Transport): Promise<HttpResponse> {
  for (let attempt = 0; ; attempt++) {
    if (call.signal?.aborted) throw classifyNetworkError(url.host, { name: "Aborted" });
    const remaining = call.deadline - t.now();
    if (remaining <= 0) throw classifyNetworkError(url.host, { name: "TimeoutError" }, 0);
    call.requests++;
    let res: HttpResponse;
    const timeout = AbortSignal.timeout(remaining);
    try {
      res = await t.fetch(url, { ...init, signal: call.signal ? AbortSignal.any([timeout, call.signal]) : timeout });
    } catch (e) {
      throw classifyNetworkError(url.host, call.signal?.aborted ? { name: "Aborted" } : e, remaining);
    }
    if (!isRetryable(res.status) || attempt >= t.retries) return res;
    const wait = retryAfterMs(res.headers.get("retry-after"), t.now()) ?? backoffMs(attempt, t.backoffMs);
    if (wait > t.maxWaitMs || t.now() + wait >= call.deadline) return res;
    await res.body?.cancel().catch(() => undefined);
    await t.sleep(wait);
  }
}

/**
 * Read a response body within the deadline and at most `limit` bytes: a larger body (declared or streamed)
 * throws BodyTooLarge as soon as it passes the limit; a connection lost mid-body is a NetworkFailure.
 */
export async function readBody(
  res: HttpResponse,
  host: string,
  limit = MAX_MANIFEST_BYTES,
  what?: string,
): Promise<Buffer> {
  const declared = Number(res.headers.get("content-length") ?? "");
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => undefined);
    throw new BodyTooLarge(host, limit, what);
  }
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel().catch(() => undefined);
        throw new BodyTooLarge(host, limit, what);
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof BodyTooLarge) throw e;
    throw classifyNetworkError(host, e);
  }
  return Buffer.concat(chunks, total);
}

/** An error answer's body, truncated rather than refused: only its first bytes are ever looked at. */
export async function readErrorBody(res: HttpResponse, host: string): Promise<Buffer> {
  try {
    return await readBody(res, host, MAX_ERROR_BYTES);
  } catch (e) {
    if (e instanceof BodyTooLarge) return Buffer.alloc(0);
    throw e;
  }
}
