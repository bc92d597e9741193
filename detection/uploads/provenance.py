"""Provenance: what an upload says about itself, read before re-encoding strips it, kept with
the detection, and shown as evidence separate from the model's verdict.

``provenance_read(*, data, img, fmt) -> dict`` runs inside ``image_validate`` on the original
bytes. It never raises and never refuses an upload: whatever cannot be read is noted in
"errors". The dict is stored in ``Detection.provenance`` (JSON); version 1 is::

    {
      "version": 1,
      "exif": {} | {"make", "model", "software", "datetime_original", "datetime",
                    "user_comment": str | None, "gps_present": bool},
      "png_text": {keyword: text},     # at most 24 keys, each at most 2,000 characters;
                                       # a ComfyUI graph is kept as a short digest
      "xmp": {} | {"creator_tool", "digital_source_type", "ai_system", "ai_system_version",
                   "ai_prompt", "credit", "create_date", "modify_date", "c2pa_manifest_url",
                   "history_software": [str], "gps_present": bool},
      "c2pa": None | {"present": True, "readable": bool,
                      "validation_state": "Trusted" | "Valid" | "Invalid" | None,
                      "valid": bool,     # intact: signature and hashes check out
                      "trusted": bool,   # and the signer is on the configured trust list
                      "errors": [str], "signer", "signer_common_name", "signed_at",
                      "claim_generator", "title",
                      "actions": [{"action", "digital_source_type", "software_agent"}],
                      "ai_generated": bool, "ai_source_type", "ai_generator",
                      "ai_in_ingredient": bool},
      "ai_declarations": [{"source": "C2PA" | "XMP" | "PNG text" | "EXIF",
                           "generator": str | None, "detail": str}],
      "editing_software": [{"source": ..., "name": str}],
      "errors": [str],
    }

Scalar fields are strings or None. The GPS position is never kept, only whether there was one;
names of people (EXIF Artist, XMP dc:creator, PNG "Author") are not read. ``{}`` (the model's
default) means not recorded: the detection was uploaded before this reader existed.

``provenance_normalized(provenance) -> dict`` is the API's shape: every key present, "exif" and
"xmp" None when the file had none, and "recorded" False for ``{}``.

``provenance_summary(provenance) -> ProvenanceSummary`` is what pages show (the result page, the
shared report and its PDF)::

    ProvenanceSummary(
      recorded: bool,                     # False: nothing is known (an old upload)
      groups: tuple[ProvenanceGroup],     # each: title, source, rows ((label, value), ...)
      ai_declarations: tuple[dict],       # as stored: source, generator, detail
      editing: tuple[dict],               # as stored: source, name
      c2pa_state: "trusted" | "valid" | "invalid" | "unreadable" | None,
      c2pa_status: str | None,            # one sentence on the credentials' validity
      evidence: tuple[str],               # sentences to show next to the verdict
      errors: tuple[str],
      is_empty: bool,                     # recorded, and the file said nothing
    )
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from PIL import Image

from detection.uploads.containers import c2pa_found
from detection.uploads.formats import CONTENT_TYPES
from detection.uploads.generators import (
    AI_SOURCE_TYPES,
    editor_name,
    generator_name,
    source_type_code,
    source_type_text,
)
from detection.uploads.metadata_readers import (
    PNG_TEXT_MAX_KEYS,
    TEXT_MAX_CHARS,
    XMP_PNG_KEYWORD,
    c2pa_read,
    c2pa_unreadable,
    clean_text,
    exif_read,
    jpeg_xmp,
    png_text_chunks,
    webp_xmp,
    xmp_read,
)

logger = logging.getLogger(__name__)

PROVENANCE_VERSION = 1
SOURCE_C2PA, SOURCE_XMP, SOURCE_PNG, SOURCE_EXIF = "C2PA", "XMP", "PNG text", "EXIF"
SOURCES = (SOURCE_C2PA, SOURCE_XMP, SOURCE_PNG, SOURCE_EXIF)  # strongest evidence first
_MAX_ERRORS = 20

# PNG text keys that hold names of people: not kept.
_PERSONAL_KEYS = frozenset({"author", "artist", "owner", "email", "e-mail", "contact"})
# PNG text keys that hold a tool's name.
_TOOL_KEYS = ("software", "source", "generator", "creator tool", "creatortool")


def _empty() -> dict:
    return {
        "version": PROVENANCE_VERSION,
        "exif": {},
        "png_text": {},
        "xmp": {},
        "c2pa": None,
        "ai_declarations": [],
        "editing_software": [],
        "errors": [],
    }


def provenance_read(*, data: bytes, img: Image.Image, fmt: str) -> dict:
    """What the file says about itself (the module docstring has the shape). Call it with the
    original bytes and the decoded Pillow image, before re-encoding. Never raises."""
    result = _empty()
    try:
        png_texts = _read_into(result, data=data, img=img, fmt=fmt)
        _declarations_into(result, png_texts)
    except Exception:  # a bug here must never cost the user their upload
        logger.exception("provenance: reading the upload's metadata failed")
        result["errors"].append("The metadata could not be read.")
    del result["errors"][_MAX_ERRORS:]
    return result


@contextmanager
def _attempt(errors: list[str], what: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - hostile or damaged metadata: noted, never fatal
        logger.info("provenance: %s unreadable: %s", what, exc)
        reason = clean_text(str(exc), 160)
        errors.append(f"The {what} could not be read" + (f" ({reason})." if reason else "."))


def _read_into(result: dict, *, data: bytes, img: Image.Image, fmt: str) -> dict[str, str]:
    """Fill the readers' fields of `result`; return the PNG texts in full (up to the inflate
    limit), which recognising a generator needs and which are not kept."""
    errors: list[str] = result["errors"]
    png_texts: dict[str, str] = {}
    with _attempt(errors, "EXIF metadata"):
        result["exif"] = exif_read(img)
    xmp_packet: bytes | None = None
    with _attempt(errors, "XMP metadata"):
        if fmt == "JPEG":
            xmp_packet = jpeg_xmp(img)
        elif fmt == "WEBP":
            xmp_packet = webp_xmp(data)
    if fmt == "PNG":
        with _attempt(errors, "PNG text"):
            result["png_text"], png_texts, xmp_text, notes = _png_text_read(data)
            errors.extend(notes)
            if xmp_text is not None:
                xmp_packet = xmp_text.encode("utf-8")
    if xmp_packet:
        with _attempt(errors, "XMP metadata"):
            result["xmp"] = xmp_read(xmp_packet)
    if c2pa_found(img, fmt, data):
        try:
            c2pa = c2pa_read(
                data,
                content_type=CONTENT_TYPES[fmt],
                trust_anchors_path=settings.DETECTION_C2PA_TRUST_ANCHORS,
            )
            if c2pa is None:
                c2pa = c2pa_unreadable("the file marks a manifest store, but none was found")
        except Exception as exc:  # noqa: BLE001 - the library's errors, whatever a bad store causes
            logger.info("provenance: C2PA unreadable: %s", exc)
            c2pa = c2pa_unreadable(str(exc))
        result["c2pa"] = c2pa
        if not c2pa["readable"]:
            reason = c2pa["errors"][0]
            errors.append(f"The Content Credentials (C2PA) could not be read ({reason}).")
    return png_texts


def _png_text_read(data: bytes) -> tuple[dict, dict, str | None, list[str]]:
    """(texts to keep, full texts for recognition, the XMP packet, notes)."""
    chunks, notes = png_text_chunks(data)
    kept: dict[str, str] = {}
    raw: dict[str, str] = {}
    xmp: str | None = None
    skipped = 0
    for keyword, text in chunks:
        key = clean_text(keyword, 79)
        if not key:
            continue
        if keyword == XMP_PNG_KEYWORD:
            xmp = xmp if xmp is not None else text
            continue
        lowered = key.lower()
        # ImageMagick's hex-encoded copies of EXIF/XMP/IPTC: not text for people.
        if lowered.startswith("raw profile type") or lowered in _PERSONAL_KEYS:
            continue
        if key in kept:
            continue
        if len(kept) >= PNG_TEXT_MAX_KEYS:
            skipped += 1
            continue
        raw[key] = text
        value = None
        if lowered in ("prompt", "workflow"):
            value = _comfy_digest(text)
        kept[key] = value or clean_text(text, TEXT_MAX_CHARS) or ""
    if skipped:
        notes.append(f"{skipped} more PNG text entries were not kept.")
    return kept, raw, xmp, notes


# --- Recognising generators in PNG text --------------------------------------------------------

_WEBUI_STEPS = re.compile(r"\bSteps: \d+")
_WEBUI_MARKERS = re.compile(r"\b(Sampler|Seed|CFG scale): ")
_WEBUI_MODEL = re.compile(r"\bModel: ([^,\n]{1,120})")
_COMFY_MODEL_INPUTS = ("ckpt_name", "unet_name", "model_name")


def _json_object(text: str) -> dict | None:
    text = text.strip()
    if not text.startswith("{") or len(text) > 4 * 1024 * 1024:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _comfy_nodes(graph: dict) -> list[tuple[str, list]]:
    """(node type, its string inputs) of a ComfyUI API prompt ({id: {class_type, inputs}}) or
    UI workflow ({"nodes": [{type, widgets_values}]})."""
    nodes: list[tuple[str, list]] = []
    if isinstance(graph.get("nodes"), list):
        for node in graph["nodes"]:
            if isinstance(node, dict) and isinstance(node.get("type"), str):
                values = node.get("widgets_values")
                values = values if isinstance(values, list) else []
                strings = [v for v in values if isinstance(v, str)]
                nodes.append((node["type"], strings))
        return nodes
    for node in graph.values():
        if isinstance(node, dict) and isinstance(node.get("class_type"), str):
            inputs = node.get("inputs")
            inputs = inputs if isinstance(inputs, dict) else {}
            models = [inputs[k] for k in _COMFY_MODEL_INPUTS if isinstance(inputs.get(k), str)]
            texts = [v for k, v in inputs.items() if k.startswith("text") and isinstance(v, str)]
            nodes.append((node["class_type"], models + texts))
    return nodes


def _comfy_facts(text: str) -> tuple[int, str | None, str | None] | None:
    """(nodes, model, prompt) of a ComfyUI graph; None if the text is not one."""
    graph = _json_object(text)
    if graph is None:
        return None
    nodes = _comfy_nodes(graph)
    if not nodes:
        return None
    model = next(
        (v[0] for t, v in nodes if v and ("Loader" in t and ("Checkpoint" in t or "UNET" in t))),
        None,
    )
    prompt = next((v[-1] for t, v in nodes if v and t.startswith("CLIPTextEncode")), None)
    return len(nodes), clean_text(model), prompt


def _comfy_digest(text: str) -> str | None:
    """A readable digest of a ComfyUI graph instead of kilobytes of JSON."""
    facts = _comfy_facts(text)
    if facts is None:
        return None
    count, model, prompt = facts
    parts = [f"ComfyUI graph with {count} node{'' if count == 1 else 's'}."]
    if model:
        parts.append(f"Model: {model}.")
    if prompt and (prompt := clean_text(prompt, TEXT_MAX_CHARS - 200)):
        parts.append(f"Prompt: {prompt}")
    return " ".join(parts)


def _webui_declaration(text: str | None, where: str) -> tuple[str, str] | None:
    """(generator, detail) when the text is Stable Diffusion WebUI's settings block."""
    if not text or not _WEBUI_STEPS.search(text) or not _WEBUI_MARKERS.search(text):
        return None
    model = _WEBUI_MODEL.search(text)
    model_text = f" (model: {clean_text(model.group(1), 120)})" if model else ""
    return (
        "Stable Diffusion WebUI",
        f"{where} holds the prompt and settings that Stable Diffusion WebUI (AUTOMATIC1111, "
        f"Forge or a compatible tool) writes{model_text}.",
    )


