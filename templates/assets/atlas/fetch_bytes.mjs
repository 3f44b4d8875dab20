/* The one way the atlas scripts fetch a data file of the site: its bytes, or a one-line error naming the
 * HTTP status and the URL (each caller keeps its own cache of the decoded result). */

/** Promise of the ArrayBuffer at ``url``; rejects with "atlas: <status> <url>" unless the answer is 2xx. */
export function fetchBytes(url) {
  return fetch(url).then((r) => {
    if (!r.ok) throw new Error("atlas: " + r.status + " " + url);
    return r.arrayBuffer();
  });
}
