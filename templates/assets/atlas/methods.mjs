/* The attention-map methods as the page's data block lists them (emitted by atlas.pages from the method
 * registry, ssl_attention/methods.py): the JS names no method itself. Pure. */

/** Method keys in display order. */
export const methodKeys = (data) => data.methods.map((m) => m.key);
/** "layer" or "stage": what the method's depth index counts. */
export const methodUnit = (data, method) => {
  const m = data.methods.find((x) => x.key === method);
  return m ? m.unit : "layer";
};
