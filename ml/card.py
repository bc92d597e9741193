"""Model card: card.json (machine-readable) rendered to card.md (for people). No TF."""

from __future__ import annotations

import json
from pathlib import Path

from . import CARD_JSON, CARD_MD

# What is known about the licence of a data set, by the folder name of a data root. A root not
# listed here gets UNKNOWN_DATA_NOTE; every card ends with LICENCE_CAVEAT.
DATA_NOTES = {
    "faces128": (
        "faces128 (the sources used are those in the image counts): images gathered from "
        "public GitHub repositories that committed samples of research and Kaggle face "
        "datasets (FFHQ, CelebA, LFW and StyleGAN/StyleGAN2 outputs: "
        "Kaggle '140k Real and Fake Faces', 'Human Faces Dataset', LFW face swaps, "
        "thispersondoesnotexist; DFDC video face crops; FLUX.1 diffusion images with news "
        "photos; UTKFace). None of those repositories licenses the images, and the upstream "
        "datasets are mostly for NON-COMMERCIAL RESEARCH only (FFHQ: CC BY-NC-SA 4.0; CelebA: "
        "non-commercial research; LFW: research); the others come with their own terms."
    ),
}
UNKNOWN_DATA_NOTE = "{name}: no licence information recorded for this data."
LICENCE_CAVEAT = (
    "These weights are derived from the training data, and face data is often licensed for "
    "non-commercial research only: check the upstream terms of every source before any "
    "commercial use."
)


def data_licence_note(data_roots) -> str:
    """The licence paragraph for these data roots (stored in card.json at training time)."""
    roots = [str(r) for r in data_roots]
    notes = []
    for root in roots:
        name = Path(root.rstrip("/\\")).name or root
        note = DATA_NOTES.get(name, UNKNOWN_DATA_NOTE.format(name=name))
        if note not in notes:
            notes.append(note)
    head = f"Training data: {', '.join(roots) or 'not recorded'}."
    return " ".join([head, *notes, LICENCE_CAVEAT])


def _registry():
    from .model import ARCHITECTURES, baseline_architecture  # no TF at import

    return ARCHITECTURES, baseline_architecture()


