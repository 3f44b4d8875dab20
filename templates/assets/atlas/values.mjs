/* Map values for the thresholds and the composite, decoded from the heatmap sprite sheets themselves:
 * each sheet's private "atRg" chunk holds every tile's range (and its non-finite cells), so a cell's
 * value is fround(lo + (hi - lo) * q / 255) of its 8-bit index q. The twin of atlas/map_values.py
 * (format on the Export format page); the PNG is decoded here, not through a canvas, so no colour
 * management can touch an index. fetchValues is the one loader of values for every page script. */

import { fetchBytes } from "./fetch_bytes.mjs";
import { spriteUrl } from "./layout.mjs";

const be32 = (b, at) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;

/** The chunks of a PNG file: {IHDR, IDAT (concatenated), atRg} as Uint8Arrays. Pure. */
export function pngChunks(bytes) {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (!sig.every((x, i) => bytes[i] === x)) throw new Error("atlas: not a PNG file");
  const out = { IDAT: [] };
  for (let at = 8; at + 8 <= bytes.length;) {
    const length = be32(bytes, at);
    const kind = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (kind === "IDAT") out.IDAT.push(data);
    else if (!(kind in out)) out[kind] = data;
    at += 12 + length;
  }
  return out;
}

/** Undo the PNG row filters of an 8-bit greyscale image (one byte per pixel). Pure. */
export function unfilter(raw, width, height) {
  const px = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (width + 1)], src = y * (width + 1) + 1, row = y * width, up = row - width;
    for (let x = 0; x < width; x++) {
      const a = x > 0 ? px[row + x - 1] : 0, b = y > 0 ? px[up + x] : 0, c = x > 0 && y > 0 ? px[up + x - 1] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error("atlas: bad PNG filter " + filter);
      px[row + x] = (raw[src + x] + pred) & 255;
    }
  }
  return px;
}

async function inflate(parts) {
  const stream = new Blob(parts).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Decode a sprite sheet (its file's bytes) to its values: {layers, variants, cells, values(layer, variant)}
 *  where values() is a Float64Array of gh * gw float32-exact numbers, row-major. */
export async function decodeSprite(buffer) {
  const chunks = pngChunks(new Uint8Array(buffer));
  const ihdr = new DataView(chunks.IHDR.buffer, chunks.IHDR.byteOffset, 13);
  const width = ihdr.getUint32(0), height = ihdr.getUint32(4);
  if (ihdr.getUint8(8) !== 8 || ihdr.getUint8(9) !== 0 || ihdr.getUint8(12) !== 0) {
    throw new Error("atlas: a sprite sheet must be an 8-bit greyscale, non-interlaced PNG");
  }
  if (!chunks.atRg) throw new Error("atlas: sprite sheet without its atRg chunk");
  const px = unfilter(await inflate(chunks.IDAT), width, height);
  const r = new DataView(chunks.atRg.buffer, chunks.atRg.byteOffset, chunks.atRg.byteLength);
  const [version, layers, variants, gh, gw] = [0, 2, 4, 6, 8].map((at) => r.getUint16(at, true));
  if (version !== 1) throw new Error("atlas: unknown atRg version " + version);
  const cells = gh * gw, tiles = layers * variants, odd = new Map();
  const count = r.getUint32(10 + tiles * 8, true);
  for (let j = 0; j < count; j++) {
    const at = 14 + tiles * 8 + j * 8;
    odd.set(r.getUint32(at, true), r.getFloat32(at + 4, true));
  }
  function values(layer, variant) {
    const t = layer * variants + variant;
    const lo = r.getFloat32(10 + t * 8, true), hi = r.getFloat32(14 + t * 8, true);
    const out = new Float64Array(cells);
    for (let i = 0; i < cells; i++) {
      const q = px[(layer * gh + Math.floor(i / gw)) * width + variant * gw + (i % gw)];
      const special = odd.get(t * cells + i);
      out[i] = special !== undefined ? special : Math.fround(lo + (hi - lo) * q / 255);
    }
    return out;
  }
  return { layers, variants, cells, values };
}

const sheets = new Map();  // sprite URL -> Promise of decodeSprite's result
/** The values of one layer of (model, image, method): a Float64Array per variant (fused first, then each
 *  head), gh * gw cells each, row-major. The sprite is fetched and decoded once per page. */
export function fetchValues(data, model, image, method, layer) {
  const url = spriteUrl(data, model, image, method);
  if (!sheets.has(url)) {
    sheets.set(url, fetchBytes(url).then(decodeSprite));
    sheets.get(url).catch(() => sheets.delete(url));  // a later call may try again
  }
  return sheets.get(url).then((s) => Array.from({ length: s.variants }, (_, v) => s.values(Number(layer), v)));
}
