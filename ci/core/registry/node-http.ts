// The registry client's HTTP on node:http / node:https instead of the global fetch. Loading fetch (undici) costs
// about 100 ms of CPU, more than the rest of `hamalog verify-manifest` together (docs/benchmarks.md), and the client
// uses a small part of it: GET/HEAD, headers, manual or followed redirects, an abort signal, status, headers and
// the body as a stream it reads up to a limit. That part, here, with fetch's semantics where the client relies on them: duplicate headers
// joined with ", ", Authorization dropped on a cross-origin redirect, the signal's reason on abort.
import { Agent, request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import type { HttpFetch, HttpInit, HttpResponse } from "./http.js";

const MAX_REDIRECTS = 20; // fetch's limit
/** Bodies the client discards (401s, redirects, retried 5xx) are drained to keep the connection when this small. */
const DRAIN_LIMIT = 64 * 1024;

// Keep-alive, as fetch does: a warm verification (token cached) is then one request on an open connection.
const agents = new Map<string, Agent>();

async function agentFor(protocol: string): Promise<{ agent: Agent; request: typeof httpRequest }> {
  let agent = agents.get(protocol);
  if (protocol === "https:") {
    // Loaded only for HTTPS registries: TLS is most of its cost, and loopback registries speak plain HTTP.
    const https = await import("node:https");
    if (!agent) agents.set(protocol, (agent = new https.Agent({ keepAlive: true })));
    return { agent, request: https.request as unknown as typeof httpRequest };
  }
  if (!agent) agents.set(protocol, (agent = new Agent({ keepAlive: true })));
  return { agent, request: httpRequest };
}

class NodeResponse implements HttpResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null };
  readonly body: NonNullable<HttpResponse["body"]>;

  constructor(msg: IncomingMessage, signal: AbortSignal) {
    this.status = msg.statusCode ?? 0;
    this.ok = this.status >= 200 && this.status <= 299;
    this.headers = {
      get: (name) => {
        const v = msg.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
      },
    };
    // A connection lost before the body is read must not be an unhandled 'error' event; reading reports it.
    msg.on("error", () => undefined);
    const cancel = async () => {
      const length = Number(msg.headers["content-length"]);
      if (Number.isFinite(length) && length <= DRAIN_LIMIT && !msg.destroyed) msg.resume();
      else msg.destroy();
    };
    this.body = {
      cancel,
      getReader: () => {
        const chunks = msg[Symbol.asyncIterator]();
        return {
          // Read as the caller asks (readBody stops at its size limit), so an endless body is never held whole.
          read: async () => {
            try {
              const { done, value } = await chunks.next();
              return done ? { done: true } : { done: false, value: value as Buffer };
            } catch (e) {
              throw signal.aborted ? signal.reason : e;
            }
          },
          cancel,
        };
      },
    };
  }
}

/** One request, no redirects; a stale kept-alive connection (reset on reuse) is retried once on a new one. */
async function once(url: URL, init: HttpInit): Promise<NodeResponse> {
  const { agent, request } = await agentFor(url.protocol);
  const options: RequestOptions = { method: init.method, headers: init.headers, agent, signal: init.signal };
  for (let attempt = 0; ; attempt++) {
    try {
      return await new Promise<NodeResponse>((resolve, reject) => {
        const req = request(url, options, (msg) => resolve(new NodeResponse(msg, init.signal)));
        req.on("error", (e: NodeJS.ErrnoException) => {
          // fetch rejects with the signal's reason (a TimeoutError for AbortSignal.timeout); so does this.
          if (init.signal.aborted) reject(init.signal.reason);
          else reject(Object.assign(e, { reusedSocket: req.reusedSocket }));
        });
        req.end();
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { reusedSocket?: boolean };
      if (attempt === 0 && err.reusedSocket && err.code === "ECONNRESET") continue;
      throw e;
    }
  }
}

/** A fetch for the registry client: `redirect: "follow"` follows up to 20 hops, "manual" returns the 3xx. */
export const nodeHttpFetch: HttpFetch = async (start, init) => {
  let url = start;
  let headers = { ...init.headers };
  for (let hop = 0; ; hop++) {
    const res = await once(url, { ...init, headers });
    const location = res.headers.get("location");
    if (init.redirect === "manual" || res.status < 300 || res.status > 399 || !location) return res;
    await res.body?.cancel();
    if (hop >= MAX_REDIRECTS) throw new TypeError(`redirect count exceeded at ${url.origin}`);
    const next = new URL(location, url);
    if (next.origin !== url.origin) {
      headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== "authorization"));
    }
    url = next;
  }
};