def _png_declarations(raw: dict[str, str], add_ai, add_editor) -> None:
    lower = {key.lower(): value for key, value in raw.items()}
    parameters = lower.get("parameters")
    if parameters is not None:
        version = (_json_object(parameters) or {}).get("version")
        if "fooocus_scheme" in lower or (isinstance(version, str) and "fooocus" in version.lower()):
            add_ai(SOURCE_PNG, "Fooocus", "The PNG text holds Fooocus's generation settings.")
        elif found := _webui_declaration(parameters, "The PNG text “parameters”"):
            add_ai(SOURCE_PNG, *found)
    for key in ("prompt", "workflow"):
        if key in lower and (facts := _comfy_facts(lower[key])):
            model = f" (model: {facts[1]})" if facts[1] else ""
            add_ai(
                SOURCE_PNG,
                "ComfyUI",
                f"The PNG text “{key}” holds a ComfyUI generation graph of {facts[0]} nodes"
                f"{model}.",
            )
            break
    if any(k in lower for k in ("invokeai_metadata", "invokeai_graph", "sd-metadata", "dream")):
        add_ai(SOURCE_PNG, "InvokeAI", "The PNG text holds InvokeAI's generation settings.")
    description = lower.get("description")
    if description and "Job ID:" in description:
        add_ai(
            SOURCE_PNG, "Midjourney", "The PNG “Description” holds a Midjourney prompt and job ID."
        )
    for key, value in raw.items():
        if key.lower() not in _TOOL_KEYS:
            continue
        shown = clean_text(value, 80)
        if name := generator_name(value):
            add_ai(SOURCE_PNG, name, f"The PNG text “{key}” names {name} (“{shown}”).")
        if name := editor_name(value):
            add_editor(SOURCE_PNG, name)


