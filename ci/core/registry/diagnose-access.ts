// Diagnoses for when the registry could not be asked or refused to answer: the network, credentials, access,
// rate limits, a failing registry, a repository name that does not exist. Pure: facts in, Diagnosis out.
import {
  codesText,
  image,
  isGhcr,
  nameHints,
  what,
  who,
  type Diagnosis,
  type HttpFacts,
  type Subject,
} from "./diagnosis.js";

export function networkDiagnosis(s: Subject, host: string, reason: string, detail: string): Diagnosis {
  const next: Record<string, string> = {
    refused: `check the registry address and port (image/registry or --image); if it is a local registry, start it`,
    dns: `check the host name for typos (image/registry or --image) and this machine's DNS`,
    tls: `the certificate is not trusted here (a proxy re-signing TLS? point NODE_EXTRA_CA_CERTS at its CA); plain HTTP is used only for loopback registries`,
    timeout: `the registry was too slow; retry, or check proxies/firewalls between here and ${host}`,
  };
  return {
    kind: "network",
    registry: s.registry,
    repository: s.repository,
    reference: s.reference,
    host,
    message:
      `cannot verify ${what(s)} of ${image(s)}: ${host} could not be reached — ${detail}.\n` +
      `Next: ${next[reason] ?? `retry; if it persists, check the network path to ${host}`}.`,
  };
}

/** A failed HTTP answer (after retries) turned into a diagnosis. 404s on manifests go to notFound* instead. */
export function httpDiagnosis(s: Subject, f: HttpFacts): Diagnosis {
  const base = {
    registry: s.registry,
    repository: s.repository,
    reference: s.reference,
    status: f.status,
    codes: f.errors.map((e) => e.code),
    host: f.host,
  };
  const codes = codesText(f);
  const ghcrToken = isGhcr(s.registry)
    ? " For ghcr.io: a personal access token (classic) with `read:packages`, or GITHUB_TOKEN with `permissions: packages: read`; any username works."
    : "";
  if (f.status === 0) {
    return {
      kind: "unauthorized",
      ...base,
      message: `cannot authenticate to ${s.registry} for ${image(s)}:${codes}.\nNext: use an https token service or a loopback registry.`,
    };
  }
  if (f.status === 401 || (f.what === "token" && f.status === 403)) {
    if (s.username === undefined) {
      return {
        kind: "anonymous-unauthorized",
        ...base,
        message:
          `${image(s)} requires credentials: ${f.host} answered HTTP ${f.status}${codes} to an anonymous request. ` +
          `Either the image is private, or the repository does not exist (ghcr.io answers 401 rather than reveal whether a private name exists) — asked for exactly \`${image(s)}\`.\n` +
          `Next: pass --username and --password-env VAR / --password-file FILE (Dagger: --registry-username U --registry-token=env://VAR).${ghcrToken}` +
          (s.repository.includes("/") ? "" : `\nAlso: ${nameHints(s)[0]}.`),
      };
    }
    const stage =
      f.what === "token"
        ? `the token service ${f.host} rejected the credentials of ${who(s)} (HTTP ${f.status}${codes})`
        : f.presented === "basic"
          ? `${s.registry} rejected the username/password of ${who(s)} (HTTP 401${codes})`
          : `${s.registry} refused the token issued to ${who(s)} for pulling ${s.repository} (HTTP 401${codes}${f.challengeError ? `, ${f.challengeError}` : ""}): the credentials were accepted but grant no pull on this repository, or the repository does not exist`;
    return {
      kind: "unauthorized",
      ...base,
      message:
        `cannot verify ${what(s)} of ${image(s)}: ${stage}.\n` +
        `Next: check the password/token is current (tokens expire) and may read this repository.${ghcrToken}`,
    };
  }
  if (f.status === 403) {
    return {
      kind: "denied",
      ...base,
      message:
        `${s.registry} denied ${who(s)} access to ${image(s)} (HTTP 403${codes}): the credentials are valid but may not pull this repository.\n` +
        `Next: grant access (ghcr.io: the package's settings → Manage access, or link the package to the repository running CI), or check the name \`${image(s)}\`.`,
    };
  }
  if (f.status === 429) {
    const wait =
      f.retryAfterMs !== undefined ? ` The registry asks to wait ${Math.ceil(f.retryAfterMs / 1000)} s.` : "";
    return {
      kind: "rate-limited",
      ...base,
      message:
        `${f.host} is rate-limiting (HTTP 429${codes || " TOOMANYREQUESTS"}) and still was after retrying with backoff.${wait}\n` +
        `Next: retry later; authenticated pulls get higher limits${s.username === undefined ? " (pass --username and a token)" : ""}.`,
    };
  }
  if (f.status === 400 && f.errors.some((e) => e.code === "NAME_INVALID")) {
    return {
      kind: "name-unknown",
      ...base,
      message: `${s.registry} says \`${s.repository}\` is not a valid repository name (HTTP 400${codes}).\nNext: ${nameHints(s).join("; ")}.`,
    };
  }
  const server = f.status >= 500;
  return {
    kind: "server",
    ...base,
    message:
      `${f.host} answered HTTP ${f.status}${codes} to the ${f.what} request for ${image(s)}${server ? " and kept failing after retries with backoff: the registry is failing, not your image" : " (unexpected for a pull)"}.\n` +
      `Next: retry later${isGhcr(s.registry) ? "; check https://www.githubstatus.com" : ""}${server ? "" : "; if it persists, report it with this message"}.`,
  };
}

export function nameUnknownDiagnosis(s: Subject, f?: Pick<HttpFacts, "host" | "status" | "errors">): Diagnosis {
  return {
    kind: "name-unknown",
    registry: s.registry,
    repository: s.repository,
    reference: s.reference,
    ...(f ? { status: f.status, codes: f.errors.map((e) => e.code), host: f.host } : {}),
    message:
      `repository \`${image(s)}\` does not exist or is not visible to ${who(s)} (NAME_UNKNOWN) — asked for exactly \`${image(s)}\`.\n` +
      `Next: ${nameHints(s).join("; ")}.`,
  };
}
