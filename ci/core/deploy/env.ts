// The app's environment for one release: deploy/env's plain values and the values of the secrets deploy/secrets
// names, as the text of an env file. It reaches the host on stdin, lands atomically with mode 0600 beside the
// release's compose file (a rollback runs a release with the environment it ran with), and serves both as the
// app's `env_file:` and for compose's `${VAR}` interpolation (`--env-file`): no interpolated copy is ever written.
// Values are single-quoted: compose reads them literally (`$`, `#`, `"`, spaces), `\'` being the one escape.
import { ConfigError } from "../errors.js";

export interface AppEnv {
  /** deploy/env */
  plain: Record<string, string>;
  /** deploy/secrets' names with their values (from the process environment, a dotenv file, or Dagger Secrets). */
  secrets: Record<string, string>;
}

function quote(name: string, value: string, from: string): string {
  if (/[\r\n\0]/.test(value) || /\\'/.test(value) || value.endsWith("\\"))
    throw new ConfigError(
      `${name} (${from}): its value has a line break, a NUL, a backslash before a quote or at its end — an env file cannot carry it literally; change the value`,
    );
  return `'${value.replace(/'/g, "\\'")}'`;
}

/** The env file's text: plain values, then secrets, one `NAME='value'` line each (sorted: the same values give the same file). */
export function envFileText(env: AppEnv): string {
  const lines = [
    "# the app's environment for this release, written by hamalog (deploy/env and deploy/secrets); mode 0600",
    ...Object.keys(env.plain)
      .sort()
      .map((k) => `${k}=${quote(k, env.plain[k]!, "deploy/env")}`),
    ...Object.keys(env.secrets)
      .sort()
      .map((k) => `${k}=${quote(k, env.secrets[k]!, "a secret")}`),
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * The values of `names` from `source` (the process environment, a dotenv file's entries): every missing one is
 * named at once, with where it was looked for and how to give it. Nothing has been sent anywhere yet.
 */
export function pickSecrets(
  names: readonly string[],
  source: Record<string, string | undefined>,
  from: string,
  fix: string,
): Record<string, string> {
  const missing = names.filter((n) => source[n] === undefined || source[n] === "");
  if (missing.length)
    throw new ConfigError(
      `deploy/secrets: ${missing.join(", ")} ${missing.length === 1 ? "has" : "have"} no value (looked in ${from}) — ${fix}; nothing was changed`,
    );
  return Object.fromEntries(names.map((n) => [n, source[n]!]));
}

/** A dotenv file's entries (`NAME=value`, optional `export `, '…' or "…" quotes, # comments); errors name the line. */
export function parseDotenv(text: string, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new ConfigError(`${where}:${i + 1}: not NAME=value`);
    let v = m[2]!;
    const q = v[0];
    if ((q === "'" || q === '"') && v.length >= 2 && v.endsWith(q)) v = v.slice(1, -1);
    else v = v.replace(/\s+#.*$/, "");
    out[m[1]!] = v;
  });
  return out;
}

/** Every value a printed line must never show: each secret's value (short ones too risky to redact are refused). */
export function secretValues(env: AppEnv): string[] {
  for (const [k, v] of Object.entries(env.secrets))
    if (v.length < 4)
      throw new ConfigError(
        `${k}: a secret of ${v.length} character(s) cannot be kept out of logs reliably — if it is not secret, put it in deploy/env instead of deploy/secrets`,
      );
  return Object.values(env.secrets);
}
