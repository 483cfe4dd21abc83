// zipfleet operator page: job search, from GET /v1/jobs.
// Search by job id, project id or tenant and filter by state; the API
// answers newest first, a page at a time, and "More" follows its cursor.
// The search is kept in the hash (#/jobs?tenant=…&state=…) so it can be
// bookmarked and shared; it holds no secret. `limit` there sets the page
// size (1–200, default 50).

import { h, route, stateBadge, table, row } from '../dom.js';
import { num, shortTime, time } from '../format.js';

export const PAGE_SIZE = 50;
const STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const FILTERS = ['job_id', 'project_id', 'tenant', 'state'];

const COLUMNS = [
  { label: 'Job' }, { label: 'State' }, { label: 'Tenant', nowrap: true }, { label: 'Project' },
  { label: 'Created', nowrap: true }, { label: 'Finished', nowrap: true }, { label: 'Images', num: true },
];

// A table's time: short, the full one on hover.
function when(iso) {
  return iso ? h('time', { datetime: iso, title: time(iso) }, shortTime(iso)) : '—';
}

function jobRow(job) {
  const p = job.progress ?? {};
  const total = p.total ?? 0;
  const handled = (p.done ?? 0) + (p.failed ?? 0);
  return row(COLUMNS, [
    h('a', { href: route(['jobs', job.job_id]), class: 'job-link' }, job.job_id),
    stateBadge(job.state),
    job.tenant ? h('a', { href: route(['jobs'], { tenant: job.tenant }) }, job.tenant) : '—',
    job.project_id ? h('a', { href: route(['jobs'], { project_id: job.project_id }) }, job.project_id) : '—',
    when(job.created_at),
    when(job.finished_at),
    h('div', { class: 'cell-progress' },
      h('span', { 'data-test': 'images' }, `${num(handled)} / ${num(total)}`),
      p.failed ? h('span', { class: 'failed-count' }, `${num(p.failed)} failed`) : null,
      h('progress', { max: String(Math.max(total, 1)), value: String(handled) })),
  ], { 'data-job-id': job.job_id });
}

function field(name, label, value, placeholder) {
  return h('div', { class: 'field' },
    h('label', { for: `search-${name}` }, label),
    h('input', { id: `search-${name}`, name, type: 'search', value: value ?? '', placeholder, spellcheck: 'false', autocomplete: 'off' }));
}

export async function jobsView(ctx) {
  const filters = {};
  for (const key of FILTERS) {
    const value = ctx.query.get(key);
    if (value) filters[key] = value;
  }
  const asked = Number.parseInt(ctx.query.get('limit') ?? '', 10);
  const limit = Number.isFinite(asked) ? Math.min(Math.max(asked, 1), 200) : PAGE_SIZE;

  const stateSelect = h('select', { id: 'search-state', name: 'state' },
    h('option', { value: '' }, 'any state'),
    STATES.map((s) => h('option', { value: s, selected: filters.state === s }, s)));
  const form = h('form', {
    class: 'search', role: 'search', 'aria-label': 'Search jobs',
    onsubmit: (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const query = {};
      for (const key of FILTERS) query[key] = String(data.get(key) ?? '').trim();
      if (ctx.query.get('limit')) query.limit = ctx.query.get('limit');
      ctx.route(route(['jobs'], query));
    },
  },
  field('job_id', 'Job id', filters.job_id, 'e.g. 3f9c…'),
  field('project_id', 'Project id', filters.project_id, 'project'),
  field('tenant', 'Tenant', filters.tenant, 'school or class'),
  h('div', { class: 'field' }, h('label', { for: 'search-state' }, 'State'), stateSelect),
  h('div', { class: 'field field-actions' },
    h('button', { type: 'submit' }, 'Search'),
    h('a', { href: '#/jobs', class: 'button quiet' }, 'Clear')));

  const page = await ctx.get('v1/jobs', { ...filters, limit });
  const jobs = Array.isArray(page.jobs) ? page.jobs : [];
  const results = table(COLUMNS, jobs.map(jobRow), { class: 'jobs', 'data-test': 'job-results' });
  const tbody = results.querySelector('tbody');
  const footer = h('div', { class: 'more' });
  const count = h('p', { class: 'muted', 'data-test': 'job-count' });

  let shown = jobs.length;
  const setCount = (more) => {
    count.textContent = `${num(shown)} job${shown === 1 ? '' : 's'} shown, newest first${more ? '; More looks further' : ''}.`;
  };
  const showMore = (cursor) => {
    footer.replaceChildren();
    if (!cursor) return;
    const button = h('button', {
      type: 'button', class: 'quiet', id: 'more-jobs',
      onclick: () => ctx.act(async () => {
        button.disabled = true;
        button.textContent = 'Loading…';
        try {
          const next = await ctx.get('v1/jobs', { ...filters, limit, cursor });
          const more = Array.isArray(next.jobs) ? next.jobs : [];
          for (const job of more) tbody.appendChild(jobRow(job));
          shown += more.length;
          setCount(Boolean(next.next_cursor));
          showMore(next.next_cursor);
        } finally {
          button.disabled = false;
          button.textContent = 'More';
        }
      }),
    }, 'More');
    footer.appendChild(button);
  };
  setCount(Boolean(page.next_cursor));
  showMore(page.next_cursor);

  const described = Object.entries(filters).map(([k, v]) => `${k.replace('_', ' ')} “${v}”`).join(', ');
  const node = h('div', { class: 'jobs-view', 'data-view': 'jobs' },
    h('div', { class: 'view-head' }, h('h1', null, 'Jobs'),
      h('p', { class: 'muted' }, described ? `Matching ${described}.` : 'All jobs the status store keeps.')),
    h('section', { class: 'panel' }, form),
    h('section', { class: 'panel' },
      jobs.length || page.next_cursor
        ? [count, results, footer]
        : h('p', { class: 'empty', 'data-test': 'no-jobs' }, 'No jobs match.')));
  return { title: 'Jobs', node, refreshMs: 0 };
}
