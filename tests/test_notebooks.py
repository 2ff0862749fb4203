"""Every notebook: executed by papermill in smoke mode, its recorded metrics asserted;
the committed (default-run) copy checked for outputs, metrics and hygiene."""

import json
import math
import re
from pathlib import Path

import nbformat
import pytest

from mmtutorial.course import COURSE
from mmtutorial.course.classroom import (
    SELF_TEST_TAG,
    find_exercises,
    read_notebook,
    self_test_edition,
)
from mmtutorial.course.notebook import read_metrics
from mmtutorial.experiments import execute_notebook, notebook_parameters

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def check_00(m, smoke):
    assert m["weights_sum"] == pytest.approx(1.0, abs=1e-6)
    assert m["lessons_in_course"] == len(COURSE)
    assert m["lessons_available"] >= 1
    assert 1 < m["attention_output"] < 26


def check_01(m, smoke):
    # the learned bandwidth beats the hand-picked one, which beats ignoring the query
    assert m["mse_learned_kernel"] < m["mse_fixed_kernel"] < m["mse_average_pooling"]
    assert m["loo_loss_last"] < m["loo_loss_first"], "fitting the bandwidth must reduce the loss"
    assert m["learned_bandwidth"] < m["fixed_bandwidth"]
    assert m["gaussian_equals_sdpa_max_abs_error"] < 1e-4
    assert m["entropy_T0.1"] < m["entropy_T10"] <= m["max_entropy"] + 1e-6
    assert m["hard_attention_has_grad"] is False


def check_02(m, smoke):
    assert m["sdpa_max_abs_error"] < 1e-5
    assert m["mha_scratch_max_abs_error"] < 1e-5
    assert m["mha_package_max_abs_error"] < 1e-5
    assert 0.7 < m["unscaled_variance_over_d_at_max_d"] < 1.3
    assert 0.7 < m["scaled_score_variance_at_max_d"] < 1.3
    assert m["unscaled_max_weight_at_max_d"] > 0.8 > m["scaled_max_weight_at_max_d"]
    assert m["scaled_over_unscaled_grad_at_max_d"] > 3
    assert len(m["scratch_over_sdpa_ratios"]) == len(m["timing_lengths"])
    assert all(r > 0 for r in m["scratch_over_sdpa_ratios"])


def check_03(m, smoke):
    assert m["soc_images_per_second"] > 500, "generation should take seconds, not minutes"
    assert m["soc_train_questions"] == 20 * (300 if smoke else 9800)
    assert m["soc_heldout_questions"] == 20 * (50 if smoke else 200)
    assert m["soc_majority_by_question"]["count same shape"] < 0.4
    assert all(0.4 < v < 0.6 for k, v in m["soc_majority_by_question"].items() if k != "count same shape")
    if smoke:  # a few hundred samples and epochs: learning happens, above chance (0.1)
        assert m["av_fused_acc"] > 0.3
    else:  # each modality alone is clearly ambiguous, together they are not
        assert max(m["av_image_acc"], m["av_audio_acc"]) < 0.75
        assert m["av_fused_acc"] > max(m["av_image_acc"], m["av_audio_acc"]) + 0.1


def check_04(m, smoke):
    assert m["permutation_equivariance_error"] < 1e-5
    assert m["pe_distance_invariance_error"] < 1e-3
    assert m["encoder_block_postnorm_max_abs_error"] < 1e-5
    assert m["encoder_block_prenorm_max_abs_error"] < 1e-5
    correct = m["sort_token_acc_sinusoidal"]
    assert correct > (0.8 if smoke else 0.95), "the correct encoding learns to sort"
    for broken in ("none", "bug_returns_the_table", "bug_no_position"):
        assert m[f"sort_token_acc_{broken}"] < correct - 0.3, broken
    if not smoke:
        assert m["sort_seq_acc_sinusoidal"] > 0.9


