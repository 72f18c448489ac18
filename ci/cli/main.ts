// The CLI door: `hamalog COMMAND [flags]`, commands named like the Dagger functions (kebab-case).
// Exit codes: 0 success, 1 operation failed, 2 usage or config error, 70 internal error (a bug: report it).
import { parseArgs } from "node:util";
import { InternalError, exitCodeOf } from "../core/errors.js";
import type { Command, Io } from "./command.js";

type CommandTable = Record<string, { summary: string; load: () => Promise<Command> }>;

/** Lazily loaded commands: only the one asked for is imported. */
const COMMANDS: CommandTable = {
  tag: {
    summary: "print the image tags for a commit (one per line)",
    load: async () => (await import("./tag.js")).command,
  },
  "verify-manifest": {
    summary: "prove an image tag exists in its registry; print its digest or a diagnosis",
    load: async () => (await import("./verify-manifest.js")).command,
  },
  deploy: {
    summary: "deploy a commit's image to the compose host over SSH (digest-pinned, health-gated, auto-rollback)",
    load: async () => (await import("./deploy.js")).command,
  },
  status: {
    summary: "show what runs on the compose host: digest, sha, health, last history lines",
    load: async () => (await import("./status.js")).command,
  },
  rollback: {
    summary: "roll the compose host back to the previous (or --to SHA|DIGEST) successful deploy",
    load: async () => (await import("./rollback.js")).command,
  },
  "host-key": {
    summary: "print the deploy host's SSH key fingerprint to pin as deploy/hostKey",
    load: async () => (await import("./host-key.js")).command,
  },
};

function mainHelp(commands: CommandTable): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  return [
    "usage: hamalog COMMAND [flags]",
    "",
    "Build, tag, verify and deploy Hamalog's image; the same functions as the Dagger module (`dagger call`).",
    "",
    "commands:",
    ...Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`),
    "",
    "Run `hamalog COMMAND --help` for a command's flags.",
    "Exit codes: 0 ok, 1 failed, 2 usage or config error, 70 internal error (a bug: please report it).",
  ].join("\n");
}

function commandHelp(cmd: Command): string {
  const lines = [`usage: hamalog ${cmd.name} ${cmd.usage}`, "", cmd.summary, "", "flags:"];
  const entries = Object.entries(cmd.options).map(([name, o]) => {
    const value = o.type === "string" ? ` ${o.valueName ?? name.toUpperCase().replace(/-/g, "_")}` : "";
    return [`--${name}${value}${o.multiple ? " (repeatable)" : ""}`, o.help ?? ""] as const;
  });
  entries.push(["--help", "show this help"]);
  const width = Math.max(...entries.map(([f]) => f.length));
  for (const [f, h] of entries) lines.push(`  ${f.padEnd(width)}  ${h}`);
  if (cmd.more) lines.push("", ...cmd.more());
  return lines.join("\n");
}

/** Run one command line; `commands` is the table above except in tests of this dispatcher. */
export async function main(argv: string[], io: Io, commands: CommandTable = COMMANDS): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? io.err : io.out)(mainHelp(commands));
    return name === undefined ? 2 : 0;
  }
  const entry = commands[name];
  if (!entry) {
    io.err(`hamalog: unknown command \`${name}\`\n\n${mainHelp(commands)}`);
    return 2;
  }
  const cmd = await entry.load();
  let values: Record<string, unknown>;
  try {
    const options = Object.fromEntries(
      Object.entries(cmd.options).map(([k, o]) => [k, { type: o.type, ...(o.multiple ? { multiple: true } : {}) }]),
    );
    const parsed = parseArgs({
      args: rest,
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    });
    values = parsed.values as Record<string, unknown>;
  } catch (e) {
    io.err(`hamalog ${name}: ${(e as Error).message}\nRun \`hamalog ${name} --help\` for the flags.`);
    return 2;
  }
  if (values.help) {
    io.out(commandHelp(cmd));
    return 0;
  }
  try {
    return await cmd.run(values, io);
  } catch (e) {
    io.err(`hamalog ${name}: ${e instanceof Error ? e.message : String(e)}`);
    if (io.env.HAMALOG_DEBUG && e instanceof Error) io.err(e.stack ?? "");
    // Where an internal error was thrown is what its bug report needs, so the frames are printed unasked.
    else if (e instanceof InternalError)
      io.err(
        (e.stack ?? "")
          .split("\n")
          .filter((l) => /^\s+at /.test(l))
          .join("\n"),
      );
    return exitCodeOf(e);
  }
}

/** Entry point used by ci/bin/hamalog.mjs, which passes its build directory. */
export async function run(opts: { cacheDir?: string } = {}): Promise<void> {
  const io: Io = {
    out: (t) => process.stdout.write(t.endsWith("\n") ? t : `${t}\n`),
    err: (t) => process.stderr.write(t.endsWith("\n") ? t : `${t}\n`),
    env: process.env,
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
  };
  process.exitCode = await main(process.argv.slice(2), io);
}
