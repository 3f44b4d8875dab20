// Reads {maps, p, mass} as JSON on stdin ("nan", "inf", "-inf" for the non-finite values), writes
// {top, keep}: the masks of thresholds.mjs. Used by tests/test_js.py against ssl_attention/thresholds.py.
import { massMask, topPercentMask } from "../../templates/assets/atlas/thresholds.mjs";

const special = { nan: NaN, inf: Infinity, "-inf": -Infinity };
let text = "";
process.stdin.on("data", (chunk) => { text += chunk; }).on("end", () => {
  const { maps, p, mass } = JSON.parse(text);
  const values = maps.map((m) => m.map((x) => (typeof x === "string" ? special[x] : x)));
  process.stdout.write(JSON.stringify({
    top: values.map((m) => Array.from(topPercentMask(m, p))),
    keep: values.map((m) => Array.from(massMask(m, mass))),
  }));
});
