// zipfleet operator page: the dead-letter queue, from GET /v1/dead-letters.
// Each message with why it was dead-lettered, its job id and the start of
// its body; redrive one (POST /v1/dead-letters/{id}/redrive), delete one
// (DELETE /v1/dead-letters/{id}, after a confirmation), or redrive them
// all (POST /v1/dead-letters/redrive, after a confirmation). Not refreshed
// by itself, so a row never moves under the operator's pointer.

import { h, route, section, table, row } from '../dom.js';
import { num } from '../format.js';

const COLUMNS = [{ label: 'Id', nowrap: true }, { label: 'Reason', cls: 'reason' }, { label: 'Job' }, { label: 'Preview' }, { label: '', nowrap: true }];

export async function deadLettersView(ctx) {
  const list = await ctx.get('v1/dead-letters');
  const messages = Array.isArray(list.messages) ? list.messages : [];
  const depth = list.depth ?? messages.length;

  const redriveOne = (message) => ctx.act(async () => {
    const answer = await ctx.request(`v1/dead-letters/${encodeURIComponent(message.id)}/redrive`, { method: 'POST' });
    ctx.flash(`Moved ${num(answer.data?.moved ?? 1)} message back to the jobs queue.`);
    ctx.reload();
  });
  const deleteOne = async (message) => {
    const ok = await ctx.confirm({
      title: 'Delete this dead letter?',
      message: `Message ${message.id}${message.job_id ? ` (job ${message.job_id})` : ''} will be deleted for good.`,
      confirmLabel: 'Delete the message',
    });
    if (!ok) return;
    await ctx.act(async () => {
      await ctx.request(`v1/dead-letters/${encodeURIComponent(message.id)}`, { method: 'DELETE' });
      ctx.flash(`Deleted message ${message.id}.`);
      ctx.reload();
    });
  };
  const redriveAll = async () => {
    const ok = await ctx.confirm({
      title: 'Redrive every dead letter?',
      message: `All ${num(depth)} messages go back to the jobs queue. Messages that failed for a lasting reason will come back here.`,
      confirmLabel: 'Redrive all',
    });
    if (!ok) return;
    await ctx.act(async () => {
      const answer = await ctx.request('v1/dead-letters/redrive', { method: 'POST' });
      ctx.flash(`Moved ${num(answer.data?.moved)} messages back to the jobs queue.`);
      ctx.reload();
    });
  };

  const rows = messages.map((message) => row(COLUMNS, [
    h('code', null, message.id),
    message.reason ?? h('span', { class: 'muted' }, 'not recorded'),
    message.job_id ? h('a', { href: route(['jobs', message.job_id]) }, message.job_id) : h('span', { class: 'muted' }, 'none'),
    h('code', { class: 'preview' }, message.preview),
    h('div', { class: 'row-actions' },
      h('button', { type: 'button', class: 'small redrive', onclick: () => redriveOne(message) }, 'Redrive'),
      h('button', { type: 'button', class: 'small danger delete', onclick: () => deleteOne(message) }, 'Delete')),
  ], { 'data-dead-letter': message.id }));

  const node = h('div', { class: 'dead-letters', 'data-view': 'dead-letters' },
    h('div', { class: 'view-head' },
      h('h1', null, 'Dead letters'),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'quiet', onclick: () => ctx.reload() }, 'Refresh'),
        h('button', { type: 'button', id: 'redrive-all', class: 'warn', disabled: depth === 0, onclick: redriveAll }, 'Redrive all'))),
    h('p', { class: 'muted', 'data-test': 'dead-letter-depth' },
      `${num(depth)} message${depth === 1 ? '' : 's'} in the dead-letter queue${messages.length < depth ? `; the first ${num(messages.length)} shown` : ''}.`),
    section('Messages', messages.length
      ? table(COLUMNS, rows, { class: 'dead-letter-list' })
      : h('p', { class: 'empty', 'data-test': 'no-dead-letters' }, 'The dead-letter queue is empty.')));
  return { title: 'Dead letters', node, refreshMs: 0 };
}
