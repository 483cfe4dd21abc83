// zipfleet operator page: how numbers, times and sizes are written.
// One place, so every view says "3 min 20 s" and "1,204" the same way;
// a missing value is an em dash.

const DASH = '—';
const integer = new Intl.NumberFormat('en');
const decimal = new Intl.NumberFormat('en', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

// A float sum over nothing can arrive as -0 ("-0.0" in JSON): shown as 0.
const finite = (value) => typeof value === 'number' && Number.isFinite(value);

export function num(value) {
  return finite(value) ? integer.format(value + 0) : DASH;
}

export function rate(value) {
  return finite(value) ? decimal.format(Math.abs(value) < 0.05 ? 0 : value) : DASH;
}

export function percent(part, whole) {
  if (!whole) return DASH;
  return `${Math.round((100 * part) / whole)} %`;
}

/** Seconds as "45 s", "3 min 20 s", "2 h 5 min". */
export function duration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return DASH;
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** An RFC 3339 time as local "2026-11-01 14:03:07". */
export function time(iso) {
  if (!iso) return DASH;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** Today's times as "14:03:07", older ones as "2026-10-30 09:12", in tables. */
export function shortTime(iso, today = new Date()) {
  if (!iso) return DASH;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const full = time(iso);
  return date.toDateString() === today.toDateString() ? full.slice(11) : full.slice(0, 16);
}

/** Time of day only, for "updated 14:03:07". */
export function clock(date = new Date()) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** How long ago an RFC 3339 time was, from `now` (the server's clock when known). */
export function ago(iso, now = new Date()) {
  if (!iso) return DASH;
  const then = new Date(iso);
  if (Number.isNaN(then.getTime())) return String(iso);
  return `${duration((new Date(now).getTime() - then.getTime()) / 1000)} ago`;
}

/** Seconds between two RFC 3339 times. */
export function between(start, end) {
  if (!start || !end) return null;
  return (new Date(end).getTime() - new Date(start).getTime()) / 1000;
}

export function bytes(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return DASH;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = value;
  let unit = 0;
  while (v >= 1024 && unit < units.length - 1) {
    v /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${v} B` : `${decimal.format(v)} ${units[unit]}`;
}
