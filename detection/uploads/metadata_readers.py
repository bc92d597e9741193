"""One bounded reader per kind of metadata an upload can carry: EXIF, PNG text chunks, XMP and
C2PA Content Credentials. ``detection.uploads.provenance`` calls them and turns what they find
into declarations.

Every reader keeps only the fields listed here, cut to a length, and bounds its work by the size
of what it reads (an upload is at most DETECTION_MAX_UPLOAD_BYTES): a compressed text chunk is
inflated to at most ``INFLATE_MAX_BYTES``, XMP over ``XMP_MAX_BYTES`` is not parsed, no more than
``PNG_TEXT_MAX_CHUNKS`` text chunks are looked at. A damaged block makes its reader raise; the
caller records that and goes on. Nothing here reaches the network: the C2PA reader runs with
remote manifest fetching and OCSP switched off.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import zlib
from xml.parsers import expat

from PIL import Image

from detection.uploads.containers import webp_chunk
from detection.uploads.generators import AI_SOURCE_TYPES, source_type_code

logger = logging.getLogger(__name__)

SHORT_MAX_CHARS = 200  # a name, a date, a URL
TEXT_MAX_CHARS = 2000  # a prompt, a comment: enough to read, not a whole workflow
PNG_TEXT_MAX_CHUNKS = 64
PNG_TEXT_MAX_KEYS = 24
INFLATE_MAX_BYTES = 1024 * 1024
XMP_MAX_BYTES = 512 * 1024
XMP_MAX_ELEMENTS = 20_000
C2PA_MAX_ERRORS = 10
C2PA_MAX_ACTIONS = 20
C2PA_MAX_MANIFESTS = 50

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(value: object, limit: int = SHORT_MAX_CHARS) -> str | None:
    """A value fit to store and show: text, no control characters, stripped, at most `limit`
    characters (an ellipsis marks a cut); None when nothing is left."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value[: limit * 8].decode("utf-8", errors="replace")
    # Only the start can be kept: a megabyte of text is not scanned to keep 2,000 characters.
    text = _CONTROL.sub("", str(value)[: limit * 4]).strip()
    if not text:
        return None
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


# --- EXIF ------------------------------------------------------------------------------------

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_MAKE, _MODEL, _SOFTWARE, _DATETIME = 0x010F, 0x0110, 0x0131, 0x0132
_DATETIME_ORIGINAL, _USER_COMMENT = 0x9003, 0x9286


def exif_read(img: Image.Image) -> dict:
    """Camera make and model, software, dates, the user comment (where Stable Diffusion WebUI
    writes its settings in a JPEG or WebP) and whether a GPS position is present, never the
    position itself. {} when the file has no EXIF."""
    exif = img.getexif()
    if not exif:
        return {}
    sub = exif.get_ifd(_EXIF_IFD)
    out = {
        "make": clean_text(exif.get(_MAKE)),
        "model": clean_text(exif.get(_MODEL)),
        "software": clean_text(exif.get(_SOFTWARE)),
        "datetime_original": clean_text(sub.get(_DATETIME_ORIGINAL), 40),
        "datetime": clean_text(exif.get(_DATETIME), 40),
        "user_comment": _user_comment(sub.get(_USER_COMMENT)),
        # Only whether there is one: the coordinates are never read into what is kept.
        "gps_present": bool(exif.get_ifd(_GPS_IFD)),
    }
    return out


def _user_comment(value: object) -> str | None:
    """EXIF UserComment: an 8-byte character code, then the text."""
    if isinstance(value, str):
        return clean_text(value, TEXT_MAX_CHARS)
    if not isinstance(value, bytes) or not value:
        return None
    code, body = value[:8], value[8:]
    if code.startswith(b"UNICODE"):
        # UTF-16 in the byte order of the writer; ASCII text gives it away by its zero bytes.
        little = len(body) >= 2 and body[1] == 0 and body[0] != 0
        text = body.decode("utf-16-le" if little else "utf-16-be", errors="replace")
    elif code.startswith(b"ASCII") or code == b"\x00" * 8:
        text = body.decode("latin-1")
    else:
        text = value.decode("utf-8", errors="replace")  # no code: some writers skip it
    return clean_text(text.replace("\x00", ""), TEXT_MAX_CHARS)


