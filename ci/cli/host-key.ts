// `hamalog host-key`: print the deploy host's key fingerprint to pin as deploy/hostKey, in ssh-keygen -l's format.
import { ConfigError } from "../core/errors.js";
import { keygenLine, scanHostKey } from "../core/deploy/host-key.js";
import type { Command } from "./command.js";

export const command: Command = {
  name: "host-key",
  summary: "Print the SSH host key fingerprint of the deploy host to pin as deploy/hostKey.",
  usage: "--host HOST [--port PORT]",
  options: {
    host: { type: "string", help: "the deploy host", valueName: "HOST" },
    port: { type: "string", help: "its SSH port (default 22)", valueName: "PORT" },
  },
  async run(values, io) {
    const host = ((values.host as string | undefined) ?? "").trim();
    if (!host) throw new ConfigError("--host: required — the deploy host whose key to print");
    if (!/^[A-Za-z0-9.:[\]-]{1,253}$/.test(host)) throw new ConfigError(`--host: \`${host}\` is not a host name`);
    const rawPort = ((values.port as string | undefined) ?? "22").trim();
    const port = /^\d{1,5}$/.test(rawPort) ? Number(rawPort) : NaN;
    if (!(port >= 1 && port <= 65535)) throw new ConfigError(`--port: \`${rawPort}\` is not a port (1-65535)`);
    const key = await scanHostKey(host.replace(/^\[|\]$/g, ""), port);
    io.out(keygenLine(key, host, port));
    io.err(
      `Check it on the host's console (ssh-keygen -lf /etc/ssh/ssh_host_${key.type.toLowerCase()}_key.pub) — this scan trusts the network —, then pin it:\n` +
        `  deploy:\n    hostKey: ${key.fingerprint}`,
    );
    return 0;
  },
};
