/* The attention-map methods as the page's data block lists them (emitted by atlas.pages from the method
 * registry, ssl_attention/methods.py): the JS names no method itself. Pure. */

/** Method keys in display order. */
export const methodKeys = (data) => data.methods.map((m) => m.key);
/** "layer" or "stage": what the method's depth index counts. */
export const methodUnit = (data, method) => {
  const m = data.methods.find((x) => x.key === method);
  return m ? m.unit : "layer";
};
/** Maps of ``method`` along its depth index in ``model``: its targets (relevance, gradcam_vit), else its layers. */
export const depthIn = (model, method) => (model.depths && model.depths[method]) || model.layers;
/** The name of depth index ``index`` of ``method`` in ``model``: a target (class or prompt), else "<unit> <index>". */
export const depthName = (data, model, method, index) =>
  methodUnit(data, method) === "target" && model.targets && model.targets[index] !== undefined
    ? model.targets[index] : methodUnit(data, method) + " " + index;