def check_05(m, smoke):
    assert m["flex_max_abs_error"] < 1e-5 and m["blocked_max_abs_error"] < 1e-5
    assert 1.6 < m["scratch_memory_loglog_slope"] < 2.4, "full attention's memory grows quadratically"
    if not smoke:
        assert m["scratch_time_loglog_slope"] > 1.5
        assert m["flex_window_speedup_vs_dense_masked"] > 3
        assert m["flex_peak_mib"] < m["dense_masked_peak_mib"] / 4
    for pattern in ("full_attention", "sliding_window", "global_local"):
        assert m[f"task_local_acc_{pattern}"] > 0.9, pattern
    assert m["task_long_range_acc_full_attention"] > 0.9
    assert m["task_long_range_acc_global_local"] > 0.9
    assert m["task_long_range_acc_sliding_window"] < 0.65, "a window cannot see that far"


def check_06(m, smoke):
    for name in ("test_acc_cross", "test_acc_multihop", "test_acc_co"):
        assert 0.0 <= m[name] <= 1.0
    assert 0.0 < m["attention_on_target_chance"] < 0.5
    for mode in ("cross", "multihop", "co"):
        assert 0.0 <= m[f"attention_on_target_{mode}"] <= 1.0
    if not smoke:
        assert m["test_acc_cross"] > 0.7, "well above the 0.5 of guessing yes/no, square/circle"
        assert m["test_acc_left_cross"] > 0.8 and m["test_acc_top_cross"] > 0.8
        # trained on answers only, the question's attention lands on the object it names
        assert m["attention_on_target_cross"] > 2 * m["attention_on_target_chance"]


def check_07(m, smoke):
    assert m["single_token_attention_gap"] < 1e-5, "one token: self-attention is a linear map"
    unimodal = max(m["acc_mean_image"], m["acc_mean_audio"])
    fused = [v for k, v in m.items() if k.startswith("acc_mean_") and k not in ("acc_mean_image", "acc_mean_audio")]
    assert fused and min(m["acc_mean_image"], m["acc_mean_audio"]) > 0.15, "learning happens"
    if smoke:
        assert max(fused) > unimodal
    else:
        assert m["seeds"] >= 3
        assert min(fused) > unimodal + 0.05, "every fusion beats both modalities alone"
        assert m["gate_audio_weight_corr_snr"] > 0.3, "the gate trusts clean audio more"


def check_08(m, smoke):
    both = {k: v for k, v in m.items() if k.startswith("absent_both_")}
    assert len(both) == 5 and min(both.values()) > 0.2, "learning happens (chance is 0.1)"
    if not smoke:
        # modality dropout helps when a modality is missing
        assert m["absent_audio_only_early_modality_dropout"] > m["absent_audio_only_early"] + 0.05
        assert m["absent_image_only_early_modality_dropout"] > m["absent_image_only_early"] + 0.05
        assert m["relative_robustness_missing_early_modality_dropout"] > m["relative_robustness_missing_early"]
        assert m["effective_robustness_missing_late"] == 0.0


def check_09(m, smoke):
    assert m["shared_vs_per_question_gap"] < 1e-5, "one image encoding shared by its questions changes nothing"
    assert m["checkpoint_reload_gap"] == 0.0, "a reloaded checkpoint answers exactly like the model"
    for key, value in m.items():
        if key.startswith(("test_acc_", "prior_acc_", "heldout_acc_", "attention_")) and not isinstance(value, str):
            assert 0.0 <= value <= 1.0, key
    if not smoke:
        # the attention head learns far beyond what can be answered without the image
        assert m["test_acc_nonrelational_attention"] > 0.9
        assert m["test_acc_relational_attention"] > m["prior_acc_relational"] + 0.15
        assert m["test_acc_nonrelational_attention"] > m["test_acc_nonrelational_baseline"]
        # trained on answers only, one of the hops lands on the object the question names
        assert m["attention_best_map_on_named_object"] > 3 * m["attention_on_named_object_chance"]


