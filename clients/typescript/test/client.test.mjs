// The client against a live zipfleet API with a worker (infra/api-check.sh
// starts one): ZIPFLEET_API_URL and ZIPFLEET_API_TOKEN name it.
import { test, describe, before, after } from "node:test";
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
// Under /held/ it answers only once `releaseHeld()` is called: a job with such
// an image keeps a worker slot busy until then.
let server;
let imageUrl;
let heldUrl;
const held = [];
let holding = true;
let releaseHeld = () => {};
before(async () => {
  const photo = await readFile(new URL("./fixtures/photo.jpg", import.meta.url));
  const answer = (response) => {
    response.writeHead(200, { "content-type": "image/jpeg", "content-length": photo.length });
    response.end(photo);
  };
  server = createServer((request, response) => {
    if (request.url.startsWith("/held/") && holding) held.push(response);
    else answer(response);
  });
  releaseHeld = () => {
    holding = false;
    for (const response of held.splice(0)) answer(response);
  };
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  imageUrl = `http://127.0.0.1:${server.address().port}/photo.jpg`;
  heldUrl = `http://127.0.0.1:${server.address().port}/held/photo.jpg`;
});
after(() => {
  releaseHeld();
  server?.close();
});

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
  assert.equal(status.tenant, "default", "a spec without a tenant is the default tenant's");
  assert.equal(status.queue ?? null, null, "only a queued job has a place in line");
  // An ended job cannot be cancelled.
  await rejectsWith(client.cancelJob(jobId), 409, "conflict");
  // Search finds it.
  const page = await client.searchJobs({ job_id: jobId });
  assert.deepEqual(page.jobs.map((job) => [job.job_id, job.project_id, job.state]), [[jobId, "class-7b", "succeeded"]]);
  // Erased, its zip and status are gone.
  assert.equal((await fetch(status.result.url)).status, 200, "the zip downloads before the erasure");
  const receipt = await client.eraseJob(jobId);
  assert.equal(receipt.job_id, jobId);
  assert.equal(receipt.erased.zips, 1, JSON.stringify(receipt));
  assert.equal(receipt.erased.statuses, 1, JSON.stringify(receipt));
  assert.ok(receipt.erased.cache_entries >= 1, `the pictures' cache entries: ${JSON.stringify(receipt)}`);
  assert.equal((await fetch(status.result.url)).status, 404, "the zip is gone from the store");
  await rejectsWith(client.getJob(jobId), 404, "not_found");
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

