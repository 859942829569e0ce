"""``seamline nlu train | parse | evaluate``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from seamline.shared.settings import Settings

if TYPE_CHECKING:  # imported where used: `seamline --help` does not load the classifier
    from seamline.nlu.data import TrainingData
    from seamline.nlu.understanding import Understanding

EVALUATE_HELP = """Measure the classifier. With --train and --test: train on one file, report on the other
(thresholds tuned on --validation, or a split of train). With --test only: the model trained from
the shipped config/intents, on that file. With no files: cross-validate config/intents.
Files may be CSV (text,intent; 'oos' or 'out_of_scope' mark out-of-scope), Rasa nlu.yml or our YAML."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    nlu = commands.add_parser("nlu", help="train, try and measure the intent classifier")
    sub = nlu.add_subparsers(dest="nlu_command", required=True)
    train = sub.add_parser("train", help="train a model from config/intents (only when the data changed)")
    train.add_argument("--data", type=Path, help="training data: a file or directory (default: config/intents)")
    train.add_argument("--force", action="store_true", help="train even when the newest model matches the data")
    train.add_argument(
        "--strict", action="store_true", help="refuse data with the same text under two intents (else: a warning)"
    )
    parse = sub.add_parser("parse", help="show how the current model understands a text")
    parse.add_argument("text")
    parse.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate = sub.add_parser(
        "evaluate", help="measure accuracy, out-of-scope recall and speed", description=EVALUATE_HELP
    )
    evaluate.add_argument("--train", type=Path)
    evaluate.add_argument("--test", type=Path)
    evaluate.add_argument("--validation", type=Path)
    evaluate.add_argument(
        "--folds", type=_folds, default=5, help="cross-validation folds without files (2-20, default 5)"
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")


def _folds(raw: str) -> int:
    value = int(raw) if raw.isdigit() else 0
    if not 2 <= value <= 20:
        raise argparse.ArgumentTypeError(f"{raw!r}: use a whole number from 2 to 20")
    return value


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.nlu_command == "train":
        return _train(args, settings)
    if args.nlu_command == "parse":
        return _parse(args, settings)
    return _evaluate(args, settings)


class Bar:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, label: str, quiet: bool = False) -> None:
        self.label, self.quiet, self.started, self._last = label, quiet, time.perf_counter(), -1
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if self.quiet or total <= 0:
            return
        share = done / total
        if not self.tty and int(share * 10) == self._last and done != total:
            return
        self._last = int(share * 10)
        filled = int(share * 30)
        line = (
            f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} "
            f"{time.perf_counter() - self.started:5.1f}s"
        )
        print(
            ("\r" + line) if self.tty else line,
            end="" if self.tty and done < total else "\n",
            file=sys.stderr,
            flush=True,
        )


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from seamline.nlu.lifecycle import train_to

    data = _loaded(args.data or settings.intents_dir, settings, strict=args.strict)
    print(
        f"training data: {len(data.examples)} examples of {len({e.intent for e in data.examples})} intents, "
        f"{len(data.out_of_scope)} out-of-scope, from {len(data.sources)} file(s)"
    )
    path, trained = train_to(
        settings.models_dir, data, force=args.force, progress=Bar("training"), oos_recall=settings.oos_recall
    )
    if trained:
        print(f"model written: {path}")
        print("a running Seamline picks it up on SIGHUP (kill -HUP <pid>)")
    else:
        print(f"the data has not changed since the newest model, {path}; nothing to do (--force retrains)")
    return 0


def _loaded(path: Path, settings: Settings, *, strict: bool = False) -> TrainingData:
    """Training data, its warnings printed to stderr as `seamline data validate` prints them (a text
    under two intents is trained under neither: said, never silent)."""
    from seamline.nlu.data import load

    data = load(path, strict=strict)
    for warning in data.warnings:
        file = Path(warning.file)
        if file.is_relative_to(settings.config_dir.parent):
            file = file.relative_to(settings.config_dir.parent)
        print(f"warning: {file}: {warning.what} — {warning.fix}", file=sys.stderr)
    return data


def _parse(args: argparse.Namespace, settings: Settings) -> int:
    from seamline.nlu.lifecycle import latest
    from seamline.nlu.understanding import Understanding

    understanding = Understanding.from_file(
        latest(settings.models_dir), order_pattern=settings.order_pattern, phone_region=settings.phone_region
    )
    parse = understanding.parse(args.text)
    if args.json:
        print(json.dumps(parse.to_dict(), ensure_ascii=False))
        return 0
    print(
        f"intent: {parse.intent} (confidence {parse.confidence:.3f}, threshold {understanding.threshold:.3f})"
        f"   language: {parse.language or '?'}"
    )
    for intent, confidence in parse.ranking:
        print(f"  {confidence:6.3f}  {intent}")
    for entity in parse.entities:
        print(f"entity {entity.type}: {entity.value!r} (from {entity.text!r} at {entity.start}-{entity.end})")
    return 0


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from seamline.nlu import evaluate

    quiet = args.json
    if args.train is None and args.test is None:
        if args.validation:
            print("seamline: --validation needs --train and --test", file=sys.stderr)
            return 2
        result = evaluate.cross_validate(
            _loaded(settings.intents_dir, settings),
            folds=args.folds,
            oos_recall=settings.oos_recall,
            progress=Bar("folds", quiet),
        )
    elif args.test is None:
        print("seamline: --train needs --test (the file to report on)", file=sys.stderr)
        return 2
    else:
        test = _loaded(args.test, settings).all_examples
        validation = _loaded(args.validation, settings).all_examples if args.validation else None
        if args.train is None:
            if args.validation:
                print(
                    "seamline: --validation tunes a model trained with --train; the shipped model is already tuned",
                    file=sys.stderr,
                )
                return 2
            result = evaluate.report(_shipped(settings), test)
        else:
            result = evaluate.train_and_report(
                _loaded(args.train, settings),
                test,
                validation,
                oos_recall=settings.oos_recall,
                progress=Bar("training", quiet),
            )
    print(json.dumps(result, ensure_ascii=False) if args.json else evaluate.format_report(result))
    return 0


def _shipped(settings: Settings) -> Understanding:
    """The model of the shipped data: the newest model file when it matches the data, else trained now."""
    from seamline.nlu.data import load
    from seamline.nlu.lifecycle import is_current, train_data
    from seamline.nlu.understanding import Understanding

    options = dict(order_pattern=settings.order_pattern, phone_region=settings.phone_region)
    data = load(settings.intents_dir)
    current = is_current(settings.models_dir, data)
    if current is not None:
        return Understanding.from_file(current, **options)
    return Understanding.from_model(train_data(data, oos_recall=settings.oos_recall), **options)