def check_10(m, smoke):
    assert m["sweep_failed"] == 0 and m["sweep_points"] >= 4
    assert m["points_left_after_sweep"] == 0, "a finished sweep has nothing left to run"
    assert m["ddp_world_size"] == 2 and m["ddp_weight_gap"] < 1e-4, "2 gloo processes take one process's steps"
    assert m["dask_points"] >= 2 and m["dask_metric_gap"] < 0.01, "a point's result does not depend on where it ran"
    accuracies = {k: v for k, v in m.items() if k.startswith("acc_missing_")}
    assert accuracies and all(0.0 <= v <= 1.0 for v in accuracies.values())
    complete = [v for k, v in accuracies.items() if k.endswith("_0.0")]
    assert complete and min(complete) > 0.15, "learning happens (chance is 0.1)"
    if not smoke:
        assert m["sweep_points"] == 27
        for fusion in ("early", "late", "gated"):  # the more modalities go missing, the worse
            curve = [m[f"acc_missing_{fusion}_{rate}"] for rate in (0.0, 0.5, 1.0)]
            assert curve[0] > curve[1] > curve[2], (fusion, curve)


CHECKS = {
    "00": check_00,
    "01": check_01,
    "02": check_02,
    "03": check_03,
    "04": check_04,
    "05": check_05,
    "06": check_06,
    "07": check_07,
    "08": check_08,
    "09": check_09,
    "10": check_10,
}


def test_every_notebook_has_metric_checks_and_a_course_entry():
    numbers = {p.name[:2] for p in NOTEBOOKS}
    assert numbers, "no notebooks found"
    assert numbers <= set(CHECKS), f"notebooks without metric checks: {sorted(numbers - set(CHECKS))}"
    assert {p.name for p in NOTEBOOKS} <= {lesson.filename for lesson in COURSE}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_its_heading_under_exercises(path):
    """Each exercise (a solution cell) is introduced by its own "### Exercise N: title", numbered
    1, 2, ... in order, below one "## Exercises" heading (or, for a single exercise, its own
    "## Exercise 1: title"): a rewrite of the cell above once dropped both, leaving a
    solution with no task in the student edition."""
    notebook = read_notebook(path)
    exercises = find_exercises(notebook, path.stem)
    assert [e.number for e in exercises] == list(range(1, len(exercises) + 1)), path.name
    assert all(e.title for e in exercises), f"{path.name}: an exercise without its '### Exercise N: title' cell"
    if exercises:
        above = [c.source for c in notebook.cells[: exercises[0].cell] if c.cell_type == "markdown"]
        section = r"^## (Exercises\s*|Exercise 1:.+)$"
        assert any(re.search(section, text, re.M) for text in above), f"{path.name}: no '## Exercises'"


def test_readme_learning_path_lists_every_notebook():
    readme = (ROOT / "README.md").read_text()
    learning_path = readme.split("## Learning path", 1)[1].split("\n## ", 1)[0]
    table_rows = re.findall(r"^\|\s*\[?(\d\d)", learning_path, flags=re.M)
    assert sorted(table_rows) == sorted(p.name[:2] for p in NOTEBOOKS)
    for path in NOTEBOOKS:
        assert path.name in readme, f"README does not link {path.name}"


def test_each_notebooks_time_line_agrees_with_the_readme():
    """The first cell's "*Time: about N minutes ...*" and the README's CPU column say the
    same thing ("< 1 min" in the README for about a minute)."""
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        first = "".join(json.loads(path.read_text())["cells"][0]["source"])
        said = re.search(r"\*Time: about ([\d.]+) minutes?", first)
        assert said, f"{path.name}: the first cell needs a '*Time: about N minutes ...*' line"
        row = re.search(rf"^\| {path.name[:2]} \|.*\| (< 1|~[\d.]+) min \|", readme, flags=re.M)
        assert row, f"README: no CPU time for {path.name}"
        readme_minutes = 1.0 if row.group(1) == "< 1" else float(row.group(1)[1:])
        assert float(said.group(1)) == readme_minutes, (path.name, said.group(0), row.group(1))