test("an unknown job or project is 404", async () => {
  await rejectsWith(client.getJob(unique("missing")), 404, "not_found");
  await rejectsWith(client.cancelJob(unique("missing")), 404, "not_found");
  await rejectsWith(client.eraseJob(unique("missing")), 404, "not_found");
  await rejectsWith(client.eraseProject(unique("no project")), 404, "not_found");
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
  await rejectsWith(client.redriveDeadLetter(unique("no-letter")), 404, "not_found");
  await rejectsWith(client.deleteDeadLetter(unique("no-letter")), 404, "not_found");
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

test("retryAfterS is the Retry-After header, in seconds or as an HTTP date", async () => {
  const answers = [
    { status: 429, retryAfter: "7" },
    { status: 429, retryAfter: new Date(Date.now() + 30_000).toUTCString() },
    { status: 503, retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT" },
    { status: 404, retryAfter: null },
  ];
  const seen = [];
  for (const { status, retryAfter } of answers) {
    const headers = { "content-type": "application/json" };
    if (retryAfter !== null) headers["retry-after"] = retryAfter;
    const stub = async () =>
      new Response(JSON.stringify({ error: { code: status === 429 ? "tenant_quota" : "x", message: "m", details: [] } }), { status, headers });
    const stubbed = new ZipfleetClient({ baseUrl: "http://zipfleet.invalid", token: "t", fetch: stub });
    await assert.rejects(stubbed.submitJob({ images: [] }), (error) => {
      assert.ok(error instanceof ZipfleetApiError);
      assert.equal(error.status, status);
      seen.push(error.retryAfterS);
      return true;
    });
  }
  assert.equal(seen[0], 7);
  assert.ok(seen[1] === 29 || seen[1] === 30, `an HTTP date 30 s ahead gave ${seen[1]}`);
  assert.equal(seen[2], 0, "a date in the past: retry now");
  assert.equal(seen[3], undefined);
});

// The client fleet of infra/api-check.sh lets a tenant have 2 jobs queued
// (ZIPFLEET_MAX_QUEUED_PER_TENANT=2) and has ZIPFLEET_WORKER_SLOTS worker
// slots (one worker of ZIPFLEET_CONCURRENCY=2).
const QUOTA = 2;
const SLOTS = Number(process.env.ZIPFLEET_WORKER_SLOTS ?? 2);
// More jobs with held images than the fleet has slots: every slot stays
// busy, and the jobs left waiting are ahead of every job posted after them
// (they waited longest, and their tenants have nothing in flight either).
const BUSY_JOBS = SLOTS + 2;

async function waitFor(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    assert.ok(Date.now() < deadline, `${what}: not after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test("the fleet view is readable", async () => {
  const fleet = await client.getFleet();
  assert.equal(typeof fleet.queue_depth, "number");
  assert.equal(typeof fleet.jobs.queued, "number");
  assert.ok(Array.isArray(fleet.workers) && Array.isArray(fleet.tenants) && Array.isArray(fleet.queues));
});

describe("while every worker slot is busy, jobs stay queued", () => {
  const busy = [];
  const posted = [];
  // A picture of its own for each job, so that no cache entry of another job's is counted in its erasure.
  const job = (jobId, tenant, extra = {}) => ({ job_id: jobId, tenant, images: [{ id: "1", label: "a", url: `${imageUrl}?job=${jobId}` }], ...extra });
  const post = async (spec) => {
    posted.push(spec.job_id);
    const accepted = await client.submitJob(spec);
    assert.equal(accepted.state, "queued");
    return accepted;
  };

  before(async () => {
    for (let n = 0; n < BUSY_JOBS; n += 1) {
      const jobId = unique("busy");
      busy.push(jobId);
      // A tenant each: none of them may be over the quota while it waits for a slot.
      await client.submitJob({ job_id: jobId, tenant: unique("busy"), images: [{ id: "1", label: "a", url: `${heldUrl}?job=${jobId}` }] });
    }
    // Every slot holds one of them (until then, a free slot could take a job posted below).
    await waitFor(`${SLOTS} busy jobs running`, async () => (await busyStates()).filter((state) => state === "running").length === SLOTS);
  });

  const busyStates = () => Promise.all(busy.map(async (jobId) => (await client.getJob(jobId)).state));

  after(async () => {
    // A busy job still waiting shows every slot was held throughout: the jobs above never had one.
    const states = await busyStates();
    releaseHeld();
    assert.ok(states.includes("queued"), `more busy jobs than slots, one left waiting: ${states}`);
    for (const jobId of [...busy, ...posted]) {
      await client.eraseJob(jobId).catch((error) => {
        if (!(error instanceof ZipfleetApiError && error.status === 404)) throw error;
      });
    }
  });

  test("a tenant with its quota queued gets 429 tenant_quota with retryAfterS; another tenant is accepted", async () => {
    const tenant = unique("class");
    for (let n = 0; n < QUOTA; n += 1) await post(job(unique("quota"), tenant));
    const refused = unique("quota");
    await assert.rejects(client.submitJob(job(refused, tenant)), (error) => {
      assert.ok(error instanceof ZipfleetApiError, `a ZipfleetApiError, not ${error}`);
      assert.equal(error.status, 429);
      assert.equal(error.code, "tenant_quota");
      assert.ok(Number.isInteger(error.retryAfterS) && error.retryAfterS >= 1, `retryAfterS: ${error.retryAfterS}`);
      return true;
    });
    await rejectsWith(client.getJob(refused), 404, "not_found");
    const other = await post(job(unique("other"), unique("other-class")));
    assert.equal((await client.getJob(other.job_id)).state, "queued");
  });

  test("a queued job has a place in line; cancelled, its status stays readable and its tenant's quota frees", async () => {
    const tenant = unique("class");
    const [first, second] = [unique("cancel"), unique("cancel")];
    await post(job(first, tenant));
    await post(job(second, tenant));
    const before = await client.getJob(second);
    assert.equal(before.state, "queued");
    assert.equal(before.tenant, tenant);
    assert.ok(before.queue, `a queued job has a place in line: ${JSON.stringify(before)}`);
    assert.ok(before.queue.jobs_ahead >= 1, `its tenant's first job is ahead of it: ${JSON.stringify(before.queue)}`);
    assert.ok(Number.isInteger(before.queue.estimated_wait_s) && before.queue.estimated_wait_s >= 0);

    const cancelled = await client.cancelJob(first);
    assert.equal(cancelled.job_id, first);
    assert.equal(cancelled.state, "cancelled");
    const readable = await client.getJob(first);
    assert.equal(readable.state, "cancelled");
    assert.equal(readable.error?.code, "cancelled");
    assert.equal(readable.queue ?? null, null);
    await rejectsWith(client.cancelJob(first), 409, "conflict");

    const after = await client.getJob(second);
    assert.ok(after.queue.jobs_ahead < before.queue.jobs_ahead, `fewer ahead: ${before.queue.jobs_ahead} then ${after.queue.jobs_ahead}`);
    // The cancelled job no longer counts against the quota.
    await post(job(unique("cancel"), tenant));
  });

  test("an erased job is gone: getJob, eraseJob and cancelJob answer 404, and its id is refused with 409 erased", async () => {
    const jobId = unique("erase");
    const spec = job(jobId, unique("class"));
    await post(spec);
    const receipt = await client.eraseJob(jobId);
    assert.deepEqual(receipt, { job_id: jobId, erased: { zips: 0, cache_entries: 0, specs: 0, statuses: 1, dead_letters: 0 } });
    await rejectsWith(client.getJob(jobId), 404, "not_found");
    await rejectsWith(client.eraseJob(jobId), 404, "not_found");
    await rejectsWith(client.cancelJob(jobId), 404, "not_found");
    await rejectsWith(client.submitJob(spec), 409, "erased");
  });

  test("eraseProject erases every job of the project with one receipt, and no other", async () => {
    // A space and a slash: the project id must travel URL-encoded.
    const project = `class 7b/${unique("project")}`;
    const ids = [unique("project"), unique("project"), unique("project")];
    for (const [n, jobId] of ids.entries()) await post(job(jobId, `${n % 2 ? "odd" : "even"}-${unique("t")}`, { project_id: project }));
    const bystander = unique("bystander");
    await post(job(bystander, unique("class"), { project_id: `${project}-other` }));

    const receipt = await client.eraseProject(project);
    assert.equal(receipt.project_id, project);
    assert.deepEqual([...receipt.job_ids].sort(), [...ids].sort());
    assert.equal(receipt.erased.statuses, ids.length, JSON.stringify(receipt));
    for (const jobId of ids) await rejectsWith(client.getJob(jobId), 404, "not_found");
    assert.equal((await client.getJob(bystander)).state, "queued");
    await rejectsWith(client.eraseProject(project), 404, "not_found");
  });
});
