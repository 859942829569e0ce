"""``seamline nlu train | parse | evaluate`` as a user runs them (in-process, through ``bots.cli.main``)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from seamline.bots.cli import main
from seamline.nlu.data import load
from seamline.shared.settings import CONFIG_DIR

from tests.nlu.test_lifecycle import SMALL_INTENTS, SMALL_OUT_OF_SCOPE, write_small_data

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EVAL_TRAIN, EVAL_TEST = FIXTURES / "eval_train.csv", FIXTURES / "eval_test.csv"
RASA = FIXTURES / "rasa_nlu.yml"


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path) -> Path:
    """No Seamline settings from the outside; data and models in tmp_path. Returns the models dir."""
    import os

    for name in list(os.environ):
        if name.startswith("SEAMLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SEAMLINE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SEAMLINE_NLU_MODELS", str(tmp_path / "models"))
    return tmp_path / "models"


@pytest.fixture
def small_config(monkeypatch, tmp_path) -> Path:
    """The repo's config with the small training data in intents/ (trains in well under a second)."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    shutil.rmtree(config / "intents")
    write_small_data(config / "intents")
    monkeypatch.setenv("SEAMLINE_CONFIG_DIR", str(config))
    return config


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["nlu", *args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for row in csv.DictReader(handle) if any(v.strip() for v in row.values()))


# --- train ---------------------------------------------------------------------------------------------


def test_train_writes_a_model_then_skips_unchanged_data_and_force_retrains(capsys, env, small_config):
    code, out, err = run(capsys, "train")
    assert code == 0
    written = re.search(r"model written: (\S+)", out)
    assert written, out
    first = Path(written.group(1))
    assert first.is_file() and first.parent == env
    assert f"{len(SMALL_INTENTS) * 12} examples of {len(SMALL_INTENTS)} intents" in out
    assert f"{len(SMALL_OUT_OF_SCOPE)} out-of-scope" in out
    progress = [line for line in err.splitlines() if line.startswith("training [")]
    steps = (len(SMALL_INTENTS) + 1) * 2  # the intents and out-of-scope, fitted twice (held-out, then all)
    assert progress and progress[-1].split("]")[1].split()[0] == f"{steps}/{steps}", err  # ends complete
    assert "model written" not in err  # results on stdout, progress on stderr

    code, out, err = run(capsys, "train")
    assert code == 0 and "nothing to do" in out and str(first) in out and "model written" not in out
    assert list(env.glob("nlu-*.npz")) == [first]

    code, out, err = run(capsys, "train", "--force")
    assert code == 0
    second = Path(re.search(r"model written: (\S+)", out).group(1))
    assert second != first and sorted(env.glob("nlu-*.npz")) == sorted([first, second])


def test_train_takes_other_data_with_data(capsys, env, tmp_path, small_config):
    other = write_small_data(tmp_path / "other", gift_card=True)
    code, out, _ = run(capsys, "train", "--data", str(other))
    assert code == 0 and f"of {len(SMALL_INTENTS) + 1} intents" in out
    code, out, _ = run(capsys, "parse", "I want to buy a gift card", "--json")
    assert code == 0 and json.loads(out)["intent"] == "gift_card"


# --- parse ---------------------------------------------------------------------------------------------


def test_parse_json_gives_the_intent_ranking_and_normalized_entities(capsys, small_config):
    assert run(capsys, "train")[0] == 0
    code, out, err = run(capsys, "parse", "where is my order? call me on 8 (916) 123-45-67", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["intent"] == "order_status"
    ranking = result["ranking"]
    assert ranking[0]["intent"] == "order_status"
    assert [r["confidence"] for r in ranking] == sorted((r["confidence"] for r in ranking), reverse=True)
    assert all(0 <= r["confidence"] <= 1 for r in ranking)
    assert {"type": "phone", "value": "+79161234567", "text": "8 (916) 123-45-67"}.items() <= next(
        e for e in result["entities"] if e["type"] == "phone"
    ).items()


def test_parse_as_text_shows_intent_ranking_and_entities(capsys, small_config):
    assert run(capsys, "train")[0] == 0
    code, out, _ = run(capsys, "parse", "do you have a shop in kazan")
    assert code == 0
    assert out.startswith("intent: ") and "threshold" in out
    assert "entity city: 'Kazan'" in out


def test_parse_without_a_trained_model_names_the_file_and_the_command(capsys, env, small_config):
    code, out, err = run(capsys, "parse", "hello", "--json")
    assert code == 1 and out == ""
    assert str(env) in err and "seamline nlu train" in err, err
    assert "Traceback" not in err


def test_parse_with_a_damaged_model_names_the_file_and_the_command(capsys, env, small_config):
    assert run(capsys, "train")[0] == 0
    broken = env / "nlu-20990101T000000000000Z-0123456789ab.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    code, out, err = run(capsys, "parse", "hello")
    assert code == 1 and out == ""
    assert str(broken) in err and "seamline nlu train" in err, err


# --- evaluate ------------------------------------------------------------------------------------------


def _check_scores(result: dict, n_test: int) -> None:
    for key in ("in_scope_accuracy", "oos_recall", "macro_f1"):
        assert isinstance(result[key], float) and 0 <= result[key] <= 1, (key, result[key])
    assert result["n_test"] == n_test
    assert result["n_in_scope"] + result["n_oos"] == n_test
    assert 0 <= result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]


