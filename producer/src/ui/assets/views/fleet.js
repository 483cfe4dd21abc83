// zipfleet operator page: the fleet at a glance, from GET /v1/fleet.
// Jobs queued and running now and finished in the last hour, queue depth
// per queue (each lane and the total, the same number as /metrics'
// zipfleet_queue_depth), dead letters, workers and how busy they are,
// images per second, and the tenants waiting. Refreshes every 3 s.

import { h, route, section, table, row } from '../dom.js';
import { num, rate, percent, duration, ago } from '../format.js';

export const FLEET_REFRESH_MS = 3000;

function tile(label, value, { href, kind, test, note } = {}) {
  const body = [h('span', { class: 'tile-label' }, label),
    h('span', { class: 'tile-value', 'data-test': test }, value),
    note ? h('span', { class: 'tile-note' }, note) : null];
  const attrs = { class: `tile${kind ? ` tile-${kind}` : ''}` };
  return href ? h('a', { ...attrs, href }, body) : h('div', attrs, body);
}

// The sum of the numbers the broker told; null when it told none.
function sumKnown(values) {
  const known = values.filter((v) => typeof v === 'number');
  return known.length ? known.reduce((sum, v) => sum + v, 0) : null;
}

export async function fleetView(ctx) {
  const fleet = await ctx.get('v1/fleet');
  const jobs = fleet.jobs ?? {};
  const workers = Array.isArray(fleet.workers) ? fleet.workers : [];
  const queues = Array.isArray(fleet.queues) ? fleet.queues : [];
  const tenants = Array.isArray(fleet.tenants) ? fleet.tenants : [];
  const slots = workers.reduce((sum, w) => sum + (w.slots ?? 0), 0);
  const busy = workers.reduce((sum, w) => sum + (w.busy ?? 0), 0);
  const now = fleet.generated_at ?? new Date().toISOString();

  const jobTiles = h('div', { class: 'tiles' },
    tile('Queued', num(jobs.queued), { href: route(['jobs'], { state: 'queued' }), kind: 'queued', test: 'jobs-queued' }),
    tile('Running', num(jobs.running), { href: route(['jobs'], { state: 'running' }), kind: 'running', test: 'jobs-running' }),
    tile('Succeeded', num(jobs.succeeded_last_hour), { href: route(['jobs'], { state: 'succeeded' }), kind: 'succeeded', test: 'jobs-succeeded', note: 'last hour' }),
    tile('Failed', num(jobs.failed_last_hour), { href: route(['jobs'], { state: 'failed' }), kind: 'failed', test: 'jobs-failed', note: 'last hour' }),
    tile('Cancelled', num(jobs.cancelled_last_hour), { href: route(['jobs'], { state: 'cancelled' }), kind: 'cancelled', test: 'jobs-cancelled', note: 'last hour' }));

  const fleetTiles = h('div', { class: 'tiles' },
    tile('Queue depth', num(fleet.queue_depth), { test: 'queue-depth', note: 'jobs waiting, all lanes' }),
    tile('Dead letters', num(fleet.dead_letters), {
      href: route(['dead-letters']), kind: fleet.dead_letters > 0 ? 'failed' : null, test: 'dead-letters',
      note: fleet.dead_letters === null || fleet.dead_letters === undefined ? 'not countable here' : 'to look at',
    }),
    tile('Fleet busy', percent(busy, slots), { test: 'fleet-busy', note: `${num(busy)} of ${num(slots)} slots` }),
    tile('Images / s', rate(fleet.images_per_second), { test: 'images-per-second', note: 'whole fleet' }));

  const queueColumns = [{ label: 'Queue' }, { label: 'Lane', num: true }, { label: 'Ready', num: true }, { label: 'In flight', num: true }];
  const queueRows = queues.map((q) => row(queueColumns,
    [h('code', null, q.name), num(q.lane), num(q.ready), num(q.in_flight)], { 'data-queue': q.name }));
  queueRows.push(h('tr', { class: 'total' },
    h('th', { scope: 'row', colspan: '2' }, 'Total ready'),
    h('td', { class: 'num', 'data-test': 'queue-total' }, num(fleet.queue_depth)),
    h('td', { class: 'num' }, num(sumKnown(queues.map((q) => q.in_flight))))));

  const workerColumns = [{ label: 'Worker' }, { label: 'Slots', num: true }, { label: 'Busy', num: true }, { label: '' },
    { label: 'Images / s', num: true }, { label: 'Last seen', num: true }];
  const workerRows = workers.map((w) => row(workerColumns, [
    h('code', null, w.worker_id),
    num(w.slots),
    num(w.busy),
    h('meter', { min: '0', max: String(Math.max(1, w.slots ?? 1)), value: String(w.busy ?? 0), title: `${num(w.busy)} of ${num(w.slots)} slots busy` }),
    rate(w.images_per_second),
    ago(w.last_seen, now),
  ], { 'data-worker': w.worker_id }));

  const tenantColumns = [{ label: 'Tenant' }, { label: 'Queued', num: true }, { label: 'Running', num: true }, { label: 'Oldest wait', num: true }];
  const tenantRows = tenants.map((t) => row(tenantColumns, [
    h('a', { href: route(['jobs'], { tenant: t.tenant }) }, t.tenant),
    num(t.queued), num(t.running), duration(t.oldest_wait_s),
  ], { 'data-tenant': t.tenant }));

  const node = h('div', { class: 'fleet', 'data-view': 'fleet' },
    h('div', { class: 'view-head' }, h('h1', null, 'Fleet'),
      h('p', { class: 'muted' }, 'Refreshes every 3 seconds while this tab is visible.')),
    section('Jobs', jobTiles),
    section('Queues and workers', fleetTiles),
    h('div', { class: 'columns' },
      section('Queues', table(queueColumns, queueRows, { class: 'queues' })),
      section('Tenants waiting', tenants.length
        ? table(tenantColumns, tenantRows, { class: 'tenants' })
        : h('p', { class: 'empty' }, 'No tenant has jobs waiting.'))),
    section('Workers', workers.length
      ? table(workerColumns, workerRows, { class: 'workers' })
      : h('p', { class: 'empty' }, 'No worker has reported recently.')));
  return { title: 'Fleet', node, refreshMs: FLEET_REFRESH_MS };
}