def _sanitizers() -> list[tuple[re.Pattern, str]]:
    """The regex/replace pairs of tests/sanitize_outputs.cfg (addresses, timings)."""
    text = (ROOT / "tests" / "sanitize_outputs.cfg").read_text()
    pairs = re.findall(r"^regex: (.+)$\n^replace: (.*)$", text, flags=re.M)
    return [(re.compile(regex), replace) for regex, replace in pairs]


def _comparable_outputs(cell) -> list[tuple[str, str]]:
    """A cell's text outputs (streams and text/plain results), sanitized, for comparison."""
    found = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            # a kernel may flush one print's lines as one or as several stream outputs
            if found and found[-1][0] == output["name"]:
                found[-1] = (output["name"], found[-1][1] + output["text"])
            else:
                found.append((output["name"], output["text"]))
        elif output["output_type"] in ("execute_result", "display_data") and "text/plain" in output["data"]:
            found.append(("text/plain", output["data"]["text/plain"]))
    sanitized = []
    for kind, text in found:
        for regex, replace in _sanitizers():
            text = regex.sub(replace, text)
        sanitized.append((kind, text))
    return sanitized


def record_smoke_seconds(name: str, seconds: float) -> None:
    """Write how long a notebook's smoke run took to build/smoke-seconds/<name>.json."""
    folder = ROOT / "build" / "smoke-seconds"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{Path(name).stem}.json").write_text(json.dumps({"notebook": name, "seconds": round(seconds, 1)}))


#: Cells whose committed output must be reproduced exactly by any run (smoke or not).
CHECK_OUTPUT = "# NBVAL_CHECK_OUTPUT"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_in_smoke_mode(path, tmp_path):
    """One execution per notebook checks everything: it runs in smoke mode within its
    budget and records metrics that pass its checks; every student stub stops at its
    self-check with its hint and every solution passes (the self-test edition); cells
    marked NBVAL_CHECK_OUTPUT print what the committed notebook shows."""
    committed = read_notebook(path)
    edition = self_test_edition(committed, path.name)
    nbformat.write(edition, tmp_path / path.name)
    result = execute_notebook(
        tmp_path / path.name, tmp_path / "executed" / path.name, {"smoke": True, "seed": 1}, cwd=path.parent
    )
    assert result.status == "ok", result.error
    executed = nbformat.read(result.output, as_version=4)
    # the student edition stops at every exercise, and the solutions pass every self-check
    tests = [c for c in executed.cells if SELF_TEST_TAG in c.metadata.get("tags", [])]
    exercises = find_exercises(executed, path.name)
    assert len(tests) == len(exercises) > 0
    for exercise, test in zip(exercises, tests, strict=True):
        stopped = "".join(o.get("text", "") for o in test.outputs)
        assert f"✓ Exercise {exercise.number}: the student edition stops here" in stopped, stopped
        assert "not implemented yet" in stopped, stopped
        printed = "".join(o.get("text", "") for i in exercise.check_cells for o in executed.cells[i].outputs)
        assert printed.count("✓ ") >= len(exercise.checks) > 0, f"exercise {exercise.number}: {printed!r}"
    # outputs that do not depend on the run are what the committed notebook shows
    added = {SELF_TEST_TAG, "injected-parameters"}  # by the self-test edition and by papermill
    lesson_cells = [c for c in executed.cells if not added & set(c.metadata.get("tags", []))]
    for index, (mine, theirs) in enumerate(zip(lesson_cells, committed.cells, strict=True)):
        if theirs.cell_type == "code" and CHECK_OUTPUT in theirs.source:
            assert _comparable_outputs(mine) == _comparable_outputs(theirs), (
                f"cell {index} differs from the committed one"
            )
    # how long smoke mode takes is reported, not asserted (no timed tests): build/smoke-seconds/
    record_smoke_seconds(path.name, result.seconds)
    CHECKS[path.name[:2]](result.metrics, smoke=True)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_executed_and_clean(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    assert "papermill" not in notebook["metadata"], "run `make refresh` (it strips run metadata)"
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c["metadata"].get("tags", [])]
    assert tagged == [0], "the first code cell, and only it, is tagged 'parameters'"
    assert not any("injected-parameters" in c["metadata"].get("tags", []) for c in code)
    for cell in code:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"committed error: {output.get('ename')}"
            text = json.dumps(output)
            assert not re.search(r"/(home|root|tmp|work|Users)/\w", text), "machine path in output"
    defaults = notebook_parameters(path)
    assert defaults["smoke"] is False, "committed notebooks come from a default (non-smoke) run"
    # the committed outputs come from a default run and must pass the same checks
    CHECKS[path.name[:2]](read_metrics(path), smoke=False)
    solutions = [c for c in code if "solution" in c["metadata"].get("tags", [])]
    assert solutions, "every notebook has exercises with hidden solutions"
    assert all(c["metadata"].get("jupyter", {}).get("source_hidden") for c in solutions)


