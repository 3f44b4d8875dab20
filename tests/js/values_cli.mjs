// Decodes the sprite sheet named on the command line with values.mjs and writes {layers, variants, values,
// top, mass}: every tile's values ("nan", "inf", "-inf" for the non-finite ones) and its masks under
// thresholds.mjs for p and mass given as the 2nd and 3rd arguments. Used by tests/test_js.py.
import { readFileSync } from "node:fs";
import { massMask, topPercentMask } from "../../templates/assets/atlas/thresholds.mjs";
import { decodeSprite } from "../../templates/assets/atlas/values.mjs";

const [file, p, mass] = process.argv.slice(2);
const sheet = await decodeSprite(readFileSync(file));
const tiles = [];
for (let l = 0; l < sheet.layers; l++) for (let v = 0; v < sheet.variants; v++) tiles.push(sheet.values(l, v));
const text = (x) => (Number.isNaN(x) ? "nan" : x === Infinity ? "inf" : x === -Infinity ? "-inf" : x);
process.stdout.write(JSON.stringify({
  layers: sheet.layers, variants: sheet.variants,
  values: tiles.map((t) => Array.from(t, text)),
  top: tiles.map((t) => Array.from(topPercentMask(t, Number(p)))),
  mass: tiles.map((t) => Array.from(massMask(t, Number(mass)))),
}));