def _declarations_into(result: dict, png_texts: dict[str, str]) -> None:
    """Fill "ai_declarations" and "editing_software" from what was read."""
    ai: list[dict] = result["ai_declarations"]
    editing: list[dict] = result["editing_software"]

    def add_ai(source: str, generator: str | None, detail: str) -> None:
        if not any(d["source"] == source and d["generator"] == generator for d in ai):
            ai.append({"source": source, "generator": generator, "detail": detail})

    def add_editor(source: str, name: str) -> None:
        if not any(e["source"] == source and e["name"] == name for e in editing):
            editing.append({"source": source, "name": name})

    _c2pa_declarations(result.get("c2pa"), add_ai, add_editor)
    _xmp_declarations(result.get("xmp") or {}, add_ai, add_editor)
    _png_declarations(png_texts, add_ai, add_editor)
    _exif_declarations(result.get("exif") or {}, add_ai, add_editor)


def _c2pa_declarations(c2pa: dict | None, add_ai, add_editor) -> None:
    if not c2pa or not c2pa.get("readable"):
        return
    claim_generator = c2pa.get("claim_generator")
    if c2pa.get("ai_generated"):
        agent = c2pa.get("ai_generator")
        name = generator_name(agent) or agent or generator_name(claim_generator) or claim_generator
        what = source_type_text(c2pa.get("ai_source_type")) or "made by generative AI"
        where = (
            ", in the credentials of an earlier version of the image (an ingredient)"
            if c2pa.get("ai_in_ingredient")
            else ""
        )
        add_ai(
            SOURCE_C2PA,
            name,
            f"The file's C2PA Content Credentials declare it {_as_is(what)}{where} "
            f"(digital source type “{c2pa.get('ai_source_type')}”).",
        )
    elif name := generator_name(claim_generator):
        add_ai(
            SOURCE_C2PA,
            name,
            f"The file's C2PA Content Credentials were written by {claim_generator}, an AI image "
            "generator.",
        )
    for agent in [claim_generator] + [a.get("software_agent") for a in c2pa.get("actions", [])]:
        if name := editor_name(agent):
            add_editor(SOURCE_C2PA, name)