def test_unknown_parameter_is_rejected_before_running(tmp_path):
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['epoch'\]; valid parameters are"):
        execute_notebook(NOTEBOOKS[0], tmp_path / "x.ipynb", {"epoch": 3})
    assert not (tmp_path / "x.ipynb").exists()


def test_bad_parameter_value_is_rejected_before_a_kernel_starts(tmp_path):
    with pytest.raises(ValueError, match=r"00_welcome.ipynb: parameter seed=-1: expected a value >= 0"):
        execute_notebook(NOTEBOOKS[0], tmp_path / "x.ipynb", {"smoke": True, "seed": -1})
    assert not (tmp_path / "x.ipynb").exists()


def test_a_choice_from_a_package_constant_is_checked_before_running(tmp_path):
    """fusion_experiment.ipynb declares ``Param(fusion, str, choices=FUSIONS)`` with FUSIONS
    imported from the package: a misspelled fusion is caught up front, not in the kernel."""
    from mmtutorial.experiments import declared_parameters, plan_sweep
    from mmtutorial.models.av_fusion import FUSIONS

    experiment = ROOT / "notebooks" / "experiments" / "fusion_experiment.ipynb"
    assert declared_parameters(experiment)["fusion"].choices == FUSIONS
    with pytest.raises(ValueError, match=r"point fusion=lat: parameter fusion='lat': expected one of \['image'"):
        plan_sweep(experiment, {"fixed": {"smoke": True}, "grid": {"fusion": ["early", "lat"]}}, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_metrics_are_finite_numbers_where_numeric():
    for path in NOTEBOOKS:
        for key, value in read_metrics(path).items():
            if isinstance(value, float):
                assert math.isfinite(value), f"{path.name}: {key} = {value}"


def test_cli_rejects_unknown_parameter(tmp_path, capsys):
    from mmtutorial.experiments import main

    code = main(["run", str(NOTEBOOKS[0]), "--out", str(tmp_path), "-p", "sed", "3"])
    assert code == 2
    assert "unknown parameter(s) ['sed']" in capsys.readouterr().err


def test_clean_notebook_drops_run_metadata(tmp_path):
    from mmtutorial.experiments import clean_notebook

    path = tmp_path / "nb.ipynb"
    path.write_text(
        json.dumps(
            {
                "metadata": {"papermill": {"input_path": "/somewhere/nb.ipynb"}},
                "cells": [
                    {"cell_type": "code", "metadata": {"papermill": {"duration": 1.0}, "tags": ["x"]}, "outputs": []}
                ],
            }
        )
    )
    clean_notebook(path)
    cleaned = json.loads(path.read_text())
    assert "papermill" not in cleaned["metadata"]
    assert cleaned["cells"][0]["metadata"] == {"tags": ["x"]}
