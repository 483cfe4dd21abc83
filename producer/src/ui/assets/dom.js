// zipfleet operator page: building the DOM safely.
// Every element the page shows is made here: text goes in as text nodes,
// attributes through setAttribute/properties, never as markup (no string
// is ever parsed as HTML anywhere in the page), so a label like <img src=x onerror=alert(1)> is
// shown as exactly those characters. Links to other sites are made only for
// http(s) URLs, by externalLink().

/** h('tag', {attr: value, onclick: fn}, ...children): one element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function') {
      if (!name.startsWith('on')) throw new Error(`h(): ${name} is a function`);
      el.addEventListener(name.slice(2), value);
    } else if (name.toLowerCase().startsWith('on')) {
      // An event-handler attribute from a string would be script from text.
      throw new Error(`h(): ${name} must be a function`);
    } else if (name === 'href' && !String(value).startsWith('#')) {
      // In-page routes only; other URLs go through externalLink().
      throw new Error('h(): only #/… hrefs; use externalLink()');
    } else if (name === 'value' || name === 'checked' || name === 'selected' || name === 'disabled') {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** The URL as a link if it is http or https; anything else as plain text. */
export function externalLink(url, text) {
  let parsed = null;
  try {
    parsed = new URL(String(url));
  } catch {
    parsed = null;
  }
  if (parsed && (parsed.protocol === 'http:' || parsed.protocol === 'https:')) {
    const a = h('a', { rel: 'noopener noreferrer', target: '_blank', referrerpolicy: 'no-referrer' }, text ?? parsed.href);
    a.setAttribute('href', parsed.href);
    return a;
  }
  return h('code', { class: 'url' }, String(url));
}

/** An in-page link: #/path with each segment encoded, and a query. */
export function route(path, query) {
  const segments = path.map((part) => encodeURIComponent(String(part)));
  let href = '#/' + segments.join('/');
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
    }
    const text = params.toString();
    if (text) href += '?' + text;
  }
  return href;
}

/** A coloured badge for a job state. */
export function stateBadge(state) {
  const known = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
  const cls = known.includes(state) ? state : 'unknown';
  return h('span', { class: `badge state-${cls}`, 'data-state': state }, state ?? 'unknown');
}

// A column's cell class: numbers right-aligned, some cells kept on one line.
function cellClass(column) {
  const classes = [column?.num ? 'num' : null, column?.nowrap ? 'nowrap' : null, column?.cls ?? null].filter(Boolean);
  return classes.length ? classes.join(' ') : null;
}

/** A table from columns [{label, num, nowrap, cls}] and rows made by row(). */
export function table(columns, rows, attrs) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('thead', null, h('tr', null, columns.map((c) => h('th', { class: cellClass(c), scope: 'col' }, c.label)))),
      h('tbody', null, rows)));
}

/** A row whose cells follow the columns' alignment. */
export function row(columns, cells, attrs) {
  return h('tr', attrs, cells.map((cell, i) => h('td', { class: cellClass(columns[i]) }, cell)));
}

/** A section with a heading. */
export function section(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', null, title), ...children);
}

/** An error box with the API's message. */
export function errorBox(message) {
  return h('div', { class: 'error-box', role: 'alert' }, message);
}