def test_evaluate_train_and_test_files_prints_one_json_object(capsys):
    code, out, err = run(capsys, "evaluate", "--train", str(EVAL_TRAIN), "--test", str(EVAL_TEST), "--json")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1
    result = json.loads(out)
    _check_scores(result, rows(EVAL_TEST))
    assert result["n_oos"] == 6  # both `oos` and `out_of_scope` rows count as out-of-scope
    assert result["train_seconds"] > 0
    assert result["n_train"] == rows(EVAL_TRAIN)
    assert result["in_scope_accuracy"] >= 0.5  # far above chance (1/4): it learned from --train
    assert "training [" not in err  # --json is quiet


def test_evaluate_as_text_shows_accuracy_and_the_most_confused(capsys):
    code, out, err = run(capsys, "evaluate", "--train", str(EVAL_TRAIN), "--test", str(EVAL_TEST))
    assert code == 0, err
    assert re.search(r"in-scope accuracy:\s+\d+\.\d\d%", out), out
    assert f"test examples:        {rows(EVAL_TEST)} " in out
    assert "most confused" in out and re.search(r"^  \S+ -> \S+: \d+$", out, re.MULTILINE), out
    assert "training [" in err


def test_evaluate_trains_on_a_rasa_file(capsys):
    code, out, err = run(capsys, "evaluate", "--train", str(RASA), "--test", str(EVAL_TEST), "--json")
    assert code == 0, err
    result = json.loads(out)
    _check_scores(result, rows(EVAL_TEST))
    assert result["n_train"] == len(load(RASA).all_examples)


def test_evaluate_test_alone_uses_the_current_model_without_retraining(capsys, env, small_config, monkeypatch):
    from seamline.nlu import evaluate
    from seamline.nlu.understanding import Understanding

    assert run(capsys, "train")[0] == 0
    model = next(env.glob("nlu-*.npz"))

    def no_training(*args, **kwargs):
        raise AssertionError("evaluate --test retrained although the model file matches the data")

    monkeypatch.setattr("seamline.nlu.training.fit", no_training)  # every way of training goes through it
    code, out, err = run(capsys, "evaluate", "--test", str(EVAL_TEST), "--json")
    assert code == 0, err
    result = json.loads(out)
    _check_scores(result, rows(EVAL_TEST))
    expected = evaluate.report(Understanding.from_file(model), load(EVAL_TEST).all_examples)
    assert (result["in_scope_accuracy"], result["oos_recall"], result["macro_f1"]) == (
        expected["in_scope_accuracy"],
        expected["oos_recall"],
        expected["macro_f1"],
    )


def test_evaluate_test_alone_without_a_model_trains_the_shipped_data(capsys, env, small_config):
    code, out, err = run(capsys, "evaluate", "--test", str(EVAL_TEST), "--json")
    assert code == 0, err
    _check_scores(json.loads(out), rows(EVAL_TEST))
    assert not env.exists() or not list(env.glob("nlu-*.npz"))  # evaluating writes no model file


def test_evaluate_without_files_cross_validates_the_shipped_data(capsys, small_config):
    code, out, err = run(capsys, "evaluate", "--folds", "2", "--json")
    assert code == 0, err
    result = json.loads(out)
    _check_scores(result, len(load(small_config / "intents").all_examples))
    assert result["folds"] == 2 and result["n_oos"] == len(SMALL_OUT_OF_SCOPE)
    assert result["in_scope_accuracy"] >= 0.5

    code, out, err = run(capsys, "evaluate", "--folds", "2")
    assert code == 0 and "per fold (2 folds)" in out
    assert "folds [" in err


def test_evaluate_train_without_test_is_a_usage_error(capsys):
    code, out, err = run(capsys, "evaluate", "--train", str(EVAL_TRAIN))
    assert code == 2 and out == "" and "--test" in err


def test_evaluate_a_test_file_with_a_bad_row_names_the_row(capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    lines = EVAL_TEST.read_text(encoding="utf-8").splitlines()
    lines[4] = "where is my parcel,"  # row 5 as a spreadsheet counts (row 1 is the header)
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "evaluate", "--train", str(EVAL_TRAIN), "--test", str(bad), "--json")
    assert code == 2 and out == ""
    assert str(bad) in err and "row 5" in err and "empty intent" in err, err
