// The express application of the lab's TypeScript server. Endpoints:
//   /         hello + version (APP_VERSION, set from the Dockerfile's VERSION arg)
//   /healthz  liveness, also used by dist/healthcheck.js in HEALTHCHECK
//   /whoami   uid/gid/user name of the process: the non-root lesson
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import os from "node:os";

export type LogLine = Record<string, string | number | boolean>;
export type Logger = (line: LogLine) => void;

/** One JSON line per event on stdout, like the Go server's log/slog output. */
export const jsonLogger: Logger = (line) => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
};

export interface WhoAmI {
  uid: number;
  gid: number;
  user: string;
  root: boolean;
  user_error?: string;
}

/** The process's identity; the name comes from /etc/passwd and may be missing. */
export function whoami(): WhoAmI {
  const uid = process.getuid?.() ?? -1;
  const gid = process.getgid?.() ?? -1;
  const body: WhoAmI = { uid, gid, user: "", root: uid === 0 };
  try {
    body.user = os.userInfo().username;
  } catch (err) {
    body.user_error = err instanceof Error ? err.message : String(err);
  }
  return body;
}

export function createApp(options: { version?: string; log?: Logger } = {}): Express {
  const version = options.version ?? process.env.APP_VERSION ?? "dev";
  const log = options.log ?? jsonLogger;
  const app = express();
  app.disable("x-powered-by");

  app.use((req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    res.on("finish", () => {
      log({
        level: "INFO",
        msg: "request",
        method: req.method,
        path: req.path,
        status: res.statusCode,
        duration_ms: Number(process.hrtime.bigint() - start) / 1e6,
        remote: req.socket.remoteAddress ?? "",
      });
    });
    next();
  });

  app.get("/", (_req, res) => {
    res.json({ message: "hello from ts-server", version });
  });

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });

  app.get("/whoami", (_req, res) => {
    res.json(whoami());
  });

  app.use((_req, res) => {
    res.status(404).json({ error: "not found" });
  });

  return app;
}