def _as_is(source_type_words: str) -> str:
    """Words for a digital source type as a predicate: "was made by ...", "is a composite ..."."""
    return ("was " if source_type_words.startswith("made") else "is ") + source_type_words


def _xmp_declarations(xmp: dict, add_ai, add_editor) -> None:
    creator_tool, ai_system = xmp.get("creator_tool"), xmp.get("ai_system")
    credit = xmp.get("credit")
    code = source_type_code(xmp.get("digital_source_type"))
    named = generator_name(ai_system) or generator_name(creator_tool) or generator_name(credit)
    if code in AI_SOURCE_TYPES:
        add_ai(
            SOURCE_XMP,
            named or ai_system,
            f"The XMP metadata declares the image {_as_is(source_type_text(code) or code)} "
            f"(IPTC digital source type “{code}”).",
        )
    else:
        for label, value in (
            ("AI system", ai_system),
            ("creator tool", creator_tool),
            ("credit line", credit),
        ):
            name = generator_name(value)
            if name or (label == "AI system" and value):
                detail = f"The XMP {label} names {name or value} (“{value}”)."
                add_ai(SOURCE_XMP, name or value, detail)
    for agent in [creator_tool, *xmp.get("history_software", [])]:
        if name := editor_name(agent):
            add_editor(SOURCE_XMP, name)


