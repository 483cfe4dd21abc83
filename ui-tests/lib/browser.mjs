// zipfleet UI tests: Debian's Chromium, driven by playwright-core.
// One headless browser for the whole run (Playwright gives every launch a
// fresh, empty profile directory), a fresh context (so a fresh
// sessionStorage) per page. Every request any page makes is recorded (the
// loopback test reads them), and each page collects what must never
// happen: console errors, uncaught exceptions, dialogs (alert/confirm),
// Content-Security-Policy violations.

import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { REPO } from './fleet.mjs';

export const CHROMIUM = process.env.ZIPFLEET_CHROMIUM ?? '/usr/bin/chromium';

// The flags this machine needs: no sandbox as root, no GPU, and none of
// Chromium's own traffic to Google (the network here is closed).
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) or set ZIPFLEET_CHROMIUM`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}

/** Where screenshots go when ZIPFLEET_UI_SCREENSHOTS is set (docs/ui by default). */
export function screenshotDir() {
  const wanted = process.env.ZIPFLEET_UI_SCREENSHOTS;
  if (!wanted) return null;
  const dir = wanted === '1' ? path.join(REPO, 'docs', 'ui') : path.resolve(wanted);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Saves what the page shows as docs/ui/NAME.png (the whole page, or the window with fullPage false). */
export async function screenshot(page, name, { fullPage = true } = {}) {
  const dir = screenshotDir();
  if (!dir) return;
  // The caret would blink into the picture.
  await page.evaluate(() => document.activeElement?.blur?.());
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage });
}

/**
 * A page in a fresh context: {page, context, problems}. `requests` collects
 * every request URL; `problems` what the page must never do.
 */
export async function openPage(browser, requests, { viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport, colorScheme: 'light', locale: 'en-GB', timezoneId: 'UTC' });
  context.on('request', (request) => requests.push({ url: request.url(), method: request.method(), headers: request.headers() }));
  const page = await context.newPage();
  const problems = { console: [], pageErrors: [], dialogs: [] };
  page.on('console', (message) => {
    if (message.type() === 'error') problems.console.push(message.text());
  });
  page.on('pageerror', (error) => problems.pageErrors.push(String(error)));
  page.on('dialog', async (dialog) => {
    problems.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  // Runs before the page's own scripts (through the DevTools protocol, so
  // the CSP does not apply to it): records every CSP violation.
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      window.__csp.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  return { page, context, problems };
}

/** The violations the page recorded, with the collected problems. */
export async function pageProblems({ page, problems }) {
  const csp = await page.evaluate(() => window.__csp ?? []);
  return { ...problems, csp };
}

/** Signs in through the form. */
export async function signIn(page, base, token, hash = '#/fleet') {
  await page.goto(`${base}/ui/${hash}`);
  await page.locator('#token').fill(token);
  await page.locator('#login button[type=submit]').click();
  await page.locator('body:not(.signed-out)').waitFor();
}
