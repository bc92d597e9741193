"""Command line: ``python -m ml {train,loso,calibrate,serving,evaluate,evaluate-video,predict,
benchmark,annotate,export-web,
web-parity}``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys


def _add_aug_flags(p):
    from .augment import AugmentConfig

    d = AugmentConfig()
    g = p.add_argument_group("augmentation (probability per image; 0 disables)")
    g.add_argument("--no-augment", action="store_true", help="disable all augmentation")
    g.add_argument("--aug-flip", type=float, default=d.flip)
    g.add_argument("--aug-rescale", type=float, default=d.rescale)
    g.add_argument("--aug-blur", type=float, default=d.blur)
    g.add_argument("--aug-noise", type=float, default=d.noise)
    g.add_argument("--aug-jpeg", type=float, default=d.jpeg)
    g.add_argument("--jpeg-quality", type=int, nargs=2, default=[d.jpeg_min, d.jpeg_max],
                   metavar=("MIN", "MAX"))


def _add_recipe_flags(p):
    """The training recipe: shared by ``train`` and ``loso``."""
    from .model import ARCHITECTURES, DEFAULT_ARCH
    from .train import MAX_UNDECODABLE_SHARE

    p.add_argument("--arch", default=DEFAULT_ARCH, choices=sorted(ARCHITECTURES),
                   help=_arch_help())
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="batches per epoch (the training stream repeats); default: one pass "
                        "over the training images")
    p.add_argument("--image-size", type=int, default=None,
                   help="input size in pixels (default: the architecture's)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (arch default)")
    p.add_argument("--patience", type=int, default=4, help="early-stopping patience (epochs)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop after the epoch that passes this training time")
    p.add_argument("--sbi", type=float, default=0.0, metavar="SHARE",
                   help="share of each batch that is a self-blended fake made from a real "
                        "training face (0 disables; ml/blend.py)")
    p.add_argument("--init-weights", default=None, metavar="MODEL_FILE",
                   help="start from this model file's weights (same architecture and size): "
                        "fine-tune an earlier model")
    p.add_argument("--uncertain-width", type=float, default=None)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--max-undecodable", type=float, default=MAX_UNDECODABLE_SHARE,
                   metavar="SHARE",
                   help="fail when more than this share of the images cannot be decoded "
                        "(default %(default)s); fewer are left out and reported")
    _add_max_pixels(p)
    _add_aug_flags(p)


def _recipe_config(args, argv, parser, **extra):
    from .augment import AugmentConfig
    from .blend import BlendConfig
    from .train import TrainConfig

    aug = AugmentConfig(enabled=not args.no_augment, flip=args.aug_flip,
                        rescale=args.aug_rescale, blur=args.aug_blur, noise=args.aug_noise,
                        jpeg=args.aug_jpeg, jpeg_min=args.jpeg_quality[0],
                        jpeg_max=args.jpeg_quality[1])
    try:
        return TrainConfig(
            arch=args.arch, epochs=args.epochs, image_size=args.image_size,
            batch_size=args.batch_size, learning_rate=args.lr, patience=args.patience,
            max_minutes=args.max_minutes, augment=aug, blend=BlendConfig(share=args.sbi),
            steps_per_epoch=args.steps_per_epoch, seed=args.seed,
            init_weights=args.init_weights,
            uncertain_width=args.uncertain_width, command="python -m ml " + shlex.join(argv),
            max_undecodable_share=args.max_undecodable, max_pixels=args.max_pixels,
            verbose=1 if sys.stdout.isatty() else 2, **extra,
        ).resolved()
    except ValueError as exc:
        parser.error(str(exc))


def _add_max_pixels(p):
    from .preprocess import DEFAULT_MAX_PIXELS

    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="refuse images with more pixels than this (default %(default)s)")


def _arch_help() -> str:
    from .model import ARCHITECTURES

    rules = []
    for a in ARCHITECTURES.values():
        rule = f"size >= {a.min_size}" + (f", multiple of {a.size_multiple}"
                                          if a.size_multiple > 1 else "")
        rules.append(f"{a.name}: lr {a.learning_rate:g}, default size {a.default_size}, {rule}")
    return "architecture (" + "; ".join(rules) + ")"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m ml", description="Deepfake face-image detector")
    sub = ap.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train a model and write a model directory")
    t.add_argument("--data", nargs="+", required=True, help="folders with real/fake subfolders")
    t.add_argument("--out", required=True, help="model directory to write")
    t.add_argument("--exclude-source", action="append", default=[],
                   help="leave a source (first-level folder) out of train/val/test")
    t.add_argument("--name", default=None)
    t.add_argument("--no-robustness", action="store_true",
                   help="skip the robustness evaluation of the test split")
    t.add_argument("--loso", default=None, metavar="DIR",
                   help="a finished `python -m ml loso` folder of this recipe: its held-out "
                        "predictions join the calibration and its tables go in the card")
    _add_recipe_flags(t)

    lo = sub.add_parser("loso", help="leave-one-source-out: train without each source, "
                                     "score it (resumable)")
    lo.add_argument("--data", nargs="+", required=True)
    lo.add_argument("--out", required=True, help="folder for the folds and summary.json")
    lo.add_argument("--held-out", action="append", default=[], metavar="SOURCE",
                    help="only these folds (default: every source)")
    lo.add_argument("--never-train", action="append", default=[], metavar="SOURCE",
                    help="a source the recipe never trains on (its fold shares one model)")
    _add_recipe_flags(lo)

    c = sub.add_parser("calibrate", help="calibrate a trained model again with its recipe's "
                                         "leave-one-source-out folds; rewrites the card")
    c.add_argument("--model", required=True, help="model directory")
    c.add_argument("--data", nargs="+", required=True)
    c.add_argument("--loso", required=True, metavar="DIR", help="a finished `loso` folder")
    c.add_argument("--no-robustness", action="store_true")
    _add_max_pixels(c)

    sv = sub.add_parser("serving", help="measure the serving path (stored re-encode, face "
                                        "step, per-face verdicts) again; rewrites the card")
    sv.add_argument("--model", required=True, help="model directory")
    sv.add_argument("--data", nargs="+", required=True)
    _add_max_pixels(sv)

    e = sub.add_parser("evaluate", help="metrics overall and per source")
    e.add_argument("--model", default=None, help="model directory (default: shipped model)")
    e.add_argument("--data", nargs="+", required=True)
    e.add_argument("--split", default="test", help="train|val|test|all")
    e.add_argument("--json", default=None, help="write metrics JSON here")
    e.add_argument("--plots", default=None, help="write PNG plots into this folder")
    e.add_argument("--perturb", default=None, choices=["none", "jpeg70", "half", "blur"])
    e.add_argument("--source", action="append", default=[], help="only these sources")
    e.add_argument("--model-sources", action="store_true",
                   help="only the sources the model's card lists (as its figures were made)")
    e.add_argument("--exclude-source", action="append", default=[])
    e.add_argument("--batch-size", type=int, default=64)
    _add_max_pixels(e)

    ev = sub.add_parser("evaluate-video",
                        help="the video path on folders of real/fake clips: verdict per clip, "
                             "metrics")
    ev.add_argument("--model", default=None, help="model directory (default: shipped model)")
    ev.add_argument("--data", nargs="+", required=True,
                    help="folders with real/ and fake/ clips (.mp4, .webm, .mov; any depth)")
    ev.add_argument("--sample-fps", type=float, default=2.0,
                    help="sampled frames per second of video (default %(default)s)")
    ev.add_argument("--max-samples", type=int, default=120,
                    help="at most this many sampled frames per clip (default %(default)s)")
    ev.add_argument("--json", default=None, help="write the verdicts and metrics JSON here")
    _add_max_pixels(ev)

    p = sub.add_parser("predict", help="one JSON line per image")
    p.add_argument("--model", default=None)
    p.add_argument("images", nargs="+")
    p.add_argument("--threads", type=int, default=None, help="TF intra-op threads")
    _add_max_pixels(p)

    b = sub.add_parser("benchmark", help="engine vs model.predict per-image latency")
    b.add_argument("--model", default=None)
    b.add_argument("--n", type=int, default=100, help="images to time")
    b.add_argument("--images", nargs="*", default=None, help="image files (default: synthetic)")
    b.add_argument("--threads", type=int, default=None)
    _add_max_pixels(b)

    a = sub.add_parser("annotate", help="merge evaluation JSON files into a model card")
    a.add_argument("--model", required=True)
    a.add_argument("--add", nargs=2, action="append", default=[], metavar=("KEY", "JSON"),
                   help="store this evaluation JSON under extra_evaluations[KEY]")
    a.add_argument("--note", nargs=2, action="append", default=[], metavar=("KEY", "TEXT"))
    a.add_argument("--ablation", nargs=3, action="append", default=[],
                   metavar=("NAME", "DESCRIPTION", "LOSO_DIR"),
                   help="add a row to the card's ablation table from a `loso` folder (rows "
                        "keep the order given; the first --ablation replaces the table)")
    a.add_argument("--ablation-flips", nargs=3, action="append", default=[],
                   metavar=("NAME", "DESCRIPTION", "LOSO_DIR"),
                   help="like --ablation, scored with test-time flips (no training: the folds "
                        "keep each image's mirror score)")
    a.add_argument("--ablation-note", action="append", default=[], nargs=2,
                   metavar=("NAME", "TEXT"), help="a note under the ablation row NAME")
    a.add_argument("--loso-note", default=None,
                   help="a paragraph under the card's leave-one-source-out table")
    a.add_argument("--failure-mode", action="append", default=[],
                   help="a known failure mode (replaces the list when given)")
    a.add_argument("--comparison-md", default=None, help="markdown file with the comparison")
    a.add_argument("--comparison-baseline", default=None, metavar="NAME",
                   help="what the comparison compares with (default: the registry's baseline)")

    w = sub.add_parser("export-web", help="write the model and the face detector for the "
                                          "browser (the private check)")
    w.add_argument("--model-dir", default=None,
                   help="model directory (default: the shipped model)")
    w.add_argument("--out", default=None,
                   help="folder to write (default: static/private-check/model)")
    wp = sub.add_parser("web-parity", help="the browser model against the server engine, in "
                                           "headless Chromium (figures for the model card)")
    wp.add_argument("--data", default="../shared/datasets/faces128")
    wp.add_argument("--per-source", type=int, default=20,
                    help="test images per source, half real, half fake")
    wp.add_argument("--model-dir", default=None)
    wp.add_argument("--chromium", default="/usr/bin/chromium")
    wp.add_argument("--json", default=None, help="write every image's comparison here")
    wp.add_argument("--write-card", action="store_true",
                    help="record the figures in the model card (browser_parity)")
    return ap


def _say(line: str) -> None:
    print(line, flush=True)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 1


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.cmd == "train":
        from .data import DataError
        from .train import train

        config = _recipe_config(args, argv, parser,
                                exclude_sources=tuple(args.exclude_source),
                                robustness=not args.no_robustness, name=args.name)
        try:
            loso = None
            if args.loso:
                from .loso import calibration_inputs

                loso = calibration_inputs(args.loso)
            card = train(args.data, args.out, config, progress=_say, loso=loso)
        except (DataError, FileNotFoundError) as exc:
            return _fail(str(exc))
        tr = card["training"]
        print(f"train {tr['train_seconds'] / 60:.1f} min; test ROC AUC "
              f"{card.get('test_metrics', {}).get('roc_auc', float('nan')):.4f}", flush=True)
        return 0

    if args.cmd == "loso":
        from .data import DataError
        from .loso import format_summary, run

        config = _recipe_config(args, argv, parser)
        try:
            summary = run(args.data, config, args.out, held_out=args.held_out,
                          never_train=args.never_train, progress=_say)
        except (DataError, FileNotFoundError, ValueError) as exc:
            return _fail(str(exc))
        print(format_summary(summary), flush=True)
        return 0

    if args.cmd == "calibrate":
        from .data import DataError
        from .loso import calibration_inputs
        from .train import recalibrate

        try:
            card = recalibrate(args.model, args.data, loso=calibration_inputs(args.loso),
                               command="python -m ml " + shlex.join(argv),
                               robustness=not args.no_robustness, max_pixels=args.max_pixels,
                               progress=_say)
        except (DataError, FileNotFoundError) as exc:
            return _fail(str(exc))
        print(f"threshold {card['threshold']:.4f}; test ROC AUC "
              f"{card.get('test_metrics', {}).get('roc_auc', float('nan')):.4f}", flush=True)
        return 0

    if args.cmd == "serving":
        from .data import DataError
        from .train import serving_path_update

        try:
            card = serving_path_update(args.model, args.data, max_pixels=args.max_pixels,
                                       command="python -m ml " + shlex.join(argv),
                                       progress=_say)
        except (DataError, FileNotFoundError) as exc:
            return _fail(str(exc))
        sp = card["serving_path"]
        print(f"serving path: no face {sp['no_face_rate']:.4f}, ROC AUC {sp['roc_auc']:.4f}, "
              f"median {sp['ms_per_image']['median']:.1f} ms per image", flush=True)
        return 0

    if args.cmd == "evaluate":
        from .data import DataError
        from .evaluate import evaluate, format_summary

        try:
            res = evaluate(args.model, args.data, split=args.split, json_out=args.json,
                           plots_dir=args.plots,
                           perturbation=None if args.perturb == "none" else args.perturb,
                           batch_size=args.batch_size, only_sources=args.source,
                           model_sources=args.model_sources,
                           exclude_sources=args.exclude_source, max_pixels=args.max_pixels)
        except (DataError, FileNotFoundError) as exc:
            return _fail(str(exc))
        print(format_summary(res), flush=True)
        return 0

    if args.cmd == "evaluate-video":
        from .data import DataError
        from .evaluate_video import evaluate_video, format_summary

        if not args.sample_fps > 0:
            parser.error("--sample-fps must be > 0")
        if args.max_samples < 1:
            parser.error("--max-samples must be >= 1")
        try:
            res = evaluate_video(args.model, args.data, sample_fps=args.sample_fps,
                                 max_samples=args.max_samples, json_out=args.json,
                                 max_pixels=args.max_pixels, progress=_say)
        except (DataError, FileNotFoundError) as exc:
            return _fail(str(exc))
        print(format_summary(res), flush=True)
        return 0

    if args.cmd == "predict":
        from .inference import Engine, ImageDecodeError

        engine = Engine.load(args.model, intra_threads=args.threads,
                             max_pixels=args.max_pixels)
        rc = 0
        for path in args.images:
            try:
                d = engine.predict(path).as_dict()
                d = {"path": path, **d}
            except ImageDecodeError as exc:
                d = {"path": path, "error": str(exc)}
                rc = 1
            print(json.dumps(d), flush=True)
        return rc

    if args.cmd == "benchmark":
        from .benchmark import format_report, run

        res = run(args.model, n=args.n, images=args.images, threads=args.threads,
                  max_pixels=args.max_pixels)
        print(format_report(res), flush=True)
        return 0

    if args.cmd == "annotate":
        from pathlib import Path

        from . import read_card
        from .card import write_card

        card = read_card(args.model)
        extra = card.setdefault("extra_evaluations", {})
        for key, path in args.add:
            extra[key] = json.loads(Path(path).read_text())
        for key, text in args.note:
            extra.setdefault(key, {})["note"] = text
        if args.ablation:
            from .loso import ablation_row, load_folds

            card["ablation"] = [ablation_row(name, desc, load_folds(folder))
                                for name, desc, folder in args.ablation]
            card["ablation"] += [ablation_row(name, desc, load_folds(folder), flips=True)
                                 for name, desc, folder in args.ablation_flips]
        for name, text in args.ablation_note:
            for row in card.get("ablation", []):
                if row["name"] == name:
                    row["note"] = f"{name}: {text}"
        if args.failure_mode:
            card["failure_modes"] = list(args.failure_mode)
        if args.loso_note is not None:
            if "loso" not in card:
                return _fail("the card has no leave-one-source-out table to annotate")
            card["loso"]["note"] = args.loso_note
        if not extra:
            card.pop("extra_evaluations", None)
        if args.comparison_md:
            card["comparison_md"] = Path(args.comparison_md).read_text()
        if args.comparison_baseline:
            card["comparison_baseline"] = args.comparison_baseline
        write_card(args.model, card)
        return 0

    if args.cmd == "export-web":
        from .export_web import ExportError, export_web

        try:
            export_web(args.model_dir, args.out, progress=_say)
        except (ExportError, FileNotFoundError) as exc:
            return _fail(str(exc))
        return 0
    if args.cmd == "web-parity":
        from pathlib import Path

        from .web_parity import card_record, run

        result = run(data=Path(args.data), per_source=args.per_source,
                     model_dir=args.model_dir, chromium=args.chromium)
        summary = result["summary"]
        print(json.dumps({k: v for k, v in summary.items() if k != "per_source"}, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        if args.write_card:
            card_record(args.model_dir, summary)
            _say("recorded in the model card (browser_parity)")
        return 0
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
