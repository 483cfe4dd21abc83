// zipfleet UI tests: the real fleet the browser talks to.
// Starts target/debug/zipfleet-api and zipfleet-worker as child processes
// on free ports against the machine's RabbitMQ, Redis and SeaweedFS (S3),
// with queue names, an S3 prefix and tenants unique to this run, so it can
// run beside the cargo tests. A missing service or binary fails the run
// loudly; nothing is faked. Logs go to target/ui-tests/RUN/.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TARGET = process.env.CARGO_TARGET_DIR ? path.resolve(REPO, process.env.CARGO_TARGET_DIR) : path.join(REPO, 'target');

const AMQP = process.env.ZIPFLEET_TEST_AMQP ?? 'amqp://guest:guest@127.0.0.1:5672/%2f';
const REDIS = process.env.ZIPFLEET_TEST_REDIS ?? 'redis://127.0.0.1:6379/0';
const BUCKET = process.env.ZIPFLEET_TEST_BUCKET ?? 'zipfleet';
const MANAGEMENT = 'http://127.0.0.1:15672';
const MANAGEMENT_AUTH = `Basic ${Buffer.from('guest:guest').toString('base64')}`;
const AWS = {
  AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'zipfleet',
  AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'zipfleet-secret',
  AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
  AWS_ENDPOINT_URL_S3: process.env.AWS_ENDPOINT_URL_S3 ?? 'http://127.0.0.1:8333',
};

