// The client against a live zipfleet API with a worker (infra/api-check.sh
// starts one): ZIPFLEET_API_URL and ZIPFLEET_API_TOKEN name it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { ZipfleetClient, ZipfleetApiError, ZipfleetTimeoutError } from "../dist/index.js";

const baseUrl = process.env.ZIPFLEET_API_URL;
const token = process.env.ZIPFLEET_API_TOKEN;
if (!baseUrl || !token) {
  throw new Error("set ZIPFLEET_API_URL and ZIPFLEET_API_TOKEN to a running zipfleet API (infra/api-check.sh does)");
}
const client = new ZipfleetClient({ baseUrl, token });
const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`;

// The worker fetches the picture from this loopback server
// (the check's worker opens 127.0.0.1 with ZIPFLEET_ALLOWED_SOURCE_NETS).
let server;
let imageUrl;
before(async () => {
  const photo = await readFile(new URL("./fixtures/photo.jpg", import.meta.url));
  server = createServer((request, response) => {
    response.writeHead(200, { "content-type": "image/jpeg", "content-length": photo.length });
    response.end(photo);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  imageUrl = `http://127.0.0.1:${server.address().port}/photo.jpg`;
});
after(() => server?.close());

async function rejectsWith(promise, status, code) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ZipfleetApiError, `a ZipfleetApiError, not ${error}`);
    assert.equal(error.status, status);
    assert.equal(error.code, code);
    return true;
  });
}

test("a job goes from submitted to queued to succeeded", async () => {
  const jobId = unique("ts");
  const accepted = await client.submitJob({
    job_id: jobId,
    project_id: "class-7b",
    images: [
      { id: "1", label: "cats", url: imageUrl },
      { id: "2", label: "dogs", url: `${imageUrl}?copy=2` },
    ],
    output: { width: 64, height: 64 },
  });
  assert.deepEqual(accepted, { job_id: jobId, state: "queued", status_url: `/v1/jobs/${jobId}` });
  const seen = [];
  const status = await client.waitForJob(jobId, { intervalMs: 200, timeoutMs: 60_000, onStatus: (s) => seen.push(s.state) });
  assert.equal(status.state, "succeeded", JSON.stringify(status));
  assert.ok(seen.length >= 1);
  assert.equal(status.project_id, "class-7b");
  assert.equal(status.result.images, 2);
  assert.deepEqual(status.result.report.labels, { cats: 1, dogs: 1 });
  assert.equal(status.error, null);
  // Re-posting the same job is idempotent.
  const again = await client.submitJob({
    job_id: jobId,
    project_id: "class-7b",
    images: [
      { id: "1", label: "cats", url: imageUrl },
      { id: "2", label: "dogs", url: `${imageUrl}?copy=2` },
    ],
    output: { width: 64, height: 64 },
  });
  assert.equal(again.state, "succeeded");
  // An ended job cannot be cancelled.
  await rejectsWith(client.cancelJob(jobId), 409, "conflict");
});

test("an invalid spec is refused with 400 and the offending fields", async () => {
  await assert.rejects(
    client.submitJob({ images: [{ id: "1", label: "a", url: "ftp://example.org/a.jpg" }, { id: "1", label: "b", url: imageUrl }] }),
    (error) => {
      assert.ok(error instanceof ZipfleetApiError);
      assert.equal(error.status, 400);
      assert.equal(error.code, "invalid_spec");
      assert.deepEqual(error.details.map((d) => d.field), ["images[0].url", "images[1].id"]);
      assert.match(error.details[0].message, /unsupported scheme "ftp"/);
      return true;
    },
  );
});

test("a wrong token is refused with 401", async () => {
  const stranger = new ZipfleetClient({ baseUrl, token: "not-the-token" });
  await rejectsWith(stranger.getJob("anything"), 401, "unauthorized");
  await rejectsWith(stranger.listDeadLetters(), 401, "unauthorized");
});

test("an unknown job is 404", async () => {
  await rejectsWith(client.getJob(unique("missing")), 404, "not_found");
  await rejectsWith(client.cancelJob(unique("missing")), 404, "not_found");
});

test("the same job_id with a different spec is 409", async () => {
  const jobId = unique("conflict");
  await client.submitJob({ job_id: jobId, images: [{ id: "1", label: "a", url: imageUrl }] });
  await rejectsWith(client.submitJob({ job_id: jobId, images: [{ id: "1", label: "b", url: imageUrl }] }), 409, "conflict");
});

test("dead letters can be listed and redriven", async () => {
  const listing = await client.listDeadLetters();
  assert.equal(typeof listing.depth, "number");
  assert.ok(Array.isArray(listing.messages));
  const redriven = await client.redriveDeadLetters({ max: 1 });
  assert.ok(redriven.moved === 0 || redriven.moved === 1, JSON.stringify(redriven));
  await rejectsWith(client.redriveDeadLetters({ max: 0 }), 400, "invalid_request");
});

test("waitForJob gives up after its timeout", async () => {
  const running = { job_id: "slow", project_id: null, state: "running", attempt: 1, progress: { total: 1, done: 0, failed: 0 },
    created_at: "2026-01-01T00:00:00Z", started_at: null, finished_at: null, result: null, error: null };
  let calls = 0;
  const stub = async () => {
    calls += 1;
    return new Response(JSON.stringify(running), { status: 200, headers: { "content-type": "application/json" } });
  };
  const slow = new ZipfleetClient({ baseUrl: "http://zipfleet.invalid", token: "t", fetch: stub });
  await assert.rejects(slow.waitForJob("slow", { intervalMs: 10, timeoutMs: 60 }), (error) => {
    assert.ok(error instanceof ZipfleetTimeoutError);
    assert.equal(error.lastStatus.state, "running");
    return true;
  });
  assert.ok(calls >= 2, `polled ${calls} times`);
});
