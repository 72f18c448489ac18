// A registry that misbehaves on purpose, run as its own process (so a test stops it by pid): argv is
// PORT MODE. It answers GET /v2/ like a registry and then, per MODE, streams an endless manifest or tag list,
// serves a huge index, never answers, forges error text with terminal escapes, or names its manifest with a weak digest.
import { createHash } from "node:crypto";
import { createServer } from "node:http";

const [port, mode] = process.argv.slice(2);
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const ESC = "\u001b";
const FORGED = `${ESC}[2J${ESC}[H\r\nverified: all good\n${ESC}]0;owned${"\u0007"}\u202eevil`;

const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: {
      mediaType: "application/vnd.docker.container.image.v1+json",
      size: 2,
      digest: `sha256:${"a".repeat(64)}`,
    },
    layers: [],
  }),
);

/** An index of `n` entries, each a distinct platform (so de-duplication sees n different values). */
function index(n) {
  const manifests = [];
  for (let i = 0; i < n; i++) {
    manifests.push({ platform: { os: "linux", architecture: `a${i}` } });
  }
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
}

/** Write `chunk` forever (until the client goes away). */
function endless(res, contentType, opening, chunk) {
  res.writeHead(200, { "content-type": contentType });
  res.write(opening);
  const pump = () => {
    while (res.write(chunk));
  };
  res.on("drain", pump);
  res.on("close", () => res.off("drain", pump));
  pump();
}

const json = (res, status, body, headers = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
};

const server = createServer((req, res) => {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  if (path === "/v2/" || path === "/v2")
    return json(res, 200, {}, { "docker-distribution-api-version": "registry/2.0" });
  const isManifest = path.includes("/manifests/");
  const isTags = path.endsWith("/tags/list");
  switch (mode) {
    case "hang":
      if (isManifest) return; // never answers: only the client's deadline or its caller's cancel ends the wait
      break;
    case "endless-manifest":
      if (isManifest) return endless(res, DOCKER_MANIFEST, '{"schemaVersion":2,"x":"', "x".repeat(64 * 1024));
      break;
    case "endless-tags":
      if (isManifest) return json(res, 404, { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] });
      if (isTags) return endless(res, "application/json", '{"name":"a/b","tags":["', "v".repeat(64 * 1024));
      break;
    case "index": {
      // ~3.2 MB: under the manifest cap, with 60,000 distinct platforms.
      if (!isManifest) break;
      const body = index(60_000);
      res.writeHead(200, {
        "content-type": OCI_INDEX,
        "docker-content-digest": `sha256:${createHash("sha256").update(body).digest("hex")}`,
      });
      return res.end(body);
    }
    case "huge-index": {
      if (!isManifest) break;
      const body = index(200_000);
      res.writeHead(200, { "content-type": OCI_INDEX });
      return res.end(body);
    }
    case "forged-errors":
      if (isManifest)
        return json(res, 403, { errors: [{ code: `DENIED${FORGED}`, message: `${"m".repeat(5000)}${FORGED}` }] });
      break;
    case "forged-tags":
      if (isManifest) return json(res, 404, { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] });
      if (isTags) return json(res, 200, { name: "a/b", tags: [`v1${FORGED}`, "v1.0.1"] });
      break;
    case "md5":
    case "sha1":
    case "upper": {
      if (!isManifest) break;
      const algorithm = mode === "upper" ? "SHA256" : mode;
      const digest = `${algorithm}:${createHash(algorithm).update(manifest).digest("hex")}`;
      res.writeHead(200, { "content-type": DOCKER_MANIFEST, "docker-content-digest": digest });
      return res.end(manifest);
    }
  }
  json(res, 404, { errors: [{ code: "NAME_UNKNOWN", message: "repository name not known to registry" }] });
});

server.listen(Number(port), "127.0.0.1", () => process.stdout.write("listening\n"));
