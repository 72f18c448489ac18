// A loopback HTTP endpoint whose behaviour the test switches while a deploy runs: `hang` accepts the connection
// and never answers (an app stuck in a deadlock), `status` answers with a fixed status code. Raw TCP, so the test
// also sees when the client gives up and closes the connection. Runs in the test process (this machine is the
// SSH and Docker host), bound to 127.0.0.1 on a free port, closed by the test.
import { createServer, type Socket } from "node:net";

export interface Gate {
  port: number;
  /** `http://127.0.0.1:PORT/health` */
  url: string;
  /** `hang`, or the status code to answer with. */
  mode: "hang" | number;
  /** Requests received so far (one per connection). */
  requests: number;
  /** Resolves at the next request; with `mode` `hang`, the test knows the client is now waiting on it. */
  nextRequest(): Promise<void>;
  /** Resolves when a connection left hanging is closed by the client (it gave up). */
  nextHangUp(): Promise<void>;
  stop(): Promise<void>;
}

export async function startGate(mode: Gate["mode"] = 200): Promise<Gate> {
  const sockets = new Set<Socket>();
  let onRequest: (() => void)[] = [];
  let onHangUp: (() => void)[] = [];
  const fire = (list: (() => void)[]) => {
    for (const f of list) f();
  };
  const server = createServer((socket) => {
    sockets.add(socket);
    let seen = false;
    let hanging = false;
    socket.on("data", () => {
      if (seen) return;
      seen = true;
      gate.requests++;
      const waiting = onRequest;
      onRequest = [];
      if (gate.mode === "hang") hanging = true;
      else
        socket.end(
          `HTTP/1.1 ${gate.mode} gate\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\ngate\n`,
        );
      fire(waiting);
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      sockets.delete(socket);
      if (!hanging) return;
      const waiting = onHangUp;
      onHangUp = [];
      fire(waiting);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const gate: Gate = {
    port,
    url: `http://127.0.0.1:${port}/health`,
    mode,
    requests: 0,
    nextRequest: () => new Promise((resolve) => onRequest.push(resolve)),
    nextHangUp: () => new Promise((resolve) => onHangUp.push(resolve)),
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return gate;
}
