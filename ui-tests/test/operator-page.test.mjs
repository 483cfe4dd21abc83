// zipfleet UI tests: the operator page in headless Chromium against the real fleet.
// One API, one browser and (from the fourth test on) one worker for the
// whole file, in an order that lets each test set up what it needs: the
// queue-depth test runs before any worker exists, so the depth it compares
// is non-zero and stable; the dead-letter test stops the worker before it
// redrives, so the message it moved cannot come straight back.
//   ZIPFLEET_UI_SCREENSHOTS=1 also writes docs/ui/*.png.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { launchChromium, openPage, pageProblems, screenshot, signIn } from '../lib/browser.mjs';
import { eventually, Fleet, requireServices, sleep } from '../lib/fleet.mjs';
import { startImageServer } from '../lib/images.mjs';

const HOSTILE = '<img src=x onerror=alert(1)>';
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const CONTENT_TYPES = {
  html: /^text\/html; charset=utf-8$/,
  js: /^text\/javascript; charset=utf-8$/,
  css: /^text\/css; charset=utf-8$/,
  svg: /^image\/svg\+xml$/,
};

describe('operator page', { timeout: 300_000 }, () => {
  let fleet;
  let images;
  let browser;
  const requests = [];
  const pages = [];
  // Set by the tests for the ones after them.
  let slowJob;

  const open = async (options) => {
    const opened = await openPage(browser, requests, options);
    pages.push(opened);
    return opened;
  };
  const base = () => fleet.apiUrl;
  const tenant = (name) => `${name}-${fleet.unique.slice(0, 4)}`;
  const spec = (t, images_, extra = {}) => ({ tenant: t, images: images_, output: { width: 64, height: 64 }, ...extra });
  const fastImages = (n, label, offset = 0) => Array.from({ length: n }, (_, i) => ({
    id: `${label}-${i + 1}`, label, url: images.url('img', offset + i, { run: fleet.unique }),
  }));

  /** No console error, uncaught exception, dialog or CSP violation on any page so far. */
  const assertClean = async (opened) => {
    const found = await pageProblems(opened);
    assert.deepEqual(found, { console: [], pageErrors: [], dialogs: [], csp: [] }, 'the page misbehaved');
  };
  /** Waits for `selector`; fails at once, with the page's message, if an action's error shows instead. */
  const waitFor = async (page, selector, timeout = 15000) => {
    const which = await page.locator(`${selector}, .flash-error`).first().waitFor({ timeout })
      .then(() => page.locator('.flash-error').count());
    if (which > 0) assert.fail(`waiting for ${selector}, the page says: ${await page.locator('.flash-error').textContent()}`);
  };
  const progressValue = (page) => page.locator('#job-progress').evaluate((el) => el.value);

  before(async () => {
    await requireServices();
    images = await startImageServer();
    fleet = new Fleet();
    await fleet.startApi();
    browser = await launchChromium();
  });

  // A test's pages close with it (a fleet page left open would go on polling).
  afterEach(async () => {
    for (const opened of pages) await opened.context.close().catch(() => {});
  });

  after(async () => {
    await browser?.close();
    await fleet?.stop();
    await images?.close();
  });

  test('every /ui answer carries the strict CSP and security headers; no inline script or style', async () => {
    const redirect = await fetch(`${base()}/ui`, { redirect: 'manual' });
    assert.ok([301, 308].includes(redirect.status), `/ui answers ${redirect.status}`);
    assert.equal(redirect.headers.get('location'), 'ui/');

    const opened = await open();
    const { page } = opened;
    const loaded = new Set();
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.pathname.startsWith('/ui/')) loaded.add(url.pathname);
    });
    await page.goto(`${base()}/ui/`);
    await page.locator('#login').waitFor();
    await page.waitForLoadState('networkidle');

    const expected = ['/ui/', '/ui/app.css', '/ui/app.js', '/ui/api.js', '/ui/dom.js', '/ui/format.js', '/ui/favicon.svg',
      '/ui/views/login.js', '/ui/views/fleet.js', '/ui/views/jobs.js', '/ui/views/job.js', '/ui/views/dead-letters.js'];
    assert.deepEqual([...loaded].sort(), [...expected].sort(), 'the page loads exactly its own assets');
    // Each asset as the server sends it (the browser's copy may come from its cache).
    for (const pathname of expected) {
      const response = await fetch(`${base()}${pathname}`);
      const header = (name) => response.headers.get(name);
      assert.equal(response.status, 200, pathname);
      assert.equal(header('content-security-policy'), CSP, `${pathname}: CSP`);
      assert.equal(header('x-content-type-options'), 'nosniff', pathname);
      assert.equal(header('referrer-policy'), 'no-referrer', pathname);
      assert.equal(header('x-frame-options'), 'DENY', pathname);
      assert.equal(header('cache-control'), 'no-cache', pathname);
      const extension = pathname.endsWith('/') ? 'html' : pathname.split('.').pop();
      assert.match(header('content-type') ?? '', CONTENT_TYPES[extension], `${pathname}: content type`);
      // Revalidation: the same ETag answers 304 (with the same headers).
      const again = await fetch(`${base()}${pathname}`, { headers: { 'if-none-match': header('etag') } });
      assert.equal(again.status, 304, `${pathname}: revalidates`);
      assert.equal(again.headers.get('content-security-policy'), CSP);
      const text = await response.text();
      if (extension === 'html') {
        const scripts = [...text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
        assert.ok(scripts.length > 0);
        for (const [, attrs, body] of scripts) {
          assert.match(attrs, /\bsrc=/, 'every script is a file');
          assert.equal(body.trim(), '', 'no inline script');
        }
        assert.doesNotMatch(text, /<style\b/i, 'no inline style sheet');
        assert.doesNotMatch(text, /\sstyle\s*=/i, 'no style attribute');
        assert.doesNotMatch(text, /\son[a-z]+\s*=/i, 'no event-handler attribute');
      }
      if (extension === 'js') {
        // Markup from strings, and code from strings, are what the CSP and
        // the DOM-only rule keep out; none of it may come back.
        const found = text.match(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(\s*['"`]/);
        assert.equal(found?.[0] ?? null, null, `${pathname} builds markup or code from strings`);
      }
    }
    // An unknown asset is a 404 that carries the same headers.
    const missing = await fetch(`${base()}/ui/nope.js`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('content-security-policy'), CSP);

    assert.equal(await page.evaluate(() => document.querySelectorAll('script:not([src]), style, [style]').length), 0);
    await assertClean(opened);
  });

  test('without the token only the sign-in form shows, and the data routes answer 401', async () => {
    const opened = await open();
    const { page } = opened;
    const before_ = requests.length;
    await page.goto(`${base()}/ui/#/fleet`);
    await page.locator('#login').waitFor();
    await page.waitForLoadState('networkidle');
    assert.equal(await page.locator('#nav').isVisible(), false, 'no navigation before signing in');
    assert.equal(await page.locator('#sign-out').isVisible(), false);
    assert.deepEqual(await page.locator('#view > *').evaluateAll((els) => els.map((el) => el.id)), ['login'], 'only the sign-in form');
    const dataCalls = requests.slice(before_).filter((r) => new URL(r.url).pathname.startsWith('/v1'));
    assert.deepEqual(dataCalls, [], 'no data is asked for without a token');
    await screenshot(page, 'login');

    // A wrong token: back to the form, with the API's reason.
    await page.locator('#token').fill('not-the-token');
    await page.locator('#login button[type=submit]').click();
    await page.locator('#login [role=alert]').waitFor();
    assert.match(await page.locator('#login [role=alert]').textContent(), /did not accept the token/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token is not kept');

    // The right one: the fleet, the token in this tab's sessionStorage only.
    await page.locator('#token').fill(fleet.token);
    await page.locator('#login button[type=submit]').click();
    await page.locator('[data-view=fleet]').waitFor();
    assert.equal(await page.locator('#nav').isVisible(), true);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('zipfleet.token')), fleet.token);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    assert.ok(!page.url().includes(fleet.token), 'the token is not in the URL');
    for (const r of requests) assert.ok(!r.url.includes(fleet.token), `the token is in a URL: ${r.url}`);
    const authorized = requests.slice(before_).filter((r) => r.headers.authorization === `Bearer ${fleet.token}`);
    assert.ok(authorized.length > 0, 'data calls carry the bearer token');

    // Signing out forgets it.
    await page.locator('#sign-out').click();
    await page.locator('#login').waitFor();
    assert.equal(await page.locator('#login .login-info').textContent(), 'Signed out.');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('zipfleet.token')), null);

    // Every data route the page uses refuses a request without the token or with a wrong one.
    const routes = [
      ['GET', '/v1/fleet'], ['GET', '/v1/jobs'], ['GET', '/v1/jobs?tenant=x&state=queued'], ['GET', '/v1/jobs/some-job'],
      ['POST', '/v1/jobs/some-job/cancel'], ['DELETE', '/v1/jobs/some-job'], ['GET', '/v1/dead-letters'],
      ['POST', '/v1/dead-letters/redrive'], ['POST', '/v1/dead-letters/1/redrive'], ['DELETE', '/v1/dead-letters/1'],
    ];
    const answers = [];
    for (const [method, route] of routes) {
      for (const token of [null, 'not-the-token']) {
        const answer = await fleet.call(method, route, { token });
        answers.push(`${method} ${route} ${token ? 'wrong token' : 'no token'}: ${answer.status} ${answer.body?.error?.code}`);
      }
    }
    assert.deepEqual(answers.filter((a) => !a.endsWith(': 401 unauthorized')), [], 'every data route answers 401');
    // (Chromium logs the refused token's 401 as a console error; nothing else may appear.)
    await assertClean({ ...opened, problems: { ...opened.problems, console: opened.problems.console.filter((m) => !/401/.test(m)) } });
  });

  test('the fleet page shows the same queue depth as /metrics and refreshes itself', async () => {
    // No worker runs yet: what is posted stays queued, so the depth holds still.
    const oak = tenant('oak-school');
    const elm = tenant('elm-academy');
    for (const [t, n] of [[oak, 3], [oak, 4], [elm, 5]]) {
      await fleet.postJob(spec(t, fastImages(n, 'leaves', n * 10), { project_id: 'trees-and-leaves' }));
    }
    const depth = await eventually(async () => {
      const first = await fleet.metricsQueueDepth();
      await sleep(300);
      return first >= 3 && first === (await fleet.metricsQueueDepth()) ? first : null;
    }, { what: '/metrics to show a stable queue depth of at least 3' });

    const opened = await open();
    const { page } = opened;
    await signIn(page, base(), fleet.token, '#/fleet');
    const shown = page.locator('[data-test=queue-depth]');
    await page.waitForFunction((want) => document.querySelector('[data-test=queue-depth]')?.textContent === want, String(depth), { timeout: 10000 });
    assert.equal(await shown.textContent(), String(await fleet.metricsQueueDepth()), 'the page and /metrics agree');
    // (The job counts are the whole status store's, which other test runs share: not compared here.)
    // The tenants waiting, with their queued jobs.
    await page.locator(`tr[data-tenant="${oak}"]`).waitFor();
    assert.deepEqual(await page.locator(`tr[data-tenant="${oak}"] td.num`).allTextContents().then((cells) => cells.slice(0, 2)), ['2', '0']);

    await screenshot(page, 'fleet');

    // It refreshes itself: more jobs arrive, the number follows without a reload.
    await page.evaluate(() => { window.__sameDocument = true; });
    await fleet.postJob(spec(elm, fastImages(2, 'bark', 90), { project_id: 'trees-and-leaves' }));
    const more = await eventually(async () => {
      const now = await fleet.metricsQueueDepth();
      return now === depth + 1 ? now : null;
    }, { what: 'the new job on the queue' });
    await page.waitForFunction((want) => document.querySelector('[data-test=queue-depth]')?.textContent === want, String(more), { timeout: 8000 });
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no page reload');

    // A hidden tab asks for nothing; shown again, it refreshes at once.
    let calls = 0;
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/v1/fleet') calls += 1;
    });
    const fleetCalls = () => calls;
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    const hiddenAt = fleetCalls();
    await sleep(4000);
    assert.equal(fleetCalls(), hiddenAt, 'no refresh while the tab is hidden');
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await eventually(() => fleetCalls() > hiddenAt, { timeout: 2000, what: 'a refresh when the tab shows again' });

    // A narrow window: everything fits its width (tables scroll inside their box).
    await page.setViewportSize({ width: 390, height: 800 });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways scrolling at 390 px');
    await screenshot(page, 'fleet-narrow');
    await assertClean(opened);
  });

  test('a running job appears with moving progress', async () => {
    await fleet.startWorker();
    const maple = tenant('maple-primary');
    // 16 images that each take 1.5–3 s to download, four at a time from this host.
    const slowImages = Array.from({ length: 16 }, (_, i) => ({
      id: `bird-${i + 1}`, label: i % 2 ? 'sparrows' : 'robins',
      url: images.url('slow', 200 + i, { ms: 1500 + (i % 4) * 500, run: fleet.unique }),
    }));
    const jobId = await fleet.postJob(spec(maple, slowImages, { project_id: 'class-4b-birds' }));
    slowJob = { id: jobId, tenant: maple };
    await fleet.waitForJob(jobId, (j) => j.state === 'running', 'running', 60000);

    const opened = await open();
    const { page } = opened;
    await signIn(page, base(), fleet.token, '#/fleet');
    await page.locator('[data-test=jobs-running]').waitFor();
    await page.waitForFunction(() => Number(document.querySelector('[data-test=jobs-running]')?.textContent) >= 1, null, { timeout: 8000 });

    // It is listed among the running jobs of its tenant.
    await page.goto(`${base()}/ui/#/jobs?tenant=${encodeURIComponent(maple)}&state=running`);
    const listed = page.locator(`tr[data-job-id="${jobId}"]`);
    await listed.waitFor();
    assert.equal(await listed.locator('[data-state]').textContent(), 'running');

    // Its page: the progress bar moves on by itself, refresh after refresh.
    await listed.locator('a.job-link').click();
    await page.locator('#job-progress').waitFor();
    await page.evaluate(() => { window.__sameDocument = true; });
    const seen = [await progressValue(page)];
    for (let step = 0; step < 2; step += 1) {
      const last = seen[seen.length - 1];
      await page.waitForFunction((v) => document.querySelector('#job-progress')?.value > v, last, { timeout: 10000 });
      seen.push(await progressValue(page));
    }
    assert.ok(seen[2] > seen[1] && seen[1] > seen[0], `progress moves: ${seen.join(' → ')}`);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no page reload');
    assert.equal(await page.locator('#job-progress').getAttribute('max'), '16');
    // And it finishes on screen.
    await page.locator('[data-view=job][data-state=succeeded]').waitFor({ timeout: 30000 });
    assert.equal(await page.locator('[data-test=done]').textContent(), '16');

    // The fleet page lists the worker that ran it, with its two slots.
    await page.goto(`${base()}/ui/#/fleet`);
    await page.waitForFunction(() => [...document.querySelectorAll('table.workers tbody tr')]
      .some((tr) => tr.querySelectorAll('td')[1]?.textContent === '2'), null, { timeout: 8000 });
    await assertClean(opened);
  });

  test('searching a job id finds it', async () => {
    assert.ok(slowJob, 'the running-job test posted a job');
    await fleet.waitForJob(slowJob.id, (j) => j.state === 'succeeded', 'succeeded', 60000);
    const opened = await open();
    const { page } = opened;
    await signIn(page, base(), fleet.token, '#/jobs');
    await page.locator('[data-view=jobs]').waitFor();
    await page.locator('#search-job_id').fill(slowJob.id);
    await page.locator('form.search button[type=submit]').click();
    await page.waitForFunction((id) => location.hash.includes(`job_id=${id}`), slowJob.id);
    const rows = page.locator('table.jobs tbody tr');
    await rows.first().waitFor();
    assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.jobId)), [slowJob.id]);
    assert.equal(await rows.first().locator('a.job-link').getAttribute('href'), `#/jobs/${slowJob.id}`);

    // The state filter is applied: the same tenant, another state, nothing.
    await page.locator('#search-job_id').fill('');
    await page.locator('#search-tenant').fill(slowJob.tenant);
    await page.locator('#search-state').selectOption('failed');
    await page.locator('form.search button[type=submit]').click();
    await page.locator('[data-test=no-jobs]').waitFor();
    await page.locator('#search-state').selectOption('succeeded');
    await page.locator('form.search button[type=submit]').click();
    await page.locator(`tr[data-job-id="${slowJob.id}"]`).waitFor();

    // The result links to the job's page.
    await page.locator(`tr[data-job-id="${slowJob.id}"] a.job-link`).click();
    await page.locator('[data-test=job-id]').waitFor();
    assert.equal(await page.locator('[data-test=job-id]').textContent(), slowJob.id);

    // "More" follows the cursor: a tenant's two jobs one page at a time, newest first.
    await page.goto(`${base()}/ui/#/jobs?tenant=${encodeURIComponent(tenant('oak-school'))}&limit=1`);
    // (A page may hold fewer than its limit and still have more: the API
    // examines a bounded number of jobs a page.)
    await page.locator('#more-jobs').waitFor();
    assert.ok((await rows.count()) <= 1, 'one job a page');
    for (let pages = 1; (await page.locator('#more-jobs').count()) > 0; pages += 1) {
      assert.ok(pages < 10, 'the cursor ends');
      // Each answer replaces the button (with a new one while there is more).
      const button = await page.locator('#more-jobs').elementHandle();
      await button.click();
      await page.waitForFunction((b) => !b.isConnected, button);
    }
    const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.jobId));
    assert.equal(ids.length, 2, `both of the tenant's jobs, once each: ${ids}`);
    assert.equal(new Set(ids).size, 2);
    const created = await Promise.all(ids.map(async (id) => (await fleet.job(id)).created_at));
    assert.ok(created[0] >= created[1], 'newest first');
    await assertClean(opened);
  });

  test('a hostile label, project and message are shown as text', async () => {
    const birch = tenant('birch-stem-club');
    const jobId = await fleet.postJob(spec(birch, [
      ...fastImages(5, 'cats', 300),
      ...fastImages(5, 'dogs', 320),
      ...fastImages(2, HOSTILE, 340),
      { id: 'cat-from-a-dead-link', label: 'cats', url: images.url('gone', 1, { run: fleet.unique }) },
    ], { project_id: `<script>alert("project")</script>${HOSTILE}` }));
    await fleet.waitForJob(jobId, (j) => j.state === 'succeeded', 'succeeded', 60000);

    const opened = await open();
    const { page } = opened;
    await signIn(page, base(), fleet.token, `#/jobs/${jobId}`);
    await page.locator('[data-view=job] table.labels').waitFor();
    // The label is in the labels table as those very characters, and visible.
    const label = page.locator('table.labels .label-name', { hasText: HOSTILE });
    assert.equal(await label.count(), 1);
    assert.equal(await label.textContent(), HOSTILE);
    assert.equal(await label.isVisible(), true);
    assert.equal(await page.locator('[data-test=project]').textContent(), `<script>alert("project")</script>${HOSTILE}`);
    // The warning that names it is text too.
    assert.ok((await page.locator('ul.warnings').textContent()).includes(HOSTILE));
    // Nothing became markup: no <img> or <script> in the view, no dialog, no error.
    assert.equal(await page.locator('#view img, #view script').count(), 0);
    // The skipped image with its reason.
    const skipped = page.locator('table.skipped tbody tr');
    assert.equal(await skipped.count(), 1);
    assert.match(await skipped.textContent(), /cat-from-a-dead-link/);
    // The zip's S3 link is a link (http), opening elsewhere without a referrer.
    const download = page.locator('[data-test=download] a');
    assert.match(await download.getAttribute('href'), /^http:\/\/127\.0\.0\.1:8333\//);
    assert.equal(await download.getAttribute('rel'), 'noopener noreferrer');
    await screenshot(page, 'job');
    await assertClean(opened);
  });

  test('a dead letter is redriven by clicking and disappears; another is deleted after a confirmation', async () => {
    // Two messages no worker can read, straight onto the jobs queue.
    const alpha = `not a job: alpha-${fleet.unique}`;
    const beta = JSON.stringify({ job_id: `broken-${fleet.unique}`, images: 'beta: not a list' });
    await fleet.publishRaw(fleet.queues.jobs, alpha);
    await fleet.publishRaw(fleet.queues.jobs, beta);
    await eventually(async () => (await fleet.call('GET', '/v1/dead-letters')).body?.depth === 2,
      { timeout: 30000, what: 'the worker to dead-letter both messages' });
    // Without a worker a redriven message stays on the jobs queue (a worker
    // would dead-letter it again at once).
    await fleet.stopWorker();
    const depthBefore = await fleet.metricsQueueDepth();

    const opened = await open();
    const { page } = opened;
    await signIn(page, base(), fleet.token, '#/dead-letters');
    const rows = page.locator('table.dead-letter-list tbody tr');
    await rows.nth(1).waitFor();
    assert.equal(await rows.count(), 2);
    await screenshot(page, 'dead-letters');

    const alphaRow = rows.filter({ hasText: `alpha-${fleet.unique}` });
    assert.equal(await alphaRow.count(), 1);
    await alphaRow.locator('button.redrive').click();
    await waitFor(page, '.flash-info');
    assert.match(await page.locator('.flash-info').textContent(), /back to the jobs queue/);
    await page.waitForFunction((marker) => ![...document.querySelectorAll('table.dead-letter-list tbody tr')]
      .some((tr) => tr.textContent.includes(marker)), `alpha-${fleet.unique}`, { timeout: 10000 });
    assert.equal(await rows.count(), 1, 'the other message stays');
    assert.match(await rows.first().textContent(), /beta: not a list/);
    assert.equal((await fleet.call('GET', '/v1/dead-letters')).body.depth, 1);
    await eventually(async () => (await fleet.metricsQueueDepth()) === depthBefore + 1, { what: 'the message back on the jobs queue' });

    // Delete asks first: "Keep" leaves it, "Delete" removes it.
    const deletes = () => requests.filter((r) => r.method === 'DELETE').length;
    const deletesBefore = deletes();
    await rows.first().locator('button.delete').click();
    await page.locator('dialog#confirm[open]').waitFor();
    await page.locator('#confirm-no').click();
    await page.locator('dialog#confirm[open]').waitFor({ state: 'detached' });
    assert.equal(deletes(), deletesBefore, 'no DELETE before confirming');
    assert.equal(await rows.count(), 1);
    await rows.first().locator('button.delete').click();
    await page.locator('#confirm-yes').click();
    await waitFor(page, '[data-test=no-dead-letters]');
    assert.equal((await fleet.call('GET', '/v1/dead-letters')).body.depth, 0);
    await assertClean(opened);
  });

  test('a queued job shows its place; Cancel and Erase act only after a confirmation', async () => {
    // The worker is stopped (previous test): the job stays queued.
    const ash = tenant('ash-college');
    await fleet.postJob(spec(ash, fastImages(4, 'pebbles', 410), { project_id: 'beach-finds' }));
    const jobId = await fleet.postJob(spec(ash, fastImages(3, 'shells', 400), { project_id: 'beach-finds' }));
    const opened = await open();
    const { page } = opened;
    await signIn(page, base(), fleet.token, `#/jobs/${jobId}`);
    await page.locator('[data-view=job][data-state=queued]').waitFor();
    assert.match(await page.locator('[data-test=queue-place]').textContent(), /^\d+ jobs? ahead, about /);

    await page.locator('#cancel-job').click();
    await page.locator('dialog#confirm[open]').waitFor();
    await page.locator('#confirm-yes').click();
    await waitFor(page, '[data-view=job][data-state=cancelled]');
    assert.equal((await fleet.job(jobId)).state, 'cancelled');
    assert.equal(await page.locator('#cancel-job').count(), 0, 'an ended job has no Cancel');

    await page.locator('#erase-job').click();
    await page.locator('#confirm-no').click();
    assert.equal((await fleet.call('GET', `/v1/jobs/${jobId}`)).status, 200, 'kept when the operator says Keep');
    await page.locator('#erase-job').click();
    await page.locator('#confirm-yes').click();
    await waitFor(page, '[data-test=erase-receipt]');
    assert.equal((await fleet.call('GET', `/v1/jobs/${jobId}`)).status, 404, 'erased');
    await assertClean(opened);

    if (process.env.ZIPFLEET_UI_SCREENSHOTS) {
      // Every job the status store keeps, this run's (queued and finished) first.
      await page.locator('#nav a[data-section=jobs]').click();
      await page.locator('[data-view=jobs] table.jobs tbody tr').first().waitFor();
      await screenshot(page, 'jobs', { fullPage: false });
    }
  });

  test('no request leaves for a non-loopback host', async () => {
    assert.ok(requests.length > 30, `the pages made requests (${requests.length})`);
    const elsewhere = requests.filter((r) => {
      const url = new URL(r.url);
      return url.protocol !== 'http:' || url.hostname !== '127.0.0.1';
    });
    assert.deepEqual(elsewhere.map((r) => r.url), [], 'every request goes to 127.0.0.1');
  });
});
