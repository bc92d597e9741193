"""Names of image generators and editing software, as files spell them, and the IPTC digital
source types: what lets the provenance reader say "the file declares an AI generator".

The patterns run on short tool-name fields only (EXIF Software, XMP CreatorTool and history
agents, PNG "Software"/"Source", C2PA claim generators and action agents), never on prompts:
a prompt that mentions "photoshop" says nothing about the file.
"""

from __future__ import annotations

import re

# (pattern, display name). Word boundaries keep short names from matching inside other words.
_GENERATORS: tuple[tuple[str, str], ...] = (
    (r"midjourney", "Midjourney"),
    (r"\bdall[\s·.\-_]?e\b", "DALL·E"),
    (r"\bgpt[\s-]?image|\bgpt[\s-]?4o\b", "OpenAI GPT image"),
    (r"\bchatgpt\b", "ChatGPT"),
    (r"\bopenai\b", "OpenAI"),
    (r"\bfirefly\b", "Adobe Firefly"),
    (r"\bimagen\b", "Google Imagen"),
    (r"\bgemini\b", "Google Gemini"),
    (r"made with google ai|\bgoogle ai\b", "Google AI"),
    (
        r"automatic1111|\ba1111\b|stable[\s_-]?diffusion[\s_-]?web[\s_-]?ui",
        "Stable Diffusion WebUI",
    ),
    (r"comfy[\s_-]?ui", "ComfyUI"),
    (r"invoke[\s_-]?ai", "InvokeAI"),
    (r"novel[\s_-]?ai", "NovelAI"),
    (r"\bfooocus\b", "Fooocus"),
    (
        r"stable[\s_-]?diffusion|\bsdxl\b|\bsd[\s_-]?3(\.5)?\b|stability[\s.]?ai|dreamstudio",
        "Stable Diffusion",
    ),
    (r"\bflux(\.1)?\b|black forest labs", "FLUX"),
    (r"leonardo[\s.]?ai", "Leonardo.Ai"),
    (r"\bideogram\b", "Ideogram"),
    (r"\brunway(ml)?\b", "Runway"),
    (r"nightcafe", "NightCafe"),
    (r"craiyon", "Craiyon"),
    (r"bing image creator|image creator from microsoft|microsoft designer", "Microsoft Designer"),
    (r"\bmeta ai\b|imagined with ai", "Meta AI"),
    (r"\bgrok\b|\bx\.ai\b", "Grok"),
    (r"\bkrea(\.ai)?\b", "Krea"),
    (r"playground[\s.]?(ai|v\d)", "Playground"),
    (r"\bseedream\b|\bdreamina\b", "Seedream"),
    (r"\bhidream\b", "HiDream"),
    (r"\bqwen[\s_-]?image\b", "Qwen-Image"),
    (r"\brecraft\b", "Recraft"),
)

_EDITORS: tuple[tuple[str, str], ...] = (
    (r"lightroom", "Adobe Lightroom"),  # before Photoshop: "Adobe Photoshop Lightroom Classic"
    (r"photoshop", "Adobe Photoshop"),
    (r"\bgimp\b", "GIMP"),
    (r"affinity[\s_-]?photo", "Affinity Photo"),
    (r"affinity[\s_-]?designer", "Affinity Designer"),
    (r"snapseed", "Snapseed"),
    (r"facetune", "Facetune"),
    (r"faceapp", "FaceApp"),
    (r"pixelmator", "Pixelmator"),
    (r"paint\.net", "Paint.NET"),
    (r"capture[\s_-]?one", "Capture One"),
    (r"darktable", "darktable"),
    (r"rawtherapee", "RawTherapee"),
    (r"\bluminar\b", "Luminar"),
    (r"picsart", "Picsart"),
    (r"\bmeitu\b", "Meitu"),
    (r"\bcanva\b", "Canva"),
    (r"photopea", "Photopea"),
    (r"\bvsco\b", "VSCO"),
    (r"photodirector", "PhotoDirector"),
    (r"paintshop", "Corel PaintShop Pro"),
    (r"acdsee", "ACDSee"),
    (r"\bremini\b", "Remini"),
    (r"\blensa\b", "Lensa"),
    (r"\bfotor\b", "Fotor"),
    (r"photoroom", "Photoroom"),
    (r"airbrush", "AirBrush"),
    (r"\bkrita\b", "Krita"),
)

_GENERATOR_RES = tuple((re.compile(p, re.IGNORECASE), name) for p, name in _GENERATORS)
_EDITOR_RES = tuple((re.compile(p, re.IGNORECASE), name) for p, name in _EDITORS)

# Tool names are short; a longer value is not a tool name and is not searched past this.
_NAME_SEARCH_CHARS = 300


def generator_name(text: str | None) -> str | None:
    """The image generator a tool-name field names, e.g. "Midjourney"; None if none."""
    return _first_match(_GENERATOR_RES, text)


def editor_name(text: str | None) -> str | None:
    """The editing software a tool-name field names, e.g. "Adobe Photoshop"; None if none."""
    return _first_match(_EDITOR_RES, text)


def _first_match(patterns, text: str | None) -> str | None:
    if not text:
        return None
    text = text[:_NAME_SEARCH_CHARS]
    for pattern, name in patterns:
        if pattern.search(text):
            return name
    return None


# IPTC NewsCodes digital source types (https://cv.iptc.org/newscodes/digitalsourcetype/), as
# XMP (Iptc4xmpExt:DigitalSourceType) and C2PA actions (digitalSourceType) declare them.
DIGITAL_SOURCE_TYPE_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
DIGITAL_SOURCE_TYPES: dict[str, str] = {
    "digitalCapture": "captured by a camera",
    "computationalCapture": "captured by a camera with computational processing",
    "negativeFilm": "scanned from film negative",
    "positiveFilm": "scanned from a slide",
    "print": "scanned from a print",
    "humanEdits": "edited by a person",
    "minorHumanEdits": "lightly edited by a person",
    "compositeCapture": "a composite of captured images",
    "algorithmicallyEnhanced": "enhanced by an algorithm",
    "dataDrivenMedia": "made from data",
    "digitalArt": "digital art made by a person",
    "virtualRecording": "a recording of a virtual scene",
    "compositeSynthetic": "a composite including synthetic elements",
    "trainedAlgorithmicMedia": "made by a generative AI model",
    "compositeWithTrainedAlgorithmicMedia": "a composite including parts made by generative AI",
    "algorithmicMedia": "made by an algorithm without training data",
    "screenCapture": "a screen capture",
}
# The two that declare generative AI.
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"})


def source_type_code(value: str | None) -> str | None:
    """The code of a digital source type URI or code ("trainedAlgorithmicMedia"); None if the
    value is empty. Unknown codes are returned as they are, cut short."""
    if not value:
        return None
    value = value.strip()
    # Both the http and https spellings occur, as does the bare code.
    code = value.rstrip("/").rsplit("/", 1)[-1]
    return code[:80] or None


def source_type_text(code: str | None) -> str | None:
    """Plain words for a digital source type code; None if there is none."""
    if not code:
        return None
    return DIGITAL_SOURCE_TYPES.get(code, code)
