"""What the Private check page's service worker (templates/detection/private_check_sw.js) keeps so
that the page opens offline once it has been opened online: the static files the page loads, by
the URLs the browser asks for, and a version that changes whenever one of them, or the offline
copy of the page, changes (a changed worker is installed again and fetches them afresh). The model
files are not here: the page's engine.js caches those itself, per model version."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from urllib.parse import urljoin

from django.contrib.staticfiles import finders
from django.templatetags.static import static

# What templates/base.html and templates/detection/private_check.html load, by static path.
PAGE_STATIC = (
    "css/site.css",
    "css/print.css",
    "img/favicon.svg",
    "js/local-time.js",
    "vendor/tfjs/tf-core.min.js",
    "vendor/tfjs/tf-backend-cpu.min.js",
    "vendor/tfjs/tf-backend-wasm.min.js",
    "vendor/tfjs/tfjs-backend-wasm.wasm",
    "vendor/tfjs/tfjs-backend-wasm-simd.wasm",
    "vendor/tfjs/tfjs-backend-wasm-threaded-simd.wasm",
    "js/private-check/page.js",
)
PAGE_MODULE_DIR = "js/private-check/"
# The modules page.js imports, itself or through engine.js ("./engine.js"): the browser resolves
# them against page.js's own URL, and the static storage leaves import statements as they are
# (ManifestStaticFilesStorage.support_js_module_import_aggregation is off), so they are asked for
# by their plain names even where page.js has a hashed one. A test keeps this list complete.
PAGE_MODULES = ("engine.js", "decode.js", "graph.js", "mtcnn.js", "resample.js")


def offline_assets() -> list[tuple[str, str]]:
    """(static path, URL) of every static file the page needs, in the order they are cached."""
    assets = [(path, static(path)) for path in PAGE_STATIC]
    page_js = static(PAGE_MODULE_DIR + "page.js")
    assets += [(PAGE_MODULE_DIR + name, urljoin(page_js, name)) for name in PAGE_MODULES]
    return assets


@lru_cache(maxsize=64)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _static_digest(static_path: str) -> str:
    """The sha256 of a static file's content ("missing" where no finder has it: the worker's
    install then fails on its 404 and the page simply stays online-only)."""
    found = finders.find(static_path)
    if not found:
        return "missing"
    stat = Path(found).stat()
    return _file_digest(str(found), stat.st_mtime_ns, stat.st_size)


def offline_version(*, assets: list[tuple[str, str]], offline_page: bytes) -> str:
    """A short hash of the assets' URLs and contents and of the offline copy of the page: files
    keep their URL from one release to the next where they are not hashed (the modules above,
    every file under DEBUG), so the URLs alone would not say that one changed."""
    digest = hashlib.sha256()
    for static_path, url in assets:
        digest.update(f"{url}\0{_static_digest(static_path)}\n".encode())
    digest.update(hashlib.sha256(offline_page).hexdigest().encode())
    return digest.hexdigest()[:16]
