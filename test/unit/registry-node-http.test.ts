// The registry client's node:http transport keeps the fetch semantics the client relies on: redirects followed or
// returned, Authorization never sent to another origin, duplicate headers joined, the abort reason on a timeout.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBody, type HttpResponse } from "../../ci/core/registry/http.js";
import { nodeHttpFetch } from "../../ci/core/registry/node-http.js";

interface Seen {
  path: string;
  headers: IncomingHttpHeaders;
}

function serve(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ path: req.url ?? "", headers: req.headers });
    handler!(req, res);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }),
    ),
  );
}

let a: Awaited<ReturnType<typeof serve>>;
let b: Awaited<ReturnType<typeof serve>>;

beforeAll(async () => {
  b = await serve((req, res) => {
    if (req.url === "/slow") return void setTimeout(() => res.end("late"), 2_000);
    res.setHeader("www-authenticate", ['Bearer realm="x"', 'Basic realm="y"']);
    res.end(`b:${req.url}`);
  });
  a = await serve((req, res) => {
    if (req.url === "/to-b") return void res.writeHead(307, { location: `${b.url}/landed` }).end();
    if (req.url === "/to-a") return void res.writeHead(302, { location: "/here" }).end();
    res.end(`a:${req.url}`);
  });
});
afterAll(() => {
  a.server.closeAllConnections();
  b.server.closeAllConnections();
  a.server.close();
  b.server.close();
});

const init = (redirect: "manual" | "follow", headers: Record<string, string> = {}) => ({
  method: "GET" as const,
  headers,
  redirect,
  signal: AbortSignal.timeout(5_000),
});
const text = async (r: HttpResponse) => (await readBody(r, "test")).toString();

describe("nodeHttpFetch", () => {
  it("follows a redirect to another origin without the Authorization header", async () => {
    const r = await nodeHttpFetch(new URL(`${a.url}/to-b`), init("follow", { authorization: "Basic c2VjcmV0" }));
    expect(r.status).toBe(200);
    expect(await text(r)).toBe("b:/landed");
    expect(a.seen.at(-1)!.headers.authorization).toBe("Basic c2VjcmV0");
    expect(b.seen.at(-1)!.headers.authorization).toBeUndefined();
  });

  it("keeps Authorization on a same-origin redirect", async () => {
    const r = await nodeHttpFetch(new URL(`${a.url}/to-a`), init("follow", { authorization: "Bearer t" }));
    expect(await text(r)).toBe("a:/here");
    expect(a.seen.at(-1)).toMatchObject({ path: "/here", headers: { authorization: "Bearer t" } });
  });

  it("returns the redirect itself with redirect: manual", async () => {
    const r = await nodeHttpFetch(new URL(`${a.url}/to-b`), init("manual"));
    expect(r.status).toBe(307);
    expect(r.ok).toBe(false);
    expect(r.headers.get("Location")).toBe(`${b.url}/landed`);
  });

  it("joins repeated headers as fetch does", async () => {
    const r = await nodeHttpFetch(new URL(`${b.url}/x`), init("manual"));
    expect(r.headers.get("WWW-Authenticate")).toBe('Bearer realm="x", Basic realm="y"');
    expect(r.headers.get("x-absent")).toBeNull();
  });

  it("rejects with the signal's TimeoutError when the answer is too slow", async () => {
    const err = await nodeHttpFetch(new URL(`${b.url}/slow`), {
      ...init("manual"),
      signal: AbortSignal.timeout(100),
    }).catch((e: unknown) => e);
    expect((err as Error).name).toBe("TimeoutError");
  });

  it("a refused connection carries ECONNREFUSED, as the client's diagnosis expects", async () => {
    const closed = await serve(() => undefined);
    const url = new URL(`${closed.url}/`);
    await new Promise((r) => closed.server.close(r));
    const err = await nodeHttpFetch(url, init("manual")).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
  });
});

describe("nodeHttpFetch bodies", () => {
  it("an endless body is read only up to readBody's limit", async () => {
    const endless = await serve((_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = () => {
        while (res.write(chunk));
        res.once("drain", pump);
      };
      pump();
    });
    try {
      const r = await nodeHttpFetch(new URL(`${endless.url}/`), init("manual"));
      const before = process.memoryUsage().rss;
      const err = await readBody(r, "endless", 1024 * 1024, "manifest").catch((e: unknown) => e);
      expect((err as Error).name).toBe("BodyTooLarge");
      expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
    } finally {
      endless.server.closeAllConnections();
      endless.server.close();
    }
  });
});
