// Entry point: node dist/index.js. Listens on $PORT (default 3000) and stops
// gracefully on SIGTERM (docker stop) and SIGINT (Ctrl-C). Node installs these
// handlers itself, so this works as PID 1 in a container without an init process --
// as long as node IS PID 1 (exec-form CMD ["node", ...], not `npm start`).
// (No top-level await: the esbuild bundle is CommonJS.)
import { jsonLogger } from "./app.js";
import { start, stop } from "./server.js";

const port = Number.parseInt(process.env.PORT ?? "3000", 10);

start(port).then(
  (server) => {
    let stopping = false;
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      process.on(signal, () => {
        if (stopping) return;
        stopping = true;
        void stop(server).then(() => process.exit(0));
      });
    }
  },
  (err: unknown) => {
    jsonLogger({ level: "ERROR", msg: "cannot listen", error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  },
);
