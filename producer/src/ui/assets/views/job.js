// zipfleet operator page: one job, from GET /v1/jobs/{id}.
// Its status document as a page: state, tenant, project, attempt, times,
// progress, its place in the queue while queued, the zip's download link,
// skipped images with their messages, the dataset report and the error.
// Cancel (POST /v1/jobs/{id}/cancel) and Erase (DELETE /v1/jobs/{id}) each
// ask first in a dialog. Refreshes every 2 s until the job has ended.

import { h, route, stateBadge, externalLink, section, table, row } from '../dom.js';
import { num, time, duration, between, bytes } from '../format.js';

export const JOB_REFRESH_MS = 2000;
const FINAL = ['succeeded', 'failed', 'cancelled'];

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([term, value, test]) =>
    h('div', null, h('dt', null, term), h('dd', { 'data-test': test }, value))));
}

function progressBlock(job) {
  const p = job.progress ?? {};
  const total = p.total ?? 0;
  const handled = (p.done ?? 0) + (p.failed ?? 0);
  return h('div', { class: 'progress-block' },
    h('progress', { id: 'job-progress', max: String(Math.max(total, 1)), value: String(handled), 'aria-label': 'Progress' }),
    h('p', { class: 'progress-numbers' },
      h('span', null, h('strong', { 'data-test': 'done' }, num(p.done)), ' done'),
      h('span', null, h('strong', { 'data-test': 'failed' }, num(p.failed)), ' failed'),
      h('span', null, h('strong', { 'data-test': 'total' }, num(p.total)), ' total')));
}

function queuePlace(job) {
  const q = job.queue;
  if (job.state !== 'queued' || !q) return null;
  const ahead = q.jobs_ahead ?? 0;
  return h('p', { class: 'queue-place', 'data-test': 'queue-place' },
    `${num(ahead)} job${ahead === 1 ? '' : 's'} ahead, about ${duration(q.estimated_wait_s)}.`);
}

function resultBlock(result) {
  if (!result) return null;
  return section('Zip',
    facts([
      ['Download', externalLink(result.url, 'Download the zip'), 'download'],
      ['Size', bytes(result.size_bytes)],
      ['Images', num(result.images)],
      ['Stored at', h('code', null, `${result.location?.bucket ?? ''}/${result.location?.key ?? ''}`)],
    ]));
}

function skippedBlock(result) {
  const skipped = Array.isArray(result?.skipped) ? result.skipped : [];
  if (!skipped.length) return null;
  const columns = [{ label: 'Image' }, { label: 'Code' }, { label: 'Message' }];
  return section(`Skipped images (${num(skipped.length)})`,
    table(columns, skipped.map((s) => row(columns, [h('code', null, s.id), h('code', null, s.code), s.message]))
      , { class: 'skipped' }));
}

function reportBlock(result) {
  const report = result?.report;
  if (!report) return null;
  const labels = Object.entries(report.labels ?? {});
  const columns = [{ label: 'Label' }, { label: 'Images', num: true }];
  const warnings = Array.isArray(report.warnings) ? report.warnings : [];
  return section('Dataset report',
    h('div', { class: 'columns' },
      h('div', null, h('h3', null, 'Labels'),
        labels.length
          ? table(columns, labels.map(([label, count]) => row(columns, [h('span', { class: 'label-name' }, label), num(count)])), { class: 'labels' })
          : h('p', { class: 'empty' }, 'No images in the zip.')),
      h('div', null, h('h3', null, 'Warnings'),
        warnings.length
          ? h('ul', { class: 'warnings' }, warnings.map((w) => h('li', null,
            h('code', { class: 'warning-code' }, w.code), ' ', w.message,
            (w.labels?.length || w.ids?.length)
              ? h('span', { class: 'muted' }, ` (${[...(w.labels ?? []).map((l) => `label ${l}`), ...(w.ids ?? []).map((i) => `image ${i}`)].join(', ')})`)
              : null)))
          : h('p', { class: 'empty' }, 'No warnings.'))));
}

