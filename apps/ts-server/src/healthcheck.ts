// `node dist/healthcheck.js`: GET this server's /healthz and exit 0 (healthy) or 1.
// Used by HEALTHCHECK, so the images need neither curl nor a shell.
const port = process.env.PORT ?? "3000";

fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) })
  .then((res) => process.exit(res.ok ? 0 : 1))
  .catch((err: unknown) => {
    console.error("healthcheck:", err instanceof Error ? err.message : err);
    process.exit(1);
  });
