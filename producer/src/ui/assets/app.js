// zipfleet operator page: the app — sign-in state, hash routing, refreshing.
// Routes: #/fleet, #/jobs?job_id=&project_id=&tenant=&state=, #/jobs/ID,
// #/dead-letters (the hash never carries a secret). A view is an async
// function that fetches what it shows and returns {title, node, refreshMs};
// the node replaces the old one in one step once it is complete (no
// flicker), and a view with refreshMs is fetched again after that long
// while the tab is visible.

import { session, ApiError, Unauthorized, request, get } from './api.js';
import { h, errorBox } from './dom.js';
import { clock } from './format.js';
import { loginView } from './views/login.js';
import { fleetView } from './views/fleet.js';
import { jobsView } from './views/jobs.js';
import { jobView } from './views/job.js';
import { deadLettersView } from './views/dead-letters.js';

const ROUTES = [
  { pattern: /^\/fleet$/, section: 'fleet', view: fleetView },
  { pattern: /^\/jobs$/, section: 'jobs', view: jobsView },
  { pattern: /^\/jobs\/([^/]+)$/, section: 'jobs', view: jobView },
  { pattern: /^\/dead-letters$/, section: 'dead-letters', view: deadLettersView },
];

const el = {
  body: document.body,
  view: document.getElementById('view'),
  flash: document.getElementById('flash'),
  updated: document.getElementById('updated'),
  nav: document.getElementById('nav'),
  signOut: document.getElementById('sign-out'),
  dialog: document.getElementById('confirm'),
};

// What is on screen: `seq` counts loads (only the newest may render), `nav`
// counts navigations (a refresh of a page left behind is dropped).
const current = { seq: 0, nav: 0, timer: 0, refreshMs: 0 };

function parseHash() {
  const raw = decodeHashPath(location.hash);
  const at = raw.indexOf('?');
  const path = at < 0 ? raw : raw.slice(0, at);
  const query = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
  return { path: path || '/fleet', query };
}

function decodeHashPath(hash) {
  return hash.startsWith('#') ? hash.slice(1) : hash;
}

function match(path) {
  for (const route of ROUTES) {
    const found = route.pattern.exec(path);
    if (found) {
      const params = found.slice(1).map((part) => {
        try {
          return decodeURIComponent(part);
        } catch {
          return part;
        }
      });
      return { route, params };
    }
  }
  return null;
}

function setFlash(message, kind = 'info') {
  el.flash.replaceChildren();
  if (!message) return;
  el.flash.appendChild(h('div', { class: `flash-${kind}` },
    h('span', null, message),
    h('button', { type: 'button', class: 'quiet', 'aria-label': 'Dismiss', onclick: () => setFlash(null) }, '×')));
}