# --- PNG text chunks ---------------------------------------------------------------------------

_PNG_SIGNATURE_LENGTH = 8
XMP_PNG_KEYWORD = "XML:com.adobe.xmp"


def png_text_chunks(data: bytes) -> tuple[list[tuple[str, str]], list[str]]:
    """(keyword, text) of each tEXt, zTXt and iTXt chunk, in file order, and notes on what was
    cut short. Walks the chunks itself: Pillow reads the chunks after the image data only when
    decoding the last frame of an animation, and inflates without our limits."""
    chunks: list[tuple[str, str]] = []
    notes: list[str] = []
    pos, end, seen = _PNG_SIGNATURE_LENGTH, len(data), 0
    while pos + 8 <= end:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IEND":
            break
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            continue
        seen += 1
        if seen > PNG_TEXT_MAX_CHUNKS:
            notes.append(f"Only the first {PNG_TEXT_MAX_CHUNKS} PNG text chunks were read.")
            break
        try:
            keyword, text, cut = _png_text_chunk(kind, body)
        except (ValueError, zlib.error, UnicodeDecodeError) as exc:
            notes.append(f"A PNG text chunk could not be read ({clean_text(str(exc), 80)}).")
            continue
        if cut:
            notes.append(f"The PNG text “{clean_text(keyword, 80)}” was too long and was cut.")
        chunks.append((keyword, text))
    return chunks, notes


def _png_text_chunk(kind: bytes, body: bytes) -> tuple[str, str, bool]:
    keyword_bytes, sep, rest = body.partition(b"\x00")
    if not sep or not keyword_bytes:
        raise ValueError("no keyword")
    keyword = keyword_bytes[:79].decode("latin-1")
    if kind == b"tEXt":
        return keyword, rest.decode("latin-1"), False
    if kind == b"zTXt":
        text, cut = _inflate(rest[1:])  # compression method byte, then zlib data
        return keyword, text.decode("latin-1"), cut
    # iTXt: compression flag, method, language tag\0, translated keyword\0, text (UTF-8).
    if len(rest) < 2:
        raise ValueError("iTXt chunk too short")
    compressed, rest = rest[0], rest[2:]
    _language, _, rest = rest.partition(b"\x00")
    _translated, _, text_bytes = rest.partition(b"\x00")
    cut = False
    if compressed:
        text_bytes, cut = _inflate(text_bytes)
    return keyword, text_bytes.decode("utf-8", errors="replace"), cut


