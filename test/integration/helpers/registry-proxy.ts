// A loopback HTTP proxy in front of a REAL registry, for two behaviours distribution 2.8 does not show on its
// own: transient failures (answer 503 to the first N manifest requests, then pass through) and tag-list
// pagination (distribution 2.8 ignores `n` on tags/list — measured — while GHCR and newer registries page with
// `n` and `Link: <…>; rel="next"`). Everything else is forwarded unchanged, auth headers included.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { freePort } from "./ports.js";

export interface ProxyOptions {
  /** Answer 503 (with Retry-After) to this many manifest requests before passing them through. */
  failManifests?: number;
  retryAfterSeconds?: number;
  /** Status for those failures (default 503; 429 for rate limiting). */
  failStatus?: number;
  /** Append a byte to manifest bodies while keeping Docker-Content-Digest (a tampering middlebox). */
  tamper?: boolean;
  /** Delay manifest answers by this many ms (a slow registry). */
  delayMs?: number;
  /** Serve tags/list in pages of at most this many tags (sorted), with a Link header to the next page. */
  tagsPageSize?: number;
  /** Awaited before a request is forwarded: lets a test hold a client mid-request (e.g. `docker login`'s ping). */
  hold?: (req: { method: string; path: string; headers: IncomingHttpHeaders }) => Promise<void>;
}

export interface RegistryProxy {
  host: string;
  url: string;
  /** Every request seen: method and path with query. */
  seen: { method: string; path: string; status: number }[];
  stop(): Promise<void>;
}

export async function startRegistryProxy(upstream: string, opts: ProxyOptions = {}): Promise<RegistryProxy> {
  const port = await freePort();
  let failuresLeft = opts.failManifests ?? 0;
  const seen: RegistryProxy["seen"] = [];
  const server: Server = createServer(async (req, res) => {
    const path = req.url ?? "/";
    const url = new URL(path, `http://127.0.0.1:${port}`);
    const forward = async () => {
      const headers: Record<string, string> = {};
      for (const h of ["authorization", "accept", "user-agent"])
        if (req.headers[h]) headers[h] = String(req.headers[h]);
      return fetch(`${upstream}${url.pathname}${url.search}`, { method: req.method, headers, redirect: "manual" });
    };
    try {
      await opts.hold?.({ method: req.method ?? "", path: url.pathname, headers: req.headers });
      const isManifest = /\/manifests\//.test(url.pathname);
      if (isManifest && opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      if (isManifest && failuresLeft > 0) {
        failuresLeft--;
        const status = opts.failStatus ?? 503;
        seen.push({ method: req.method ?? "", path, status });
        res.writeHead(status, {
          "content-type": "application/json",
          "retry-after": String(opts.retryAfterSeconds ?? 0),
        });
        const code = status === 429 ? "TOOMANYREQUESTS" : "UNAVAILABLE";
        res.end(
          JSON.stringify({ errors: [{ code, message: status === 429 ? "too many requests" : "service unavailable" }] }),
        );
        return;
      }
      if (opts.tagsPageSize && /\/tags\/list$/.test(url.pathname) && req.method === "GET") {
        const up = await forward();
        const body = Buffer.from(await up.arrayBuffer());
        if (up.status !== 200) {
          seen.push({ method: "GET", path, status: up.status });
          res.writeHead(up.status, Object.fromEntries(up.headers));
          res.end(body);
          return;
        }
        const all = ((JSON.parse(body.toString()) as { tags?: string[] }).tags ?? []).sort();
        const n = Math.min(
          Number(url.searchParams.get("n") ?? opts.tagsPageSize) || opts.tagsPageSize,
          opts.tagsPageSize,
        );
        const last = url.searchParams.get("last");
        const start = last ? all.findIndex((t) => t > last) : 0;
        const page = start < 0 ? [] : all.slice(start, start + n);
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (start >= 0 && start + n < all.length) {
          headers.link = `<${url.pathname}?n=${n}&last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`;
        }
        seen.push({ method: "GET", path, status: 200 });
        res.writeHead(200, headers);
        res.end(JSON.stringify({ name: url.pathname.slice(4, -10), tags: page }));
        return;
      }
      const up = await forward();
      let body = Buffer.from(await up.arrayBuffer());
      if (opts.tamper && isManifest && up.status === 200) body = Buffer.concat([body, Buffer.from("\n")]);
      seen.push({ method: req.method ?? "", path, status: up.status });
      const headers = Object.fromEntries(
        [...up.headers].filter(
          ([k]) => k !== "content-length" && k !== "transfer-encoding" && k !== "content-encoding",
        ),
      );
      res.writeHead(up.status, headers);
      res.end(req.method === "HEAD" ? undefined : body);
    } catch (e) {
      res.writeHead(502).end(String(e));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    seen,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
