/* Starts the atlas' page scripts (main.mjs and the ES modules it imports), except on a page opened from
 * disk (file://), where browsers block modules: there the theme override file-protocol.js says how to
 * serve the site. A classic script, so that file:// pages make no blocked module request. */
if (location.protocol !== "file:") import("./main.mjs");