def _f(v, nd=4):
    return "n/a" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def _metric_table(m: dict) -> list[str]:
    lines = ["| group | real | fake | ROC AUC | accuracy | precision | recall | F1 | ECE |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [("overall", m)] + list(m.get("per_source", {}).items())
    for name, r in rows:
        lines.append(f"| {name} | {r['n_real']} | {r['n_fake']} | {_f(r['roc_auc'])} | "
                     f"{_f(r['accuracy'])} | {_f(r['precision'])} | {_f(r['recall'])} | "
                     f"{_f(r['f1'])} | {_f(r['ece'])} |")
    return lines


def render_markdown(card: dict) -> str:
    """card.md from card.json: everything it says comes from the card (and the registry)."""
    tr = card.get("training", {})
    archs, baseline = _registry()
    spec = archs.get(card["architecture"])
    described = f" ({spec.description})" if spec is not None and spec.description else ""
    size = card["image_size"]
    hardware = tr.get("hardware") or "an unrecorded machine"
    sources = sorted({s for per in tr.get("counts", {}).values() for s in per})
    baseline_name = card.get("comparison_baseline") or (baseline.name if baseline else "")
    out = [f"# Model card: {card['name']} ({card['architecture']})", "",
           f"- version: `{card.get('version', '')}`",
           f"- created: {card.get('created')}",
           f"- architecture: `{card['architecture']}`{described}, input {size}x{size} RGB "
           "(uint8 pixels; scaling and any residual are inside the network), "
           f"{card.get('parameters', 'n/a')} parameters",
           f"- weights: `{card['weights_file']}` ({card.get('weights_bytes', 0) / 1e6:.2f} MB), "
           f"sha256 `{card.get('weights_sha256')}`",
           "- output: P(fake), calibrated by Platt scaling on "
           f"{card.get('calibrated_on', 'the validation split')} "
           f"(a = {_f(card['calibration'].get('a'))}, b = {_f(card['calibration'].get('b'))})",
           "- test-time flips: " + ("on (mean logit of the image and its mirror)"
                                    if card.get("test_time_flips") else "off"),
           f"- decision threshold (chosen on the same data, max balanced accuracy): "
           f"{_f(card['threshold'])}; label `uncertain` when {_f(card['uncertain_low'])} <= "
           f"P(fake) <= {_f(card['uncertain_high'])}",
           "", "## Reproduce", "", "Run from the repository root:", "",
           "```", card.get("reproduce_command", ""), "```", "",
           f"Training ({hardware}) is not bit-exact from run to run (threaded float sums, "
           "tf.data parallelism, time limit), so a rerun gives close but not identical "
           "figures.", ""]
    if str(tr.get("stopped_by", "")).startswith("time limit"):
        out += [f"This run was ended by its time limit after {tr.get('epochs_run')} epochs; on a "
                f"faster or slower machine pass `--epochs {tr.get('epochs_run')}` and drop "
                "`--max-minutes` to repeat the same schedule.", ""]
    out += [
           "## Training", "",
           f"- data roots: {', '.join(tr.get('data_roots', []))}",
           f"- split: {tr.get('split_rule', '')}",
           f"- excluded sources: {', '.join(tr.get('exclude_sources', [])) or 'none'}",
           *_undecodable_lines(tr.get("undecodable")),
           f"- epochs run: {tr.get('epochs_run')} of at most {tr.get('epochs_max')} "
           f"(best epoch {tr.get('best_epoch')}, stopped by: {tr.get('stopped_by')})",
           f"- training time: {_f(tr.get('train_seconds', 0) / 60, 1)} min "
           f"({hardware})",
           f"- optimiser: Adam, lr {tr.get('learning_rate')}, batch {tr.get('batch_size')}, "
           "early stopping on val loss (best weights restored), LR halved on plateau",
           f"- augmentation: `{json.dumps(tr.get('augmentation', {}))}`",
           *([f"- initialised from `{tr['init_weights']}` (fine-tuned)"]
             if tr.get("init_weights") else []),
           f"- self-blended fakes (ml/blend.py): "
           f"{_f(float((tr.get('self_blended') or {}).get('share', 0.0)) * 100, 0)} % of each "
           "batch, made on the fly from the real training faces",
           "", "### Image counts", "",
           "| split | source | real | fake |", "|---|---|---:|---:|"]
    for split, per in tr.get("counts", {}).items():
        for src, c in per.items():
            out.append(f"| {split} | {src} | {c['real']} | {c['fake']} |")
    for key, title in (("val_metrics", "Validation metrics (after calibration)"),
                       ("test_metrics", "Test metrics (test split, reporting only)")):
        if card.get(key):
            out += ["", f"## {title}", ""] + _metric_table(card[key])
    rob = card.get("robustness")
    if rob:
        out += ["", "## Robustness (test split, perturbed after preprocessing)", "",
                "| perturbation | ROC AUC | AUC drop | accuracy | ECE |",
                "|---|---:|---:|---:|---:|"]
        base = card.get("test_metrics", {}).get("roc_auc")
        for k, m in rob.items():
            drop = None if base is None else base - m["roc_auc"]
            out.append(f"| {k} | {_f(m['roc_auc'])} | {_f(drop)} | {_f(m['accuracy'])} | "
                       f"{_f(m['ece'])} |")
    out += _loso_lines(card)
    out += _ablation_lines(card)
    out += _calibration_lines(card)
    out += _serving_lines(card)
    out += _browser_lines(card)
    extra = card.get("extra_evaluations")
    if extra:
        out += ["", "## Further evaluations", ""]
        for k, m in extra.items():
            out += [f"### {k}", "", m.get("note", ""), ""]
            if "roc_auc" in m:
                out += _metric_table(m) + [""]
            for line in m.get("lines", []):
                out.append(line)
            out.append("")
    if card.get("comparison_md"):
        title = (f"Comparison with the {baseline_name} baseline" if baseline_name
                 else "Comparison")
        out += ["", f"## {title}", "", card["comparison_md"]]
    out += ["", "Plots of the test split: [ROC](plots/roc_curve.png), "
            "[confusion matrix](plots/confusion_matrix.png), "
            "[reliability diagram](plots/reliability_diagram.png)."]
    loso = bool(card.get("loso")) or any("leave-one-source-out" in k for k in (extra or {}))
    out += ["", "## Inference", "", card.get("inference_note", ""), "",
            "## Data licence and caveats", "",
            card.get("data_licence") or data_licence_note(tr.get("data_roots", [])), "",
            f"Known limits: trained on {size} px centre crops of faces from "
            f"{len(sources) or 'the'} source(s) listed in the image counts; generators, "
            "manipulations and photo styles not among them, and heavy edits, are out of "
            "distribution. Classes differ in photo style per source, so some of the score can "
            "come from style rather than fakery"
            + ("; see the leave-one-source-out figure." if loso else
               "; a leave-one-source-out evaluation shows how far it carries to an unseen "
               "source."), ""]
    if card.get("failure_modes"):
        out += ["## Known failure modes", ""] + [f"- {m}" for m in card["failure_modes"]] + [""]
    return "\n".join(out)


def _loso_lines(card: dict) -> list[str]:
    lo = card.get("loso")
    if not lo:
        return []
    recipe = lo.get("recipe", {})
    out = ["", "## Leave-one-source-out (the figure models are chosen by)", "",
           "Each row: a model trained with this recipe on every other source, scoring the "
           "held-out source (all its images; a one-class source against the other class's "
           "test images of the other sources). "
           + (f"Fold budget: {recipe.get('images_seen')} training images "
              f"({recipe.get('epochs')} epochs x {recipe.get('steps_per_epoch')} batches of "
              f"{recipe.get('batch_size')}), less than the shipped model's own training, "
              "so these figures are for a shorter-trained twin of the recipe."
              if recipe.get("images_seen") else ""), "",
           "| held-out source | real | fake | ROC AUC | AUC with flips | false fake | "
           "fakes caught |", "|---|---:|---:|---:|---:|---:|---:|"]
    for s, m in lo.get("per_source", {}).items():
        out.append(f"| {s}{' (paired)' if m.get('paired_with_other_sources') else ''} | "
                   f"{m['n_real']} | {m['n_fake']} | {_f(m['roc_auc'])} | "
                   f"{_f(m['roc_auc_flips'])} | {_f(m.get('false_fake_rate'), 3)} | "
                   f"{_f(m.get('fake_caught_rate'), 3)} |")
    out += ["", f"Mean AUC {_f(lo.get('mean_auc'))}, worst {_f(lo.get('worst_auc'))} "
                f"({lo.get('worst_source')}); with test-time flips: mean "
                f"{_f(lo.get('mean_auc_flips'))}, worst {_f(lo.get('worst_auc_flips'))}. "
                "False fake / fakes caught: at each fold model's own validation threshold.",
            ""]
    if lo.get("note"):
        out += [lo["note"], ""]
    return out


def _ablation_lines(card: dict) -> list[str]:
    rows = card.get("ablation")
    if not rows:
        return []
    sources = sorted({s for r in rows for s in r.get("per_source", {})})
    out = ["", "## Ablation (leave-one-source-out AUC, same training budget per fold)", "",
           "| recipe | what changes | mean AUC | worst AUC | " + " | ".join(sources) + " |",
           "|---|---|---:|---:|" + "---:|" * len(sources)]
    for r in rows:
        per = r.get("per_source", {})
        out.append(f"| {r['name']} | {r.get('description', '')} | {_f(r.get('mean_auc'))} | "
                   f"{_f(r.get('worst_auc'))} | "
                   + " | ".join(_f(per.get(s)) if s in per else "-" for s in sources) + " |")
    notes = [r["note"] for r in rows if r.get("note")]
    out += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
    return out


def _calibration_lines(card: dict) -> list[str]:
    cd = card.get("calibration_data")
    if not cd:
        return []
    out = ["", "## Calibration on unseen sources", "",
           f"Platt scaling, threshold and band fitted on {card.get('calibrated_on', '')} "
           f"({cd.get('val_images')} validation and {cd.get('held_out_images')} held-out "
           "predictions). " + cd.get("note", ""), "",
           f"- ECE on the held-out predictions: {_f(cd.get('ece_held_out_cross_validated'))} "
           f"cross-validated by source, {_f(cd.get('ece_held_out_in_sample'))} in-sample",
           f"- ECE on validation: {_f(cd.get('ece_val'))}", "",
           "| held-out source | images | ECE (cross-validated) | false fake at the shipped "
           "threshold | fakes caught |", "|---|---:|---:|---:|---:|"]
    for s, m in cd.get("per_source", {}).items():
        out.append(f"| {s} | {m['n']} | {_f(m['ece_cross_validated'])} | "
                   f"{_f(m.get('false_fake_rate'), 3)} | {_f(m.get('fake_caught_rate'), 3)} |")
    return out + [""]


def _serving_lines(card: dict) -> list[str]:
    sp = card.get("serving_path")
    if not sp:
        return []
    ms = sp.get("ms_per_image", {})
    out = ["", "## Through the serving path (what the worker does)", "", sp.get("note", ""), "",
           f"- no face found: {_f(sp.get('no_face_rate'), 4)} of {sp.get('n')} test faces; "
           f"more than one face: {_f(sp.get('multi_face_rate'), 4)}",
           f"- ROC AUC {_f(sp.get('roc_auc'))} (training path on the same images: "
           f"{_f(sp.get('roc_auc_training_path'))}); mean |P(fake) difference| "
           f"{_f(sp.get('mean_abs_diff_vs_training_path'))}",
           f"- time per image, face step included: median {_f(ms.get('median'), 1)} ms, "
           f"p95 {_f(ms.get('p95'), 1)} ms ({card.get('training', {}).get('hardware', '')}, "
           "one process, one image at a time)", "",
           "| source | images | no face | ROC AUC serving | ROC AUC training path | "
           "mean abs diff |", "|---|---:|---:|---:|---:|---:|"]
    for s, m in sp.get("per_source", {}).items():
        out.append(f"| {s} | {m['n']} | {_f(m['no_face_rate'], 4)} | {_f(m['roc_auc'])} | "
                   f"{_f(m.get('roc_auc_training_path'))} | "
                   f"{_f(m.get('mean_abs_diff_vs_training_path'))} |")
    return out + [""]


def _e(v) -> str:
    """A tiny difference, readable: 5.7e-07."""
    return "n/a" if v is None else f"{float(v):.1e}"


def _browser_lines(card: dict) -> list[str]:
    bp = card.get("browser_parity")
    if not bp:
        return []
    out = ["", "## In the browser (private check)", "",
           "The private check runs this model and the same face step (MTCNN's three networks) "
           "in the visitor's browser on TF.js, exported by `python -m ml export-web`; the image "
           "never leaves the device. The browser decodes and resizes the image itself "
           "(Lanczos, the same fixed-point arithmetic as Pillow), so its P(fake) can differ "
           "slightly from the server's.", "",
           f"- stated tolerance: |P(fake) browser - P(fake) server| <= {_f(bp.get('tolerance'))} "
           "per face (checked by `tests/e2e/test_private_parity.py` in real Chromium)",
           f"- measured on {bp.get('images')} images ({bp.get('faces_paired')} faces paired by "
           f"box): max difference {_e(bp.get('max_abs_diff'))}, mean "
           f"{_e(bp.get('mean_abs_diff'))}, 95th percentile {_e(bp.get('p95_abs_diff'))}; "
           f"same label on {_f(100 * (bp.get('label_agreement') or 0), 1)} % of images; faces "
           f"found on one side only: server {bp.get('faces_server_only')}, browser "
           f"{bp.get('faces_browser_only')}; largest box difference {bp.get('max_box_px')} px",
           f"- download: {int(bp.get('download_bytes') or 0):,} bytes (model and face step), "
           "cached by the browser",
           f"- time per image (decode, faces, model): median {_f(bp.get('browser_ms_median'), 0)} "
           f"ms in headless Chromium {bp.get('chromium', '')} on the {bp.get('backend')} backend; "
           f"server engine {_f(bp.get('server_ms_median'), 0)} ms, same machine",
           f"- measured {bp.get('measured')} with `{bp.get('command')}`", "",
           "| source | images | max abs diff | same label |", "|---|---:|---:|---:|"]
    for s, m in (bp.get("per_source") or {}).items():
        name = "made scenes (resize, crop, three faces)" if s == "scene" else s
        out.append(f"| {name} | {m['images']} | {_e(m.get('max_abs_diff'))} | "
                   f"{_f(100 * m['label_agreement'], 1)} % |")
    return out + [""]


def _undecodable_lines(report: dict | None) -> list[str]:
    if not report:
        return []
    line = (f"- undecodable files: {report.get('count', 0)} of {report.get('of', 'n/a')} "
            f"({_f(float(report.get('share', 0.0)) * 100, 2)} %, at most "
            f"{_f(float(report.get('max_share', 0.0)) * 100, 2)} % allowed)")
    if report.get("count"):
        line += f", {report.get('action', 'left out')}"
        examples = report.get("examples", [])
        if examples:
            line += "; e.g. " + "; ".join(f"`{e}`" for e in examples)
    return [line]


def write_card(model_dir, card: dict) -> None:
    model_dir = Path(model_dir)
    (model_dir / CARD_JSON).write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    (model_dir / CARD_MD).write_text(render_markdown(card))
