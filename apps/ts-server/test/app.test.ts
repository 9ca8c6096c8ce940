// `npm test`: node:test, run through tsx (type-checked first by tsc). Exercises every
// endpoint over real HTTP, and the start/stop path used on SIGTERM.
import assert from "node:assert/strict";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { createApp, whoami, type LogLine } from "../src/app.ts";
import { SHUTDOWN_GRACE_MS, start, stop } from "../src/server.ts";

const logs: LogLine[] = [];
let server: Server;
let base: string;

before(async () => {
  const app = createApp({ version: "9.9.9-test", log: (line) => logs.push(line) });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function getJSON(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(base + path);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("endpoints", () => {
  test("/ says hello and the version", async () => {
    const { status, body } = await getJSON("/");
    assert.equal(status, 200);
    assert.equal(body.version, "9.9.9-test");
    assert.match(String(body.message), /hello/);
  });

  test("/healthz is ok", async () => {
    const { status, body } = await getJSON("/healthz");
    assert.equal(status, 200);
    assert.deepEqual(body, { status: "ok" });
  });

  test("/whoami reports this process's ids", async () => {
    const { status, body } = await getJSON("/whoami");
    assert.equal(status, 200);
    assert.equal(body.uid, process.getuid?.());
    assert.equal(body.gid, process.getgid?.());
    assert.equal(body.root, process.getuid?.() === 0);
    assert.ok(body.user !== "" || typeof body.user_error === "string", "empty user without user_error");
  });

  test("unknown paths are a JSON 404", async () => {
    const { status, body } = await getJSON("/nope");
    assert.equal(status, 404);
    assert.equal(body.error, "not found");
  });

  test("no X-Powered-By header", async () => {
    const res = await fetch(`${base}/healthz`);
    assert.equal(res.headers.get("x-powered-by"), null);
  });

  test("one JSON log line per request", async () => {
    const before = logs.length;
    await fetch(`${base}/healthz`);
    await new Promise((r) => setTimeout(r, 20));
    const line = logs.slice(before).find((l) => l.path === "/healthz");
    assert.ok(line, "no log line for /healthz");
    assert.equal(line.msg, "request");
    assert.equal(line.method, "GET");
    assert.equal(line.status, 200);
    assert.equal(typeof line.duration_ms, "number");
  });
});

test("whoami() never throws", () => {
  const me = whoami();
  assert.equal(typeof me.uid, "number");
});

test("start() then stop() closes the port promptly, even with a keep-alive client", async () => {
  const quiet = () => {};
  const s = await start(0, "127.0.0.1", quiet);
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}/healthz`;
  const res = await fetch(url); // undici keeps this connection alive
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  const t0 = Date.now();
  await stop(s, quiet);
  assert.ok(Date.now() - t0 < SHUTDOWN_GRACE_MS + 500, `stop took ${Date.now() - t0} ms`);
  await assert.rejects(fetch(url, { signal: AbortSignal.timeout(1000) }));
});
