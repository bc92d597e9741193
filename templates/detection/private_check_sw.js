{% autoescape off %}// The Private check page's service worker, served by detection.views.private_check_sw from
// /private-check/ (so its scope is that page only) and registered by static/js/private-check/page.js.
// It lets the page open offline once it has been opened online: it keeps the static files the
// page loads and a copy of the page rendered for a signed-out visitor (/private-check/offline/:
// nothing of a signed-in user is ever stored). The model files are not its business: engine.js
// keeps those in its own caches ("deepfake-web-model:<version>").
//
// - A visit to the page: the network first; only when it cannot be reached, the kept copy.
// - The static files listed here: from this worker's cache first (their contents are part of
//   its version, so a release that changes one installs a new worker, which fetches them again).
// - Anything else (the API, other pages, the model files, every POST) is not touched.
"use strict";

const CACHE_PREFIX = "private-check-page:";
const CACHE = CACHE_PREFIX + {{ version }};
const PAGE = new URL({{ page_url }}, self.location.href);
const OFFLINE_COPY = new URL({{ offline_url }}, self.location.href).href;
const ASSETS = {{ assets }}.map((url) => new URL(url, self.location.href).href);
const ASSET_SET = new Set(ASSETS);

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // "no-cache": the HTTP cache may hold an older copy of a file whose name did not change.
    await cache.addAll(ASSETS.map((url) => new Request(url, { cache: "no-cache" })));
    // Without cookies: the copy is a signed-out visitor's page whoever installs the worker.
    const copy = await fetch(OFFLINE_COPY, { cache: "no-cache", credentials: "omit" });
    if (!copy.ok) {
      throw new Error(`the offline copy of the page answered HTTP ${copy.status}`);
    }
    await cache.put(OFFLINE_COPY, copy);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    // Older versions of this worker's cache; the model's caches have another prefix.
    for (const key of await caches.keys()) {
      if (key.startsWith(CACHE_PREFIX) && key !== CACHE) {
        await caches.delete(key);
      }
    }
    await self.clients.claim();
  })());
});

async function pageFetch(request) {
  try {
    return await fetch(request);
  } catch (error) {
    const copy = await (await caches.open(CACHE)).match(OFFLINE_COPY);
    if (copy) {
      return copy;
    }
    throw error;
  }
}

async function assetFetch(request) {
  const hit = await (await caches.open(CACHE)).match(request, { ignoreVary: true });
  return hit || fetch(request);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") {
    return;
  }
  const url = new URL(request.url);
  if (request.mode === "navigate") {
    if (url.origin === PAGE.origin && url.pathname === PAGE.pathname) {
      event.respondWith(pageFetch(request));
    }
    return;
  }
  if (ASSET_SET.has(url.href)) {
    event.respondWith(assetFetch(request));
  }
});
{% endautoescape %}
