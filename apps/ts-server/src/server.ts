// Starting and stopping the HTTP server, separated from index.ts so tests can run
// the real start/stop path on a free port.
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createApp, jsonLogger, type Logger } from "./app.js";

/** Stop well inside `docker stop`'s 10 s grace period (the lab checks < 2 s). */
export const SHUTDOWN_GRACE_MS = 1500;

export function start(port: number, host = "0.0.0.0", log: Logger = jsonLogger): Promise<Server> {
  const app = createApp({ log });
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    server.once("error", reject);
    server.once("listening", () => {
      const addr = server.address() as AddressInfo;
      log({ level: "INFO", msg: "listening", addr: `${addr.address}:${addr.port}`, pid: process.pid });
      resolve(server);
    });
  });
}

/**
 * Graceful stop: refuse new connections, let running requests finish, close idle
 * keep-alive sockets; after SHUTDOWN_GRACE_MS close whatever is left.
 */
export function stop(server: Server, log: Logger = jsonLogger): Promise<void> {
  log({ level: "INFO", msg: "shutting down", grace_ms: SHUTDOWN_GRACE_MS });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      log({ level: "WARN", msg: "forced shutdown" });
      server.closeAllConnections();
    }, SHUTDOWN_GRACE_MS);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      log({ level: "INFO", msg: "stopped" });
      resolve();
    });
    server.closeIdleConnections();
  });
}
