// zipfleet UI tests: the web images the test jobs download.
// A Node HTTP server on 127.0.0.1 serving PNGs made here (a tiny PNG
// encoder: no fixture files, no dependencies): /img/N.png at once,
// /slow/N.png?ms=T dripping its bytes over T ms (so a job's progress moves
// while the browser watches), /gone/N.png a 404 (a skipped image).
// Any query string is ignored, so each job can use URLs of its own (the
// workers' URL cache would otherwise answer a second job without a download).

import http from 'node:http';
import zlib from 'node:zlib';

const CRC_TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buffer) {
  let c = 0xffffffff;
  for (const byte of buffer) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** An RGB PNG of width × height whose pixel (x, y) is pixel(x, y) → [r, g, b]. */
export function png(width, height, pixel) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: RGB
  const raw = Buffer.alloc((width * 3 + 1) * height);
  let at = 0;
  for (let y = 0; y < height; y += 1) {
    raw[at] = 0; // filter: none
    at += 1;
    for (let x = 0; x < width; x += 1) {
      const [r, g, b] = pixel(x, y);
      raw[at] = r;
      raw[at + 1] = g;
      raw[at + 2] = b;
      at += 3;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Picture number n: a gradient with blocks placed by a generator seeded
 *  with n, so no two numbers look alike to the duplicate check. */
export function picture(n, size = 128) {
  let seed = (n * 2654435761) >>> 0 || 1;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    seed >>>= 0;
    return seed / 0x100000000;
  };
  const base = [random() * 255, random() * 255, random() * 255];
  const blocks = Array.from({ length: 6 }, () => ({
    x: random() * size, y: random() * size, w: 10 + random() * size * 0.5, h: 10 + random() * size * 0.5,
    colour: [random() * 255, random() * 255, random() * 255],
  }));
  return png(size, size, (x, y) => {
    for (let i = blocks.length - 1; i >= 0; i -= 1) {
      const b = blocks[i];
      if (x >= b.x && x < b.x + b.w && y >= b.y && y < b.y + b.h) return b.colour.map(Math.floor);
    }
    return base.map((c, i) => Math.floor((c + (i === 0 ? x : y) * 1.5) % 256));
  });
}

export async function startImageServer() {
  const cache = new Map();
  const image = (n) => {
    if (!cache.has(n)) cache.set(n, picture(n));
    return cache.get(n);
  };
  const timers = new Set();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const found = /^\/(img|slow|gone)\/(\d+)\.png$/.exec(url.pathname);
    if (!found) {
      res.writeHead(404).end();
      return;
    }
    const [, kind, number] = found;
    if (kind === 'gone') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('gone');
      return;
    }
    const body = image(Number(number));
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': body.length });
    if (kind === 'img') {
      res.end(body);
      return;
    }
    // Drip: ten slices over `ms` milliseconds.
    const ms = Math.min(Number(url.searchParams.get('ms') ?? 2000), 30000);
    const slices = 10;
    const size = Math.ceil(body.length / slices);
    let sent = 0;
    const timer = setInterval(() => {
      const next = body.subarray(sent, sent + size);
      sent += next.length;
      if (sent >= body.length) {
        clearInterval(timer);
        timers.delete(timer);
        res.end(next);
      } else {
        res.write(next);
      }
    }, ms / slices);
    timers.add(timer);
    res.on('close', () => {
      clearInterval(timer);
      timers.delete(timer);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    url: (kind, n, query = {}) => {
      const u = new URL(`/${kind}/${n}.png`, base);
      for (const [key, value] of Object.entries(query)) u.searchParams.set(key, String(value));
      return u.href;
    },
    close: async () => {
      for (const timer of timers) clearInterval(timer);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