def _exif_declarations(exif: dict, add_ai, add_editor) -> None:
    software = exif.get("software")
    if name := generator_name(software):
        add_ai(SOURCE_EXIF, name, f"The EXIF Software field names {name} (“{software}”).")
    if name := editor_name(software):
        add_editor(SOURCE_EXIF, name)
    if found := _webui_declaration(exif.get("user_comment"), "The EXIF user comment"):
        add_ai(SOURCE_EXIF, *found)


# --- The API's shape -----------------------------------------------------------------------------

EXIF_KEYS = ("make", "model", "software", "datetime_original", "datetime", "user_comment")
XMP_KEYS = (
    "creator_tool",
    "digital_source_type",
    "ai_system",
    "ai_system_version",
    "ai_prompt",
    "credit",
    "create_date",
    "modify_date",
    "c2pa_manifest_url",
)
C2PA_KEYS = (
    "validation_state",
    "signer",
    "signer_common_name",
    "signed_at",
    "claim_generator",
    "title",
    "ai_source_type",
    "ai_generator",
)


def provenance_normalized(provenance: dict | None) -> dict:
    """Every key of the current version present, whatever was stored (the API's shape)."""
    p = provenance if isinstance(provenance, dict) else {}
    exif, xmp, c2pa = p.get("exif") or None, p.get("xmp") or None, p.get("c2pa") or None
    return {
        "recorded": bool(p.get("version")),
        "version": p.get("version"),
        "exif": None
        if exif is None
        else {**{k: exif.get(k) for k in EXIF_KEYS}, "gps_present": bool(exif.get("gps_present"))},
        "png_text": dict(p.get("png_text") or {}),
        "xmp": None
        if xmp is None
        else {
            **{k: xmp.get(k) for k in XMP_KEYS},
            "history_software": list(xmp.get("history_software") or []),
            "gps_present": bool(xmp.get("gps_present")),
        },
        "c2pa": None
        if c2pa is None
        else {
            **{k: c2pa.get(k) for k in C2PA_KEYS},
            "present": True,
            "readable": bool(c2pa.get("readable")),
            "valid": bool(c2pa.get("valid")),
            "trusted": bool(c2pa.get("trusted")),
            "ai_generated": bool(c2pa.get("ai_generated")),
            "ai_in_ingredient": bool(c2pa.get("ai_in_ingredient")),
            "errors": list(c2pa.get("errors") or []),
            "actions": [
                {k: a.get(k) for k in ("action", "digital_source_type", "software_agent")}
                for a in c2pa.get("actions") or []
                if isinstance(a, dict)
            ],
        },
        "ai_declarations": [
            {k: d.get(k) for k in ("source", "generator", "detail")}
            for d in p.get("ai_declarations") or []
            if isinstance(d, dict)
        ],
        "editing_software": [
            {k: e.get(k) for k in ("source", "name")}
            for e in p.get("editing_software") or []
            if isinstance(e, dict)
        ],
        "errors": list(p.get("errors") or []),
    }


# --- What pages show ---------------------------------------------------------------------------

DISPLAY_TEXT_CHARS = 400  # a long prompt is shown this far on the page; the API has the rest


@dataclass(frozen=True)
class ProvenanceGroup:
    title: str
    source: str  # "EXIF" | "PNG text" | "XMP" | "C2PA"
    rows: tuple[tuple[str, str], ...]  # (label, value), in a stable order


@dataclass(frozen=True)
class ProvenanceSummary:
    recorded: bool
    groups: tuple[ProvenanceGroup, ...]
    ai_declarations: tuple[dict, ...]
    editing: tuple[dict, ...]
    c2pa_state: str | None
    c2pa_status: str | None
    evidence: tuple[str, ...]
    errors: tuple[str, ...]

    @property
    def is_empty(self) -> bool:
        return self.recorded and not self.groups