def _inflate(compressed: bytes) -> tuple[bytes, bool]:
    """At most INFLATE_MAX_BYTES of the data (a small chunk may inflate to gigabytes), and
    whether it was cut there."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(compressed, INFLATE_MAX_BYTES)
    return out, bool(inflater.unconsumed_tail)


# --- XMP -------------------------------------------------------------------------------------

_XMP_JPEG_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XMP_NS = "http://ns.adobe.com/xap/1.0/"
_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_STEVT = "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
_PHOTOSHOP = "http://ns.adobe.com/photoshop/1.0/"
_EXIF_NS = "http://ns.adobe.com/exif/1.0/"
_DCTERMS = "http://purl.org/dc/terms/"

# Stored key: (qualified name, longest length kept). Names of people (dc:creator,
# AIPromptWriterName, photoshop:AuthorsPosition) are deliberately not read.
_XMP_FIELDS: dict[str, tuple[str, int]] = {
    "creator_tool": (f"{{{_XMP_NS}}}CreatorTool", SHORT_MAX_CHARS),
    "digital_source_type": (f"{{{_IPTC_EXT}}}DigitalSourceType", SHORT_MAX_CHARS),
    "ai_system": (f"{{{_IPTC_EXT}}}AISystemUsed", SHORT_MAX_CHARS),
    "ai_system_version": (f"{{{_IPTC_EXT}}}AISystemVersionUsed", SHORT_MAX_CHARS),
    "ai_prompt": (f"{{{_IPTC_EXT}}}AIPromptInformation", TEXT_MAX_CHARS),
    "credit": (f"{{{_PHOTOSHOP}}}Credit", SHORT_MAX_CHARS),
    "create_date": (f"{{{_XMP_NS}}}CreateDate", 40),
    "modify_date": (f"{{{_XMP_NS}}}ModifyDate", 40),
    # A C2PA manifest kept online: its address, which is never fetched.
    "c2pa_manifest_url": (f"{{{_DCTERMS}}}provenance", SHORT_MAX_CHARS),
}
_HISTORY_AGENT = f"{{{_STEVT}}}softwareAgent"
_GPS_NAMES = (f"{{{_EXIF_NS}}}GPSLatitude", f"{{{_EXIF_NS}}}GPSLongitude")
_RDF_LI = f"{{{_RDF}}}li"
_RDF_RESOURCE = f"{{{_RDF}}}resource"
XMP_HISTORY_MAX = 10


def jpeg_xmp(img: Image.Image) -> bytes | None:
    """The XMP packet of a JPEG (its APP1 segment; extended XMP is not read)."""
    for marker, body in getattr(img, "applist", []):
        if marker == "APP1" and body.startswith(_XMP_JPEG_HEADER):
            return body[len(_XMP_JPEG_HEADER) :]
    return None


def webp_xmp(data: bytes) -> bytes | None:
    return webp_chunk(data, b"XMP ")


class MetadataTooLarge(ValueError):
    pass


def xmp_read(packet: bytes) -> dict:
    """Selected XMP fields (``_XMP_FIELDS``), the distinct software agents of the editing
    history, and whether a GPS position is present (not the position). {} for an empty packet.

    Parsed with expat as a stream of events, with no tree kept and no document type declaration
    allowed (XMP never has one; entity expansion is how XML parsers are attacked), in whatever
    encoding the packet declares. ValueError (or expat.ExpatError) for what cannot be read.
    """
    packet = packet.strip(b"\x00 \t\r\n")
    if not packet:
        return {}
    if len(packet) > XMP_MAX_BYTES:
        raise MetadataTooLarge(f"{len(packet) // 1024} KB of XMP, more than is read")
    reader = _XmpReader()
    reader.parse(packet)
    out: dict = {}
    for key, (_qname, limit) in _XMP_FIELDS.items():
        out[key] = clean_text(reader.found.get(key), limit)
    agents: list[str] = []
    for agent in reader.history:
        agent = clean_text(agent)
        if agent and agent not in agents:
            agents.append(agent)
        if len(agents) >= XMP_HISTORY_MAX:
            break
    out["history_software"] = agents
    out["gps_present"] = reader.gps
    return out


class _XmpReader:
    """Collects the wanted properties from expat's events. A property is an attribute of an
    rdf:Description, or an element whose value is its text, its rdf:resource, or the first item
    of the rdf:Alt/Seq/Bag inside it."""

    def __init__(self) -> None:
        self.wanted = {qname: key for key, (qname, _limit) in _XMP_FIELDS.items()}
        self.found: dict[str, str] = {}
        self.history: list[str] = []
        self.gps = False
        self.elements = 0
        self.stack: list[dict] = []

    def parse(self, packet: bytes) -> None:
        # "}" as the separator gives "uri}name"; a leading "{" makes it ElementTree's spelling.
        parser = expat.ParserCreate(namespace_separator="}")
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._refuse_doctype
        parser.EntityDeclHandler = self._refuse_doctype
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        parser.Parse(packet, True)

    @staticmethod
    def _refuse_doctype(*_args) -> None:
        raise ValueError("a document type declaration, which XMP never has")

    @staticmethod
    def _name(name: str) -> str:
        return "{" + name if "}" in name else name

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self.elements += 1
        if self.elements > XMP_MAX_ELEMENTS:
            raise MetadataTooLarge(f"more than {XMP_MAX_ELEMENTS} XMP elements")
        tag = self._name(name)
        resource = None
        for raw, value in attrs.items():
            attr = self._name(raw)
            if attr in self.wanted:
                self.found.setdefault(self.wanted[attr], value)
            elif attr == _HISTORY_AGENT:
                self.history.append(value)
            elif attr in _GPS_NAMES:
                self.gps = True
            elif attr == _RDF_RESOURCE:
                resource = value
        if tag in _GPS_NAMES:
            self.gps = True
        self.stack.append({"tag": tag, "text": [], "resource": resource, "item": None})

    def _text(self, data: str) -> None:
        if self.stack:
            self.stack[-1]["text"].append(data)

    def _end(self, _name: str) -> None:
        node = self.stack.pop()
        tag, text = node["tag"], "".join(node["text"]).strip()
        if tag == _RDF_LI and text:
            for ancestor in reversed(self.stack):
                if ancestor["tag"] in self.wanted or ancestor["tag"] == _HISTORY_AGENT:
                    ancestor["item"] = ancestor["item"] or text
                    break
        value = text or node["resource"] or node["item"]
        if value and tag == _HISTORY_AGENT:
            self.history.append(value)
        elif value and tag in self.wanted:
            self.found.setdefault(self.wanted[tag], value)


# --- C2PA Content Credentials ------------------------------------------------------------------

_context_lock = threading.Lock()
_contexts: dict[str, object] = {}


def _c2pa_context(trust_anchors_path: str):
    """A c2pa Context that never reaches the network, trusting the anchors in that PEM file (""
    for none: then every signer is reported as untrusted). Built once per path; a Context is
    safe to share between threads."""
    import c2pa  # loaded on first use: a 23 MB native library that only the upload path needs

    with _context_lock:
        context = _contexts.get(trust_anchors_path)
        if context is None:
            config: dict = {
                # Reading an upload never reaches the network: no manifest kept online is
                # fetched (a file could name any address), no certificate status is asked.
                "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
                # A compressed manifest is inflated to at most this (uploads: 10 MiB by default).
                "core": {"max_decompressed_manifest_size_in_mb": 16},
            }
            if trust_anchors_path:
                try:
                    with open(trust_anchors_path, encoding="utf-8") as handle:
                        config["trust"] = {"trust_anchors": handle.read()}
                except OSError:
                    logger.warning(
                        "C2PA trust anchors unreadable; signers are reported untrusted",
                        extra={"path": trust_anchors_path},
                    )
            context = c2pa.Context.from_dict(config)
            _contexts[trust_anchors_path] = context
        return context


def c2pa_read(data: bytes, *, content_type: str, trust_anchors_path: str = "") -> dict | None:
    """The Content Credentials embedded in the file, validated: None when it has none; raises
    (c2pa.C2paError and others) when they cannot be read."""
    import c2pa

    context = _c2pa_context(trust_anchors_path)
    try:
        reader = c2pa.Reader(content_type, io.BytesIO(data), context=context)
    except c2pa.C2paError.ManifestNotFound:
        return None
    with reader:
        store = json.loads(reader.json())
    return c2pa_summary(store)


def c2pa_summary(store: dict) -> dict:
    """What is kept of a manifest store (the JSON c2pa.Reader gives)."""
    manifests = store.get("manifests") or {}
    if not isinstance(manifests, dict):
        manifests = {}
    active_label = store.get("active_manifest")
    active = manifests.get(active_label) if isinstance(active_label, str) else None
    active = active if isinstance(active, dict) else {}
    signature = active.get("signature_info") or {}
    state = clean_text(store.get("validation_state"), 40)
    actions = _c2pa_actions(active)
    # AI generation declared by the active manifest, or failing that by an earlier one (an
    # ingredient: a generated picture later edited keeps the generator's credentials inside).
    ai = next((a for a in actions if a["ai"]), None)
    ai_in_ingredient = False
    if ai is None:
        for label, manifest in list(manifests.items())[:C2PA_MAX_MANIFESTS]:
            if label == active_label or not isinstance(manifest, dict):
                continue
            ai = next((a for a in _c2pa_actions(manifest) if a["ai"]), None)
            if ai is not None:
                ai_in_ingredient = True
                if not ai["software_agent"]:
                    ai["software_agent"] = _claim_generator(manifest)
                break
    return {
        "present": True,
        "readable": True,
        "validation_state": state,
        "valid": state in ("Valid", "Trusted"),
        "trusted": state == "Trusted",
        "errors": _c2pa_failures(store),
        "signer": clean_text(signature.get("issuer")),
        "signer_common_name": clean_text(signature.get("common_name")),
        "signed_at": clean_text(signature.get("time"), 40),
        "claim_generator": _claim_generator(active),
        "title": clean_text(active.get("title")),
        "actions": [
            {k: a[k] for k in ("action", "digital_source_type", "software_agent")}
            for a in actions[:C2PA_MAX_ACTIONS]
        ],
        "ai_generated": ai is not None,
        "ai_source_type": ai["digital_source_type"] if ai else None,
        "ai_generator": ai["software_agent"] if ai else None,
        "ai_in_ingredient": ai_in_ingredient,
    }


def c2pa_unreadable(message: str) -> dict:
    """The record of Content Credentials that are in the file but could not be read."""
    return {
        "present": True,
        "readable": False,
        "validation_state": None,
        "valid": False,
        "trusted": False,
        "errors": [clean_text(message) or "unreadable"],
        "signer": None,
        "signer_common_name": None,
        "signed_at": None,
        "claim_generator": None,
        "title": None,
        "actions": [],
        "ai_generated": False,
        "ai_source_type": None,
        "ai_generator": None,
        "ai_in_ingredient": False,
    }


def _claim_generator(manifest: dict) -> str | None:
    infos = manifest.get("claim_generator_info")
    if isinstance(infos, list) and infos and isinstance(infos[0], dict):
        name, version = infos[0].get("name"), infos[0].get("version")
        if name:
            return clean_text(f"{name} {version}" if version else name)
    return clean_text(manifest.get("claim_generator"))


def _c2pa_actions(manifest: dict) -> list[dict]:
    out: list[dict] = []
    assertions = manifest.get("assertions")
    if not isinstance(assertions, list):
        return out
    for assertion in assertions:
        if not isinstance(assertion, dict):
            continue
        label = assertion.get("label")
        if not isinstance(label, str) or not label.startswith("c2pa.actions"):
            continue
        data = assertion.get("data")
        actions = data.get("actions") if isinstance(data, dict) else None
        for action in actions if isinstance(actions, list) else []:
            if not isinstance(action, dict):
                continue
            code = source_type_code(_text_or_none(action.get("digitalSourceType")))
            agent = action.get("softwareAgent")
            if isinstance(agent, dict):
                agent = agent.get("name")
            out.append(
                {
                    "action": clean_text(action.get("action"), 80),
                    "digital_source_type": code,
                    "software_agent": clean_text(_text_or_none(agent)),
                    "ai": code in AI_SOURCE_TYPES,
                }
            )
            if len(out) >= C2PA_MAX_ACTIONS * 5:
                return out
    return out


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _c2pa_failures(store: dict) -> list[str]:
    """The validation failures of the active manifest, as "code: explanation"."""
    results = store.get("validation_results")
    failures = None
    if isinstance(results, dict) and isinstance(results.get("activeManifest"), dict):
        failures = results["activeManifest"].get("failure")
    if failures is None:
        failures = store.get("validation_status")
    out: list[str] = []
    for failure in failures if isinstance(failures, list) else []:
        if not isinstance(failure, dict):
            continue
        code = clean_text(failure.get("code"), 80) or "unknown"
        explanation = clean_text(failure.get("explanation"), 160)
        out.append(f"{code}: {explanation}" if explanation else code)
        if len(out) >= C2PA_MAX_ERRORS:
            break
    return out
