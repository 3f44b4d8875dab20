/* Small DOM helpers: every node is built with createElement / textContent (no innerHTML). */

export function el(tag, attrs, children) {
  const node = document.createElementNS(
    tag === "svg" || tag === "rect" ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.setAttribute("class", v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children || []) if (child) node.appendChild(child);
  return node;
}

/** Set the form field(s) called ``name``: radios and checkboxes are checked, others get the value. */
export function setField(form, name, value) {
  const fields = form.querySelectorAll("[name='" + name + "']");
  for (const f of fields) {
    if (f.type === "radio") f.checked = f.value === String(value);
    else if (f.type === "checkbox") f.checked = Array.isArray(value) ? value.includes(f.value) : !!value;
    else f.value = String(value);
  }
}

export function show(node, visible) { if (node) node.hidden = !visible; }
