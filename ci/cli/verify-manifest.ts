// `hamalog verify-manifest`: prove an image tag exists (and has the host's platform) before deploying it.
// stdout: the digest (or --json); stderr: the diagnosis. Exit 0 verified, 1 the registry said no, 2 bad flags.
// With --image the command reads no config file (and so does not load the config schema: start-up is benchmarked).
import { ConfigError } from "../core/errors.js";
import { parseReference } from "../core/reference.js";
import { RegistryError, chooseReference, verifyManifest } from "../core/registry/verify.js";
import type { Command } from "./command.js";
import { readSecretFlag, secretFlags } from "./secret.js";

export const command: Command = {
  name: "verify-manifest",
  summary:
    "Verify that an image tag exists in its registry (and provides a platform); print its digest, or explain why not (near-miss tags, auth, name, platform).",
  usage:
    "--image REGISTRY/REPO (--tag TAG|DIGEST | --sha SHA) [--username U --password-env VAR|--password-file F] [--platform OS/ARCH] [--json]\n" +
    "       hamalog verify-manifest --config FILE --sha SHA [...]   (image, username and deploy/platform from the config)",
  options: {
    image: {
      type: "string",
      help: "REGISTRY/REPOSITORY, e.g. ghcr.io/daemin-kim/hamalog-backend (no config file is read)",
      valueName: "REF",
    },
    tag: { type: "string", help: "tag to verify (or a digest sha256:…)" },
    sha: {
      type: "string",
      help: "full commit sha: verify the tag this module's `tag` gives it, and diagnose near-misses",
    },
    registry: { type: "string", help: "registry host, overriding image/registry from the config" },
    repository: { type: "string", help: "repository path, overriding image/repository from the config" },
    config: {
      type: "string",
      help: "pipeline config file for image/username/platform (default ./pipeline.yaml when --image is absent)",
      valueName: "FILE",
    },
    username: { type: "string", help: "registry username (GHCR: any name with a token)" },
    ...secretFlags("password", "registry password or token"),
    platform: { type: "string", help: "platform the image must provide, e.g. linux/amd64" },
    timeout: { type: "string", help: "seconds for the whole verification (default 30)", valueName: "SECONDS" },
    json: {
      type: "boolean",
      help: "print {ok, reference, digest, mediaType, platforms} or {ok:false, diagnosis} as JSON on stdout",
    },
  },
  async run(values, io) {
    const str = (k: string) => values[k] as string | undefined;
    const { reference, wantedSha } = chooseReference(str("tag"), str("sha"));
    let registry: string;
    let repository: string;
    let username = str("username");
    let platform = str("platform");
    if (str("image") !== undefined && (str("registry") !== undefined || str("repository") !== undefined)) {
      throw new ConfigError(
        "--image and --registry/--repository: give REGISTRY/REPO with --image, or the parts separately, not both",
      );
    }
    if (str("config") === undefined && str("image") !== undefined) {
      const ref = parseReference(str("image")!, "--image");
      if (ref.tag || ref.digest)
        throw new ConfigError(
          `--image: give REGISTRY/REPOSITORY without a tag or digest (use --tag), got \`${str("image")}\``,
        );
      ({ registry, repository } = ref);
    } else {
      // Only this path pays for the config schema (yaml + zod).
      const { loadConfig } = await import("../core/config-file.js");
      const { requireImage } = await import("../core/config.js");
      const { config, path } = loadConfig(str("config"), {
        image: str("image"),
        "image/registry": str("registry"),
        "image/repository": str("repository"),
        "image/username": username,
        "deploy/platform": platform,
      });
      ({ registry, repository } = requireImage(config, path));
      username = config.image.username;
      platform = config.deploy.platform;
    }
    const password = readSecretFlag(values, "password", io);
    if (password !== undefined && username === undefined) {
      throw new ConfigError(
        "--username: required with --password-env/--password-file (GHCR accepts any username with a token)",
      );
    }
    if (password === undefined && str("username") !== undefined) {
      throw new ConfigError(
        "--password-env VAR or --password-file FILE: required with --username (the password never goes in argv)",
      );
    }
    let timeoutMs: number | undefined;
    if (str("timeout") !== undefined) {
      if (!/^\d+$/.test(str("timeout")!.trim()) || Number(str("timeout")) < 1)
        throw new ConfigError(`--timeout: \`${str("timeout")}\` is not a whole number of seconds`);
      timeoutMs = Number(str("timeout")) * 1000;
    }
    try {
      const result = await verifyManifest(
        {
          registry,
          repository,
          reference,
          ...(password !== undefined && username !== undefined ? { credentials: { username, password } } : {}),
          ...(platform ? { platform } : {}),
          ...(wantedSha !== undefined ? { wantedSha } : {}),
        },
        timeoutMs !== undefined ? { timeoutMs } : {},
      );
      if (values.json) io.out(JSON.stringify({ ok: true, ...result }, null, 2));
      else io.out(result.digest);
      const what = result.platforms.length ? ` — ${result.platforms.join(", ")}` : "";
      io.err(`verified ${result.reference} (${result.mediaType}${what})`);
      return 0;
    } catch (e) {
      if (!(e instanceof RegistryError)) throw e;
      if (values.json) io.out(JSON.stringify({ ok: false, diagnosis: e.diagnosis }, null, 2));
      io.err(`hamalog verify-manifest: ${e.diagnosis.message}`);
      return 1;
    }
  },
};