def provenance_summary(provenance: dict | None) -> ProvenanceSummary:
    """The panel's content and the lines shown next to the verdict (shape: module docstring)."""
    p = provenance_normalized(provenance)
    groups = tuple(
        group
        for group in (
            _c2pa_group(p["c2pa"]),
            _xmp_group(p["xmp"]),
            _png_group(p["png_text"]),
            _exif_group(p["exif"]),
        )
        if group is not None and group.rows
    )
    c2pa_state, c2pa_status = _c2pa_status(p["c2pa"])
    ai = tuple(sorted(p["ai_declarations"], key=lambda d: _source_rank(d["source"])))
    editing = tuple(sorted(p["editing_software"], key=lambda e: _source_rank(e["source"])))
    return ProvenanceSummary(
        recorded=p["recorded"],
        groups=groups,
        ai_declarations=ai,
        editing=editing,
        c2pa_state=c2pa_state,
        c2pa_status=c2pa_status,
        evidence=_evidence(ai, editing, p["c2pa"], c2pa_state),
        errors=tuple(p["errors"]),
    )


def _source_rank(source: str | None) -> int:
    return SOURCES.index(source) if source in SOURCES else len(SOURCES)


def _names(items, key: str) -> str:
    names: list[str] = []
    for item in items:
        name = item.get(key) or "not named"
        if name not in names:
            names.append(name)
    return ", ".join(names)


def _evidence(
    ai: tuple[dict, ...], editing: tuple[dict, ...], c2pa: dict | None, c2pa_state: str | None
) -> tuple[str, ...]:
    lines: list[str] = []
    from_c2pa = [d for d in ai if d["source"] == SOURCE_C2PA]
    from_metadata = [d for d in ai if d["source"] != SOURCE_C2PA]
    if from_c2pa:
        validity = {
            "trusted": "the credentials are intact and their signer is on the trust list this "
            "site uses.",
            "valid": "the credentials are intact, but their signer is not on a trust list this "
            "site checks.",
            "invalid": "but the credentials do not check out, so they may have been altered.",
        }.get(c2pa_state or "", "their validity could not be checked.")
        composite = (c2pa or {}).get("ai_source_type") == "compositeWithTrainedAlgorithmicMedia"
        made = "parts of it were made" if composite else "it was made"
        lines.append(
            f"Separate from the model: the file's C2PA Content Credentials declare {made} "
            f"with an AI generator ({_names(from_c2pa, 'generator')}); {validity}"
        )
    if from_metadata:
        sources = ", ".join(dict.fromkeys(d["source"] for d in from_metadata))
        lines.append(
            "Separate from the model: the file's metadata "
            f"({sources}) says it was made with an AI generator "
            f"({_names(from_metadata, 'generator')}). Metadata like this can be written by anyone."
        )
    if editing:
        lines.append(
            "Separate from the model: the file's metadata names editing software "
            f"({_names(editing, 'name')}). Editing alone does not make an image fake, but the "
            "picture may have been changed."
        )
    return tuple(lines)


def _date(value: str | None) -> str | None:
    """EXIF writes "2024:05:01 12:30:00"; people read "2024-05-01 12:30:00"."""
    if value and re.match(r"^\d{4}:\d{2}:\d{2}", value):
        return value[:4] + "-" + value[5:7] + "-" + value[8:]
    return value


def _rows(*pairs: tuple[str, object]) -> tuple[tuple[str, str], ...]:
    return tuple((label, str(value)) for label, value in pairs if value not in (None, "", []))


def _shown(value: str | None) -> str | None:
    return clean_text(value, DISPLAY_TEXT_CHARS) if value else None


def _exif_group(exif: dict | None) -> ProvenanceGroup | None:
    if exif is None:
        return None
    return ProvenanceGroup(
        title="Camera and software (EXIF)",
        source=SOURCE_EXIF,
        rows=_rows(
            ("Camera make", exif["make"]),
            ("Camera model", exif["model"]),
            ("Software", exif["software"]),
            ("Taken", _date(exif["datetime_original"])),
            ("Last changed", _date(exif["datetime"])),
            ("Comment", _shown(exif["user_comment"])),
            (
                "GPS position",
                "present in the file (the position is not kept)" if exif["gps_present"] else "none",
            ),
        ),
    )


def _png_group(texts: dict) -> ProvenanceGroup | None:
    return ProvenanceGroup(
        title="Text written into the PNG file",
        source=SOURCE_PNG,
        rows=_rows(*((key, _shown(value)) for key, value in texts.items())),
    )