function markSection(section) {
  for (const link of el.nav.querySelectorAll('a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function schedule() {
  clearTimeout(current.timer);
  current.timer = 0;
  if (current.refreshMs > 0 && !document.hidden && session.token) {
    current.timer = setTimeout(() => load({ refresh: true }), current.refreshMs);
  }
}

function showLogin(message, kind = 'error') {
  clearTimeout(current.timer);
  current.refreshMs = 0;
  current.nav += 1;
  current.seq += 1;
  el.body.classList.add('signed-out');
  el.updated.textContent = '';
  setFlash(null);
  if (el.dialog.open) el.dialog.close('');
  document.title = 'Sign in · zipfleet operator';
  el.view.replaceChildren(loginView({
    message,
    kind,
    onToken(token) {
      session.set(token);
      if (!location.hash || location.hash === '#') location.hash = '#/fleet';
      load();
    },
  }));
}

function signOut(message, kind) {
  session.clear();
  showLogin(message, kind);
}

/** Shows `node` as the current view (a view's own re-render, e.g. after erasing). */
function show(node, { refreshMs = 0, title } = {}) {
  current.seq += 1;
  el.view.replaceChildren(node);
  if (title) document.title = `${title} · zipfleet operator`;
  current.refreshMs = refreshMs;
  schedule();
}

async function load({ refresh = false } = {}) {
  clearTimeout(current.timer);
  if (!session.token) {
    showLogin();
    return;
  }
  el.body.classList.remove('signed-out');
  const { path, query } = parseHash();
  const found = match(path);
  if (!refresh) {
    current.nav += 1;
    current.refreshMs = 0;
    setFlash(null);
    el.view.setAttribute('aria-busy', 'true');
  }
  const seq = ++current.seq;
  const nav = current.nav;
  markSection(found?.route.section);
  if (!found) {
    el.view.replaceChildren(errorBox(`There is no page ${path}.`));
    el.view.removeAttribute('aria-busy');
    return;
  }
  try {
    const result = await found.route.view(context(found.params, query, nav));
    if (seq !== current.seq || nav !== current.nav) return;
    el.view.replaceChildren(result.node);
    document.title = `${result.title} · zipfleet operator`;
    el.updated.textContent = `Updated ${clock()}`;
    el.updated.classList.remove('stale');
    current.refreshMs = result.refreshMs ?? 0;
  } catch (err) {
    if (seq !== current.seq || nav !== current.nav) return;
    if (err instanceof Unauthorized) {
      signOut(err.message);
      return;
    }
    const message = err instanceof ApiError ? err.message : `Something went wrong: ${err?.message ?? err}`;
    if (refresh) {
      // Keep what is on screen; say it is stale; keep trying.
      el.updated.textContent = `Not updated since ${clock()}: ${message}`;
      el.updated.classList.add('stale');
    } else {
      el.view.replaceChildren(errorBox(message),
        h('p', null, h('button', { type: 'button', onclick: () => load() }, 'Try again')));
    }
  } finally {
    if (seq === current.seq) el.view.removeAttribute('aria-busy');
  }
  schedule();
}

/** Asks the operator in a modal <dialog>; resolves true when they confirm. */
function confirmAction({ title, message, confirmLabel }) {
  return new Promise((resolve) => {
    const dialog = el.dialog;
    document.getElementById('confirm-title').textContent = title;
    document.getElementById('confirm-message').textContent = message;
    const yes = document.getElementById('confirm-yes');
    const no = document.getElementById('confirm-no');
    yes.textContent = confirmLabel;
    const onYes = () => dialog.close('yes');
    const onNo = () => dialog.close('');
    yes.addEventListener('click', onYes);
    no.addEventListener('click', onNo);
    dialog.addEventListener('close', () => {
      yes.removeEventListener('click', onYes);
      no.removeEventListener('click', onNo);
      resolve(dialog.returnValue === 'yes');
    }, { once: true });
    dialog.returnValue = '';
    dialog.showModal();
    no.focus();
  });
}

/** What a view gets: its route's params and query, and the app's services. */
function context(params, query, nav) {
  return {
    params,
    query,
    request,
    get,
    route: (hash) => {
      if (location.hash === hash) load();
      else location.hash = hash;
    },
    reload: () => load({ refresh: true }),
    show: (node, options) => {
      if (nav === current.nav) show(node, options);
    },
    flash: setFlash,
    confirm: confirmAction,
    // Runs an action (a button's click): its errors become a message, a 401 the sign-in form.
    act: async (action) => {
      try {
        return await action();
      } catch (err) {
        if (err instanceof Unauthorized) signOut(err.message);
        else setFlash(err instanceof ApiError ? err.message : String(err?.message ?? err), 'error');
        return undefined;
      }
    },
  };
}

document.addEventListener('visibilitychange', () => {
  if (document.hidden) {
    clearTimeout(current.timer);
    current.timer = 0;
  } else if (current.refreshMs > 0 && session.token) {
    load({ refresh: true });
  }
});
window.addEventListener('hashchange', () => load());
el.signOut.addEventListener('click', () => signOut('Signed out.', 'info'));

load();