export function binary(name) {
  const file = path.join(TARGET, 'debug', name);
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: build the workspace first (cargo build --workspace --all-targets)`);
  }
  return file;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a truthy value; fails with `what` after `timeout` ms. */
export async function eventually(check, { timeout = 20000, interval = 200, what = 'the condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    }
    await sleep(interval);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function reachable(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(2000);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
    socket.once('error', () => resolve(false));
  });
}

/** Fails (never skips) when a service the tests need is not there. */
export async function requireServices() {
  const missing = [];
  for (const [name, port] of [['RabbitMQ', 5672], ['Redis', 6379], ['SeaweedFS S3', 8333]]) {
    if (!(await reachable(port))) missing.push(`${name} (127.0.0.1:${port})`);
  }
  try {
    const response = await fetch(`${MANAGEMENT}/api/overview`, { headers: { authorization: MANAGEMENT_AUTH } });
    if (!response.ok) missing.push(`RabbitMQ management API (${response.status})`);
  } catch {
    missing.push('RabbitMQ management API (127.0.0.1:15672)');
  }
  if (missing.length) {
    throw new Error(`services missing: ${missing.join(', ')}; run the tests through infra/test.sh or source infra/services.sh first`);
  }
}

export class Fleet {
  constructor() {
    this.unique = randomBytes(6).toString('hex');
    this.token = `ui-${randomBytes(18).toString('hex')}`;
    this.queues = {
      jobs: `zipfleet.jobs.${this.unique}`,
      completed: `zipfleet.completed.${this.unique}`,
      deadLetters: `zipfleet.jobs.dlq.${this.unique}`,
    };
    this.logDir = path.join(TARGET, 'ui-tests', this.unique);
    mkdirSync(this.logDir, { recursive: true });
    this.api = null;
    this.worker = null;
    this.apiUrl = null;
    // Every job this run posted: those not ended at the end are cancelled,
    // so no run leaves queued jobs behind in the shared status store.
    this.posted = [];
  }

  backendEnv() {
    return {
      ...AWS,
      ZIPFLEET_BROKER: AMQP,
      ZIPFLEET_JOBS_QUEUE: this.queues.jobs,
      ZIPFLEET_COMPLETED_QUEUE: this.queues.completed,
      ZIPFLEET_DEAD_LETTER_QUEUE: this.queues.deadLetters,
      ZIPFLEET_STATUS: REDIS,
      ZIPFLEET_STORE: `s3://${BUCKET}/ui-${this.unique}`,
      ZIPFLEET_MAX_DELIVERIES: '3',
      ZIPFLEET_LOG_FORMAT: 'json',
      RUST_LOG: process.env.RUST_LOG ?? 'info',
    };
  }

  spawnLogged(name, file, env) {
    const log = path.join(this.logDir, `${name}.log`);
    const fd = openSync(log, 'a');
    const child = spawn(file, [], {
      // Only what the process needs: nothing of this shell's ZIPFLEET_* leaks in.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...this.backendEnv(), ...env },
      stdio: ['ignore', fd, fd],
    });
    child.log = log;
    child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    return child;
  }

  async waitReady(child, url, name) {
    let exited = null;
    child.exited.then((how) => { exited = how; });
    await eventually(async () => {
      if (exited) throw Object.assign(new Error(`${name} exited (${JSON.stringify(exited)}); log: ${child.log}\n${tail(child.log)}`), { fatal: true });
      const response = await fetch(url);
      return response.ok;
    }, { timeout: 30000, interval: 250, what: `${name} at ${url} to be ready (log: ${child.log})` }).catch((err) => {
      throw new Error(`${err.message}\n${tail(child.log)}`);
    });
  }

  async startApi() {
    const port = await freePort();
    this.apiUrl = `http://127.0.0.1:${port}`;
    this.api = this.spawnLogged('api', binary('zipfleet-api'), {
      ZIPFLEET_LISTEN: `127.0.0.1:${port}`,
      ZIPFLEET_API_TOKEN: this.token,
    });
    await this.waitReady(this.api, `${this.apiUrl}/readyz`, 'zipfleet-api');
  }

  async startWorker() {
    const port = await freePort();
    this.worker = this.spawnLogged(`worker-${Date.now()}`, binary('zipfleet-worker'), {
      ZIPFLEET_WORKER_LISTEN: `127.0.0.1:${port}`,
      ZIPFLEET_ALLOW_PRIVATE_SOURCES: 'true',
      ZIPFLEET_SHUTDOWN_GRACE: '5s',
      ZIPFLEET_CONCURRENCY: '2',
    });
    await this.waitReady(this.worker, `http://127.0.0.1:${port}/readyz`, 'zipfleet-worker');
  }

  async stopWorker() {
    const worker = this.worker;
    this.worker = null;
    if (worker) await stopChild(worker);
  }

  async stop() {
    await this.stopWorker();
    if (this.api) await this.cancelUnfinished().catch(() => {});
    if (this.api) await stopChild(this.api);
    this.api = null;
    await this.deleteQueues().catch(() => {});
  }

  /** Deletes this run's queues (every lane too) from RabbitMQ. */
  async deleteQueues() {
    const response = await fetch(`${MANAGEMENT}/api/queues/%2f?columns=name`, { headers: { authorization: MANAGEMENT_AUTH } });
    const queues = await response.json();
    for (const { name } of queues) {
      if (name.includes(this.unique)) {
        await fetch(`${MANAGEMENT}/api/queues/%2f/${encodeURIComponent(name)}`, { method: 'DELETE', headers: { authorization: MANAGEMENT_AUTH } });
      }
    }
  }

  /** A call to the API: {status, body}; the token unless `token` says otherwise (null: none). */
  async call(method, route, { body, token = this.token } = {}) {
    const headers = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${this.apiUrl}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: response.status, body: json, text, headers: response.headers };
  }

  async postJob(spec) {
    const answer = await this.call('POST', '/v1/jobs', { body: spec });
    if (answer.status !== 202) throw new Error(`POST /v1/jobs answered ${answer.status}: ${answer.text}`);
    this.posted.push(answer.body.job_id);
    return answer.body.job_id;
  }

  async cancelUnfinished() {
    for (const id of this.posted) {
      const answer = await this.call('GET', `/v1/jobs/${encodeURIComponent(id)}`);
      if (answer.status === 200 && ['queued', 'running'].includes(answer.body.state)) {
        await this.call('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`);
      }
    }
  }

  async job(id) {
    const answer = await this.call('GET', `/v1/jobs/${encodeURIComponent(id)}`);
    if (answer.status !== 200) throw new Error(`GET /v1/jobs/${id} answered ${answer.status}: ${answer.text}`);
    return answer.body;
  }

  async waitForJob(id, predicate, what, timeout = 30000) {
    return eventually(async () => {
      const job = await this.job(id);
      return predicate(job) ? job : null;
    }, { timeout, interval: 150, what: `job ${id}: ${what}` });
  }

  /** `zipfleet_queue_depth` from the API's /metrics. */
  async metricsQueueDepth() {
    const response = await fetch(`${this.apiUrl}/metrics`);
    const text = await response.text();
    const line = text.split('\n').find((l) => l.startsWith('zipfleet_queue_depth '));
    if (!line) throw new Error('/metrics has no zipfleet_queue_depth');
    return Number(line.split(' ')[1]);
  }

  /** Publishes `payload` as it is onto a queue through RabbitMQ's management API
   *  (the default exchange routes by queue name), bypassing the API's checks. */
  async publishRaw(queue, payload) {
    const response = await fetch(`${MANAGEMENT}/api/exchanges/%2f/amq.default/publish`, {
      method: 'POST',
      headers: { authorization: MANAGEMENT_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ properties: { delivery_mode: 2 }, routing_key: queue, payload, payload_encoding: 'string' }),
    });
    const answer = await response.json();
    if (!answer.routed) throw new Error(`the message to ${queue} was not routed: ${JSON.stringify(answer)}`);
  }
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(resolve, 15000, null); });
  const stopped = await Promise.race([child.exited, late]);
  clearTimeout(timer);
  if (!stopped) {
    child.kill('SIGKILL');
    await child.exited;
  }
}

export function tail(file, lines = 25) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