def _xmp_group(xmp: dict | None) -> ProvenanceGroup | None:
    if xmp is None:
        return None
    code = source_type_code(xmp["digital_source_type"])
    ai_system = xmp["ai_system"]
    if ai_system and xmp["ai_system_version"]:
        ai_system = f"{ai_system} {xmp['ai_system_version']}"
    url = xmp["c2pa_manifest_url"]
    return ProvenanceGroup(
        title="XMP metadata",
        source=SOURCE_XMP,
        rows=_rows(
            ("Creator tool", xmp["creator_tool"]),
            ("Digital source type", f"{source_type_text(code)} ({code})" if code else None),
            ("AI system", ai_system),
            ("AI prompt", _shown(xmp["ai_prompt"])),
            ("Credit", xmp["credit"]),
            ("Created", xmp["create_date"]),
            ("Modified", xmp["modify_date"]),
            ("Editing history", ", ".join(xmp["history_software"])),
            ("GPS position", "present in the file (not kept)" if xmp["gps_present"] else None),
            ("Content Credentials online", f"{url} (not fetched)" if url else None),
        ),
    )


def _action_text(action: dict) -> str:
    name = (action.get("action") or "action").removeprefix("c2pa.").replace("_", " ")
    code = action.get("digital_source_type")
    if code:
        name += f" ({source_type_text(code)})"
    if action.get("software_agent"):
        name += f" with {action['software_agent']}"
    return name


def _c2pa_group(c2pa: dict | None) -> ProvenanceGroup | None:
    if c2pa is None:
        return None
    state, _status = _c2pa_status(c2pa)
    state_words = {
        "trusted": "intact; signer on the trust list",
        "valid": "intact; signer not on a trust list this site checks",
        "invalid": "does not check out",
        "unreadable": "could not be read",
    }.get(state or "", "not checked")
    signer = c2pa["signer"]
    if signer and c2pa["signer_common_name"] and c2pa["signer_common_name"] != signer:
        signer = f"{signer} ({c2pa['signer_common_name']})"
    return ProvenanceGroup(
        title="Content Credentials (C2PA)",
        source=SOURCE_C2PA,
        rows=_rows(
            ("Status", state_words),
            ("Signed by", signer or c2pa["signer_common_name"]),
            ("Signed at", c2pa["signed_at"]),
            ("Made with", c2pa["claim_generator"]),
            ("Title", c2pa["title"]),
            ("Actions", "; ".join(_action_text(a) for a in c2pa["actions"])),
            ("Problems", "; ".join(_c2pa_problems(c2pa)[:3])),
        ),
    )


def _c2pa_problems(c2pa: dict) -> list[str]:
    """The validation failures, the one that decides first. An untrusted signer is reported by
    every credential this site cannot vouch for: the status line says it already, and when the
    credentials are invalid, the failure that makes them so is another one."""
    untrusted = [e for e in c2pa["errors"] if e.startswith("signingCredential.untrusted")]
    others = [e for e in c2pa["errors"] if e not in untrusted]
    return others if c2pa["valid"] else others + untrusted


def _c2pa_status(c2pa: dict | None) -> tuple[str | None, str | None]:
    """(state, one sentence for people) of the credentials; (None, None) if there are none."""
    if c2pa is None:
        return None, None
    if not c2pa["readable"]:
        return "unreadable", "The file carries Content Credentials, but they could not be read."
    signer = c2pa["signer"] or c2pa["signer_common_name"] or "an unnamed signer"
    when = f" on {c2pa['signed_at']}" if c2pa["signed_at"] else ""
    if c2pa["trusted"]:
        return "trusted", (
            f"Signed by {signer}{when}. The credentials are intact and the signer is on the "
            "trust list this site uses."
        )
    if c2pa["valid"]:
        return "valid", (
            f"Signed by {signer}{when}. The credentials are intact (the signature and the "
            "image's hash check out), but the signer is not on a trust list this site checks, "
            "so who signed them is not confirmed."
        )
    if c2pa["validation_state"] is None:
        return "unchecked", f"Signed by {signer}{when}; the credentials were not validated."
    problems = _c2pa_problems(c2pa)
    problem = f": {problems[0]}" if problems else ""
    return "invalid", (
        f"Signed by {signer}{when}, but the credentials do not check out{problem}. The image "
        "may have been changed after signing, or the credentials were damaged."
    )