function errorBlock(error) {
  if (!error) return null;
  return section('Error', h('div', { class: 'error-box', 'data-test': 'job-error' },
    h('code', null, error.code), ' ', error.message));
}

function erasedView(receipt, jobId) {
  const e = receipt?.erased ?? {};
  const columns = [{ label: 'What' }, { label: 'Erased', num: true }];
  const rows = [['Zips', e.zips], ['Cache entries', e.cache_entries], ['Specs', e.specs], ['Statuses', e.statuses], ['Dead letters', e.dead_letters]]
    .map(([what, count]) => row(columns, [what, num(count)]));
  return h('div', { class: 'job', 'data-view': 'job-erased' },
    h('div', { class: 'view-head' }, h('h1', null, 'Job ', h('code', null, receipt?.job_id ?? jobId), ' erased')),
    section('Receipt', table(columns, rows, { class: 'receipt', 'data-test': 'erase-receipt' })),
    h('p', null, h('a', { href: '#/jobs' }, 'Back to jobs')));
}

export async function jobView(ctx) {
  const jobId = ctx.params[0];
  const path = `v1/jobs/${encodeURIComponent(jobId)}`;
  const job = await ctx.get(path);
  const ended = FINAL.includes(job.state);

  const cancel = async () => {
    const ok = await ctx.confirm({
      title: 'Cancel this job?',
      message: `Job ${job.job_id} will stop (a running job at its next image). Its status stays readable.`,
      confirmLabel: 'Cancel the job',
    });
    if (!ok) return;
    await ctx.act(async () => {
      const answer = await ctx.request(`${path}/cancel`, { method: 'POST' });
      ctx.flash(answer.status === 202
        ? 'The running job was asked to stop; it stops at its next image.'
        : 'The job is cancelled.');
      ctx.reload();
    });
  };
  const erase = async () => {
    const ok = await ctx.confirm({
      title: 'Erase this job?',
      message: `Job ${job.job_id}, its zip, its status and everything cached from its pictures will be deleted. This cannot be undone.`,
      confirmLabel: 'Erase the job',
    });
    if (!ok) return;
    await ctx.act(async () => {
      const answer = await ctx.request(path, { method: 'DELETE' });
      ctx.flash(`Job ${job.job_id} is erased.`);
      ctx.show(erasedView(answer.data, job.job_id), { title: 'Erased' });
    });
  };

  const started = job.started_at;
  const node = h('div', { class: 'job', 'data-view': 'job', 'data-state': job.state },
    h('div', { class: 'view-head' },
      h('h1', null, 'Job ', h('code', { 'data-test': 'job-id' }, job.job_id), ' ', stateBadge(job.state)),
      h('div', { class: 'actions' },
        ended ? null : h('button', { type: 'button', id: 'cancel-job', class: 'warn', onclick: cancel }, 'Cancel'),
        h('button', { type: 'button', id: 'erase-job', class: 'danger', onclick: erase }, 'Erase'))),
    section('Status',
      facts([
        ['Tenant', job.tenant ? h('a', { href: route(['jobs'], { tenant: job.tenant }) }, job.tenant) : '—', 'tenant'],
        ['Project', job.project_id ? h('a', { href: route(['jobs'], { project_id: job.project_id }) }, job.project_id) : '—', 'project'],
        ['Attempt', num(job.attempt)],
        ['Created', time(job.created_at)],
        ['Started', time(started)],
        ['Finished', time(job.finished_at)],
        ['Took', ended && started ? duration(between(started, job.finished_at)) : '—'],
      ]),
      queuePlace(job),
      progressBlock(job)),
    errorBlock(job.error),
    resultBlock(job.result),
    skippedBlock(job.result),
    reportBlock(job.result));
  return { title: `Job ${job.job_id}`, node, refreshMs: ended ? 0 : JOB_REFRESH_MS };
}
