"""dropkit.curves, tables, plots and publish: curve names/colours, the table maths behind the
result figures, what the figures draw and how they are published (checked on the artists, against hand-computed values)."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from dropkit import curves, plots, publish, tables  # noqa: E402


def make_row(protocol, method, density, seed, recalls, counts, sizes=(100, 100, 100), dataset="fashion-mnist",
             model="mlp"):
    recalls = np.asarray(recalls, dtype=float)
    return {
        "dataset": dataset, "model": model, "protocol": protocol, "method": method,
        "density": density, "seed": seed, "test_recalls": recalls.tolist(),
        "class_counts": list(counts), "class_sizes": list(sizes),
        "test_accuracy": recalls.mean(), "test_worst_class": recalls.min(),
        "test_gap": recalls.max() - recalls.min(), "test_std": recalls.std(),
    }


@pytest.fixture
def frame():
    """Three classes of 100 samples; full dataset, Random and EL2N at densities 0.1 and 0.5,
    two seeds, with hand-chosen recalls and class counts."""
    rows = [
        make_row("none", None, 1.0, 0, [0.6, 0.8, 1.0], [100, 100, 100]),
        make_row("none", None, 1.0, 1, [0.7, 0.8, 0.9], [100, 100, 100]),
        make_row("random", None, 0.1, 0, [0.3, 0.6, 0.9], [10, 10, 10]),
        make_row("random", None, 0.1, 1, [0.5, 0.6, 0.7], [9, 10, 11]),
        make_row("random", None, 0.5, 0, [0.5, 0.7, 0.9], [50, 50, 50]),
        make_row("random", None, 0.5, 1, [0.5, 0.7, 0.9], [48, 50, 52]),
        # EL2N keeps more of the easy classes: class density rises with class accuracy.
        make_row("strategy", "el2n", 0.1, 0, [0.1, 0.6, 0.8], [0, 10, 20]),
        make_row("strategy", "el2n", 0.1, 1, [0.2, 0.6, 0.9], [2, 10, 18]),
        make_row("strategy", "el2n", 0.5, 0, [0.4, 0.7, 0.9], [30, 50, 70]),
        make_row("strategy", "el2n", 0.5, 1, [0.4, 0.7, 0.9], [30, 50, 70]),
    ]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- publishing


def test_figure_png_records_the_panels_side_by_side():
    import io

    from PIL import Image

    fig = plots._grid_figure(3, (4.6, 3.4), ["one block"])[0]
    png = publish.figure_png(fig)
    plt.close(fig)
    image = Image.open(io.BytesIO(png))
    assert image.text[publish.PANEL_COLUMNS_KEY] == "2"  # 3 panels: 2 + 1 on two rows
    assert image.width > 1000  # saved at 1.5x the displayed resolution
    # blocks of different heights (one per setting) are counted in figure coordinates
    for counts in ([6, 3], [2, 2], [4, 1, 3]):
        fig = plots._grid_figure(counts, (4.6, 3.4), [str(n) for n in counts])[0]
        assert publish.panel_columns(fig) == 2, counts
        plt.close(fig)


def test_markdown_table_shows_mean_plus_minus_sd_n_and_whole_numbers():
    table = pd.DataFrame({"accuracy (%)": [91.234, 80.0], "accuracy (%) sd": [0.314, float("nan")],
                          "seeds": [5, 1], "kept": [204.0, 10.0], "corr": [0.5, -0.25]},
                         index=pd.Index(["Random", "EL2N"], name="curve"))
    lines = publish.markdown_table(table, "T").splitlines()
    assert re.split(r"\s*\|\s*", lines[1].strip("| ")) == ["curve", "accuracy (%)", "n", "kept", "corr"]
    assert re.split(r"\s*\|\s*", lines[3].strip("| ")) == ["Random", "91.23 ± 0.31", "5", "204", "0.50"]
    assert re.split(r"\s*\|\s*", lines[4].strip("| ")) == ["EL2N", "80.00", "1", "10", "-0.25"]


def test_markdown_table_caption_may_hold_backticks():
    """A backtick fence's info string may not hold a backtick (CommonMark): such a "fence" is a
    paragraph of literal text. The table directive is a colon fence, whose caption may."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.colon_fence import colon_fence_plugin

    text = publish.markdown_table(pd.DataFrame({"a": [1]}), "checked by `dropkit.claims`") + "\n\nA sentence."
    tokens = MarkdownIt("commonmark").use(colon_fence_plugin).parse(text)
    assert tokens[0].type == "colon_fence" and tokens[0].info == "{table} checked by `dropkit.claims`"
    assert [t.type for t in tokens[1:4]] == ["paragraph_open", "inline", "paragraph_close"]


def test_markdown_table_is_a_titled_myst_table():
    table = pd.DataFrame({"accuracy (%)": [91.234, 80.0], "seeds": [3, 3]},
                         index=pd.Index(["Random", "EL2N"], name="curve"))
    text = publish.markdown_table(table, "At $d = 0.5$")
    assert text.startswith(":::{table} At $d = 0.5$\n") and text.endswith("\n:::")
    assert "| Random" in text and "91.23" in text and "91.234" not in text


# --------------------------------------------------------------------------- names and colours


@pytest.mark.parametrize("protocol, method, label", [
    ("none", None, "Full dataset"),
    ("random", None, "Random"),
    ("random+drop", "el2n", "Random+DRoP"),
    ("random+drop", None, "Random+DRoP"),
    ("strategy", "dynamic_uncertainty", "Dynamic Uncertainty"),
    ("random+strategyq", "grand", "Random+GraNdQ"),
    ("strategy+drop", "forgetting", "Forgetting+DRoP"),
])
def test_method_label(protocol, method, label):
    assert curves.method_label(protocol, method) == label


def test_method_label_rejects_unknown_protocol_and_method():
    with pytest.raises(ValueError, match="protocol='bogus'"):
        curves.method_label("bogus")
    with pytest.raises(ValueError, match="method=None"):
        curves.method_label("strategy", None)
    with pytest.raises(ValueError, match="method='l2'"):
        curves.method_label("strategy+drop", "l2")


def test_no_colour_means_two_things_in_the_book():
    """Every curve name of every chapter has its own colour, the same in every chapter."""
    names = {curves.FULL_DATASET: curves.method_color("none"), "Random": curves.method_color("random"),
             "Random+DRoP": curves.method_color("random+drop", "el2n")}
    for method in curves.METHOD_NAMES:
        for protocol in ("strategy", "random+strategyq", "strategy+drop"):
            names[curves.method_label(protocol, method)] = curves.method_color(protocol, method)
    names.update(curves.VARIANT_COLORS)
    per_colour = {}
    for name, colour in names.items():
        per_colour.setdefault(colour, set()).add(name.split("Random+")[-1].split("+DRoP")[0] if "Q" in name
                                                 else name)
    # Random+<Strategy>Q and <Strategy>+DRoP share their protocol's colour whatever the Strategy;
    # every other colour names exactly one curve.
    protocol_colours = {curves.PROTOCOL_COLORS["random+strategyq"], curves.PROTOCOL_COLORS["strategy+drop"]}
    for colour, owners in per_colour.items():
        if colour not in protocol_colours:
            assert len(owners) == 1, f"colour {colour} means {sorted(owners)}"
    assert curves.method_color("strategy", "el2n") == curves.METHOD_COLORS["el2n"]
    assert curves.method_color("random+drop", "grand") == curves.method_color("random+drop", "el2n")
    assert curves.curve_style("Random+DRoP (rule counts)") == "--" and curves.curve_style("EL2N") == "-"


def test_labelled_adds_label_and_colour_and_names_missing_columns(frame):
    out = curves.labelled(frame)
    assert list(out["label"].unique()) == ["Full dataset", "Random", "EL2N"]
    assert set(out.loc[out["label"] == "EL2N", "color"]) == {curves.METHOD_COLORS["el2n"]}
    assert "label" not in frame  # the input is not modified
    with pytest.raises(ValueError, match="seed"):
        curves.labelled(frame.drop(columns=["seed"]))


# --------------------------------------------------------------------------- table maths


def test_metric_by_density_mean_min_max_over_seeds(frame):
    table = tables.metric_by_density(frame, "test_worst_class")
    assert set(table["label"]) == {"Random", "EL2N"}  # the full dataset is not a curve
    random_01 = table[(table["label"] == "Random") & (table["density"] == 0.1)].iloc[0]
    assert random_01["mean"] == pytest.approx(0.4)
    assert random_01["min"] == pytest.approx(0.3)
    assert random_01["max"] == pytest.approx(0.5)
    assert random_01["seeds"] == 2
    assert random_01["sd"] == pytest.approx(np.std([0.3, 0.5], ddof=1))
    el2n = table[table["label"] == "EL2N"].sort_values("density")
    np.testing.assert_allclose(el2n["mean"], [0.15, 0.4])
    with pytest.raises(ValueError, match="metric='test_bogus'"):
        tables.metric_by_density(frame, "test_bogus")


def test_full_dataset_metric(frame):
    full = tables.full_dataset_metric(frame, "test_worst_class")
    assert full == pytest.approx({"mean": 0.65, "min": 0.6, "max": 0.7, "sd": np.std([0.6, 0.7], ddof=1), "seeds": 2})
    assert tables.full_dataset_metric(frame[frame["protocol"] != "none"], "test_accuracy") is None


def test_tables_refuse_mixed_model_dataset_pairs(frame):
    other = frame.assign(dataset="cifar10")
    mixed = pd.concat([frame, other], ignore_index=True)
    with pytest.raises(ValueError, match="split_setups"):
        tables.metric_by_density(mixed)
    setups = tables.split_setups(mixed)
    assert [title for title, _ in setups] == ["fashion-mnist, MLP", "cifar10, MLP"]
    assert all(len(rows) == len(frame) for _, rows in setups)


def test_mean_class_densities_and_min_spc(frame):
    densities = tables.mean_class_densities(frame, "Random")
    assert list(densities) == [0.1, 0.5]
    np.testing.assert_allclose(densities[0.1], [0.095, 0.10, 0.105])
    np.testing.assert_allclose(densities[0.5], [0.49, 0.50, 0.51])
    assert tables.min_samples_per_class(frame, "Random", 0.1) == 9
    assert tables.min_samples_per_class(frame, "EL2N", 0.1) == 0
    assert tables.min_samples_per_class(frame, "EL2N", 0.5) == 30
    with pytest.raises(ValueError, match="density=0.3"):
        tables.min_samples_per_class(frame, "EL2N", 0.3)
    with pytest.raises(ValueError, match="label='CoreSet'"):
        tables.mean_class_densities(frame, "CoreSet")


def test_full_dataset_class_accuracy(frame):
    np.testing.assert_allclose(tables.full_dataset_class_accuracy(frame), [0.65, 0.8, 0.95])
    with pytest.raises(ValueError, match="full-dataset"):
        tables.full_dataset_class_accuracy(frame[frame["protocol"] != "none"])


def test_pearson_exact_values():
    assert tables.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert tables.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert tables.pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert np.isnan(tables.pearson([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError, match="same length"):
        tables.pearson([1, 2], [1, 2, 3])


def test_correlation_densities_prefers_the_paper_levels():
    assert tables.correlation_densities([0.2, 0.3, 0.5, 0.6]) == (0.3, 0.5)
    assert tables.correlation_densities([0.2, 0.4]) == (0.2, 0.4)  # none of the paper's: all present


def test_class_density_correlation_averages_per_density_values(frame):
    mean_r, per_density = tables.class_density_correlation(frame, "EL2N")
    accuracy = np.array([0.65, 0.8, 0.95])
    r01 = tables.pearson(accuracy, [0.01, 0.10, 0.19])
    assert per_density[0.1] == pytest.approx(r01)
    assert per_density[0.5] == pytest.approx(1.0)  # 0.3, 0.5, 0.7: linear in the accuracy
    assert mean_r == pytest.approx((r01 + 1.0) / 2)
    # a density where the class densities are constant has no correlation and is skipped
    even = frame.copy()
    even.loc[(even["protocol"] == "random") & (even["density"] == 0.5), "class_counts"] = pd.Series(
        [[50, 50, 50]] * 2, index=even.index[(even["protocol"] == "random") & (even["density"] == 0.5)])
    mean_r, per_density = tables.class_density_correlation(even, "Random")
    assert np.isnan(per_density[0.5])
    assert mean_r == pytest.approx(per_density[0.1])


# --------------------------------------------------------------------------- figures


def test_density_curves_draw_means_bands_and_the_full_dataset(frame):
    fig = plots.plot_density_curves(frame, ("test_accuracy", "test_worst_class"), tradeoff=True)
    axes = fig.axes
    assert len(axes) == 3
    worst = axes[1]
    lines = {line.get_label(): line for line in worst.get_lines()}
    np.testing.assert_allclose(lines["Random"].get_xdata(), [0.1, 0.5])
    np.testing.assert_allclose(lines["Random"].get_ydata(), [0.4, 0.5])
    np.testing.assert_allclose(lines["Full dataset"].get_ydata(), [0.65, 0.65])
    assert lines["EL2N"].get_color() == curves.METHOD_COLORS["el2n"]
    bands = [c for c in worst.collections if c.get_paths()]
    random_band = bands[0].get_paths()[0].vertices
    assert random_band[:, 1].min() == pytest.approx(0.3) and random_band[:, 1].max() == pytest.approx(0.5)
    # trade-off: the full dataset is a star at (worst, average) of the full runs
    star = [c for c in axes[2].collections if c.get_label() == "Full dataset"][0]
    np.testing.assert_allclose(star.get_offsets()[0], [0.65, 0.8])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["Random", "EL2N", "Full dataset"]
    plt.close(fig)


def test_density_curves_one_row_per_setup_or_column(frame):
    mixed = pd.concat([frame, frame.assign(dataset="cifar10")], ignore_index=True)
    fig = plots.plot_density_curves(mixed, tuple(curves.METRICS))
    assert len(fig.axes) == 8
    assert [s.get_suptitle() for s in fig.subfigs] == ["fashion-mnist, MLP", "cifar10, MLP"]
    assert fig.subfigs[1].axes[0].get_title() == "average test accuracy"
    assert len(fig.legends) == 1  # same curves in every row: one legend for the figure
    plt.close(fig)
    fig = plots.plot_density_curves(frame.assign(panel="EL2N as Strategy"), ("test_gap",), row="panel")
    assert fig.subfigs[0].get_suptitle() == "EL2N as Strategy"
    assert fig.axes[0].get_title() == "max - min class accuracy"
    plt.close(fig)
    # rows with different curves get one legend each
    split = pd.concat([frame.assign(panel="a"), frame[frame["protocol"] != "strategy"].assign(panel="b")])
    fig = plots.plot_density_curves(split, ("test_gap",), row="panel")
    assert not fig.legends
    assert [[t.get_text() for t in s.legends[0].get_texts()] for s in fig.subfigs] == [
        ["Random", "EL2N", "Full dataset"], ["Random", "Full dataset"]]
    plt.close(fig)
    with pytest.raises(ValueError, match="row='nope'"):
        plots.plot_density_curves(frame, row="nope")


def test_sorted_class_densities_and_min_spc_in_title(frame):
    fig = plots.plot_sorted_class_densities(frame, ["Random", "EL2N"])
    random_ax, el2n_ax = fig.axes
    assert el2n_ax.get_title() == "EL2N: min SPC at d=0.1 is 0"
    assert random_ax.get_title() == "Random: min SPC at d=0.1 is 9"
    sorted_lines = [line for line in el2n_ax.get_lines() if len(line.get_xdata()) == 3]
    np.testing.assert_allclose(sorted_lines[0].get_ydata(), [0.19, 0.10, 0.01])
    np.testing.assert_allclose(sorted_lines[1].get_ydata(), [0.7, 0.5, 0.3])
    plt.close(fig)


def test_class_accuracy_vs_density_reports_mean_correlation(frame):
    fig = plots.plot_class_accuracy_vs_density(frame, ["EL2N"])
    (ax,) = fig.axes
    mean_r, _ = tables.class_density_correlation(frame, "EL2N")
    assert ax.get_title() == f"EL2N: mean corr = {mean_r:+.2f}"
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    assert points.shape == (6, 2)  # 3 classes x 2 densities
    np.testing.assert_allclose(sorted(points[:, 1]), sorted([0.65, 0.8, 0.95] * 2))
    plt.close(fig)


def test_class_profile_has_both_panels(frame):
    fig = plots.plot_class_profile(frame, "EL2N")
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["EL2N", "EL2N"]
    assert "min SPC" in fig.axes[0].get_title() and "corr" in fig.axes[1].get_title()
    plt.close(fig)


# --------------------------------------------------------------------------- chapter helpers


def test_by_strategy_repeats_the_shared_rows_in_every_panel():
    rows = [make_row("none", None, 1.0, 0, [0.6, 0.8, 1.0], [100, 100, 100])]
    for protocol, method in [("random", None), ("random+drop", "el2n"), ("strategy", "el2n"),
                             ("random+strategyq", "el2n"), ("strategy+drop", "el2n"),
                             ("strategy", "forgetting"), ("strategy+drop", "forgetting")]:
        rows.append(make_row(protocol, method, 0.5, 0, [0.5, 0.7, 0.9], [50, 50, 50]))
    panels = tables.by_strategy(pd.DataFrame(rows))
    assert list(dict.fromkeys(panels["panel"])) == ["fashion-mnist, MLP; Strategy = EL2N",
                                                     "fashion-mnist, MLP; Strategy = Forgetting"]
    el2n = panels[panels["strategy"] == "el2n"]
    assert list(el2n["label"]) == ["Full dataset", "Random", "Random+DRoP", "EL2N", "Random+EL2NQ", "EL2N+DRoP"]
    forgetting = panels[panels["strategy"] == "forgetting"]
    assert list(forgetting["label"]) == ["Full dataset", "Random", "Random+DRoP", "Forgetting", "Forgetting+DRoP"]
    only = tables.by_strategy(pd.DataFrame(rows), ["forgetting"])
    assert set(only["strategy"]) == {"forgetting"}
    with pytest.raises(ValueError, match="grand"):
        tables.by_strategy(pd.DataFrame(rows), ["grand"])


MLP_WORDS = "an MLP with 2 hidden layers (512, 256 units, Linear-BatchNorm-ReLU) and one linear head"


def test_setting_descriptions_describe_the_runs(frame):
    frame = frame.assign(num_train=300, epochs=10, batch_size=256, lr=0.05, query_epochs=1, query_seeds=5,
                         augment=False, device="cpu")
    frame["drop_epochs"] = [[5, 8]] * len(frame)
    assert tables.setting_descriptions(frame) == [("fashion-mnist, MLP", (
        f"{MLP_WORDS}; 300 training samples; 10 epochs (LR x0.2 at epochs 5, 8), batch 256, "
        "LR 0.05; no data augmentation; trained on a CPU; 2 seeds (0, 1); densities 0.1, 0.5; EL2N query models "
        "trained 1 epoch and averaged over 5 query seeds"))]
    bare = tables.setting_descriptions(frame[frame["protocol"] != "strategy"].drop(
        columns=["epochs", "lr", "augment", "device"]))
    assert bare == [("fashion-mnist, MLP", f"{MLP_WORDS}; 300 training samples; batch 256; 2 seeds (0, 1); "
                                           "densities 0.1, 0.5")]


def two_settings(frame):
    """``frame`` as the MLP setting, plus a CNN setting with augmentation, 15 epochs and seeds 0
    and 1 that runs Random but not EL2N (its recalls 0.05 above the MLP's)."""
    mlp = frame.assign(setting="mlp-fashion-mnist", num_train=300, epochs=10, augment=False)
    cnn = frame[frame["protocol"] != "strategy"].assign(setting="cnn-fashion-mnist", model="cnn", num_train=300,
                                                         epochs=15, augment=True, max_shift=2)
    for column in ("test_accuracy", "test_worst_class"):
        cnn[column] = cnn[column] + 0.05
    return pd.concat([mlp, cnn], ignore_index=True)


def test_settings_come_from_the_setting_column_and_have_titles(frame):
    both = two_settings(frame)
    assert tables.setting_titles(both) == {"mlp-fashion-mnist": "fashion-mnist, MLP",
                                           "cnn-fashion-mnist": "fashion-mnist, CNN"}
    parts = tables.split_setups(both)
    assert [title for title, _ in parts] == ["fashion-mnist, MLP", "fashion-mnist, CNN"]
    assert [set(rows["setting"]) for _, rows in parts] == [{"mlp-fashion-mnist"}, {"cnn-fashion-mnist"}]
    # two settings of one model-dataset pair (e.g. with and without augmentation) are not merged
    twins = both.assign(model="mlp")
    assert tables.setting_titles(twins) == {"mlp-fashion-mnist": "fashion-mnist, MLP (mlp-fashion-mnist)",
                                            "cnn-fashion-mnist": "fashion-mnist, MLP (cnn-fashion-mnist)"}
    with pytest.raises(ValueError, match="2 settings"):
        tables.metric_by_density(twins)
    # without the column (rows not read through a chapter) a model-dataset pair is a setting
    assert tables.setting_names(frame.head(2)) == ["mlp-fashion-mnist"] * 2
    assert tables.score_methods(both) == ("el2n",)
    assert tables.score_methods(both[both["setting"] == "cnn-fashion-mnist"]) == ()


def test_two_settings_give_two_figure_rows_without_the_curves_a_setting_does_not_run(frame):
    both = two_settings(frame)
    fig = plots.plot_density_curves(both, ("test_accuracy", "test_worst_class"), labels=["Random", "EL2N"])
    assert [s.get_suptitle() for s in fig.subfigs] == ["fashion-mnist, MLP", "fashion-mnist, CNN"]
    mlp, cnn = fig.subfigs
    assert [ax.get_title() for ax in cnn.axes] == ["average test accuracy", "worst-class accuracy"]
    cnn_lines = {line.get_label(): line for line in cnn.axes[1].get_lines()}
    assert "EL2N" not in cnn_lines  # no EL2N in the CNN's row ...
    np.testing.assert_allclose(cnn_lines["Random"].get_ydata(), [0.45, 0.55])  # its own numbers
    assert cnn_lines["Random"].get_color() == curves.method_color("random")  # the book's colour
    # ... and no EL2N in its legend: one legend per row, each with the curves drawn there
    assert not fig.legends
    assert [[t.get_text() for t in s.legends[0].get_texts()] for s in fig.subfigs] == [
        ["Random", "EL2N", "Full dataset"], ["Random", "Full dataset"]]
    plt.close(fig)
    # per-curve grids: one panel per curve the setting runs, a setting without any has no row
    fig = plots.plot_sorted_class_densities(both, ["Random", "EL2N"])
    assert [s.get_suptitle() for s in fig.subfigs] == ["fashion-mnist, MLP", "fashion-mnist, CNN"]
    assert [[ax.get_title().split(":")[0] for ax in s.axes] for s in fig.subfigs] == [["Random", "EL2N"], ["Random"]]
    plt.close(fig)
    fig = plots.plot_class_accuracy_vs_density(both, ["EL2N"])
    assert [s.get_suptitle() for s in fig.subfigs] == ["fashion-mnist, MLP"]
    plt.close(fig)
    fig = plots.plot_class_profile(both, "EL2N")
    assert [s.get_suptitle() for s in fig.subfigs] == ["fashion-mnist, MLP"] and len(fig.axes) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="no setting"):
        plots.plot_class_profile(both, "GraNd")


def test_setting_descriptions_name_each_setting_and_its_augmentation(frame):
    both = two_settings(frame)
    descriptions = tables.setting_descriptions(both)
    assert [title for title, _ in descriptions] == ["fashion-mnist, MLP", "fashion-mnist, CNN"]
    assert "no data augmentation" in descriptions[0][1] and "15 epochs" in descriptions[1][1]
    assert "a small CNN of 4 conv-BN-ReLU blocks (16, 32, 64, 64 channels)" in descriptions[1][1]
    assert "horizontal flips" in descriptions[1][1] and "shifts of at most 2 px" in descriptions[1][1]
    # rows without the hflip column flipped; rows with hflip False say so, a mix is named
    unflipped = both.assign(hflip=both["setting"] == "mlp-fashion-mnist")
    assert "(shifts of at most 2 px, no flips)" in tables.setting_descriptions(unflipped)[1][1]
    mixed = both.assign(hflip=both["seed"] == 0)
    assert "shifts of at most 2 px and horizontal flips in some runs" in tables.setting_descriptions(mixed)[1][1]


def test_class_grids_wrap_after_max_columns(frame):
    fig = plots.plot_sorted_class_densities(frame, ["Random", "EL2N", "Random", "EL2N"], max_columns=3)
    assert len(fig.axes) == 4  # a 2 x 3 grid with the two unused axes removed
    positions = sorted({round(ax.get_position().y0, 3) for ax in fig.axes})
    assert len(positions) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="max_columns=0"):
        plots.plot_class_accuracy_vs_density(frame, ["EL2N"], max_columns=0)


def test_tradeoff_table_and_zoom_window(frame):
    table = tables.tradeoff_table(frame)
    random_05 = table[(table["label"] == "Random") & (table["density"] == 0.5)].iloc[0]
    assert random_05["accuracy"] == pytest.approx(0.7) and random_05["worst_class"] == pytest.approx(0.5)
    # points within 0.12 of the full dataset's 0.8 average accuracy: Random at 0.5 (0.7) and EL2N at 0.5 (2/3)
    window = tables.zoom_window(table, 0.8, 0.65, margin=0.14)
    pad_x, pad_y = 0.1 * (0.65 - 0.4), 0.1 * (0.8 - 2 / 3)
    assert window == pytest.approx((0.4 - pad_x, 0.65 + pad_x, 2 / 3 - pad_y, 0.8 + pad_y))
    assert tables.zoom_window(table, 0.8, 0.65, margin=0.05) is None  # no point that close
    assert tables.zoom_window(table, 0.8, 0.65, margin=1.0) is None  # every point: nothing to zoom
    fig = plots.plot_density_curves(frame, (), tradeoff=True, zoom=0.14)
    full, zoomed = fig.axes
    assert zoomed.get_xlim() == pytest.approx(window[:2]) and zoomed.get_ylim() == pytest.approx(window[2:])
    assert zoomed.get_title() == "zoom: within 14 pp of the full dataset"
    plt.close(fig)
    fig = plots.plot_density_curves(frame, ("test_accuracy",), tradeoff=True, zoom=0.05)
    assert len(fig.axes) == 2  # no point near the full dataset: no zoomed panel
    plt.close(fig)


# --------------------------------------------------------------------------- chapters 04-07 variants


@pytest.mark.parametrize("kwargs, label", [
    (dict(protocol="none", cdbw=True), "CDB-W (full dataset)"),
    (dict(protocol="none"), "Full dataset"),
    (dict(protocol="strategy", method="el2n", cdbw=True), "EL2N+CDB-W"),
    (dict(protocol="strategy", method="el2n", query_cdbw=True), "CDB-W+EL2N"),
    (dict(protocol="random+drop", method="el2n", quota_rule="counts"), "Random+DRoP (rule counts)"),
    (dict(protocol="strategy+drop", method="el2n", drop_over="groups"), "EL2N+DRoP (group quotas)"),
    (dict(protocol="random+drop", method="el2n"), "Random+DRoP"),
    (dict(protocol="strategy", method="el2n", quota_rule="counts"), "EL2N"),  # no quotas: no rule
    (dict(protocol="none", cdbw=True, cdbw_weights="authors"), "CDB-W (full dataset, authors' rule)"),
    (dict(protocol="strategy", method="el2n", cdbw=True, cdbw_weights="authors"), "EL2N+CDB-W (authors' rule)"),
    (dict(protocol="strategy", method="el2n", query_cdbw=True, cdbw_weights="authors"),
     "CDB-W+EL2N (authors' rule)"),
    (dict(protocol="strategy", method="el2n", cdbw=True, cdbw_weights="floored"), "EL2N+CDB-W"),
    (dict(protocol="strategy", method="el2n", cdbw_weights="authors"), "EL2N"),  # no CDB-W: no rule
])
def test_curve_label_names_the_variants(kwargs, label):
    assert curves.curve_label(**kwargs) == label


def test_variants_get_their_own_curves_and_the_cdbw_baseline_a_dotted_line(frame):
    extra = pd.DataFrame([
        {**make_row("none", None, 1.0, 0, [0.8, 0.8, 0.8], [100] * 3), "cdbw": True},
        {**make_row("none", None, 1.0, 1, [0.7, 0.9, 0.9], [100] * 3), "cdbw": True},
        {**make_row("random+drop", "el2n", 0.5, 0, [0.6, 0.7, 0.8], [60, 50, 40]), "quota_rule": "counts"},
        {**make_row("random+drop", "el2n", 0.5, 1, [0.6, 0.7, 0.8], [60, 50, 40]), "quota_rule": "paper"},
    ])
    both = curves.labelled(pd.concat([frame, extra], ignore_index=True))
    assert list(both["label"].iloc[-4:]) == ["CDB-W (full dataset)"] * 2 + ["Random+DRoP (rule counts)", "Random+DRoP"]
    assert list(both["color"].iloc[-4:-1]) == [curves.VARIANT_COLORS["CDB-W (full dataset)"]] * 2 + [
        curves.VARIANT_COLORS["Random+DRoP (rule counts)"]]
    # The plain full dataset stays the dashed baseline; CDB-W's full dataset is not mixed into it.
    assert tables.full_dataset_metric(both, "test_worst_class")["mean"] == pytest.approx(0.65)
    assert tables.full_dataset_metric(both, "test_worst_class", curves.CDBW_FULL_DATASET)["mean"] == pytest.approx(0.75)
    np.testing.assert_allclose(tables.full_dataset_class_accuracy(both), [0.65, 0.8, 0.95])
    fig = plots.plot_density_curves(both, ("test_worst_class",))
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    np.testing.assert_allclose(lines["CDB-W (full dataset)"].get_ydata(), [0.75, 0.75])
    assert lines["CDB-W (full dataset)"].get_linestyle() == ":"
    # dash-dotted black, unlike the dashed variants in dark colours
    assert lines["Full dataset"].get_linestyle() == "-." and lines["Full dataset"].get_color() == "black"
    assert all(line.get_linestyle() != "-." for label, line in lines.items() if label != "Full dataset")
    np.testing.assert_allclose(lines["Random+DRoP (rule counts)"].get_ydata(), [0.6])
    plt.close(fig)


def test_query_length_curves_one_line_per_density():
    rows = []
    for density in (0.4, 0.8):
        for query_epochs in (1, 2, 4):
            for seed in (0, 1):
                recalls = [0.5 + 0.1 * density + 0.01 * query_epochs + 0.02 * seed] * 3
                rows.append({**make_row("random+drop", "el2n", density, seed, recalls, [1, 1, 1]),
                             "query_epochs": query_epochs})
    rows.append({**make_row("none", None, 1.0, 0, [0.9] * 3, [100] * 3), "query_epochs": 1})
    frame = pd.DataFrame(rows)
    table = tables.metric_by_query_length(frame, "test_accuracy")
    assert list(table["query_epochs"]) == [1, 2, 4, 1, 2, 4]
    np.testing.assert_allclose(table["mean"].iloc[:3], [0.56, 0.57, 0.59])  # 0.54 + 0.01 q + 0.01
    np.testing.assert_allclose(table["max"] - table["min"], 0.02)
    fig = plots.plot_query_length_curves(frame, ("test_accuracy",), reference_query=2)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["Random+DRoP, d = 0.8"].get_xdata(), [1, 2, 4])
    np.testing.assert_allclose(lines["Random+DRoP, d = 0.8"].get_ydata(), [0.60, 0.61, 0.63])
    np.testing.assert_allclose(lines["Full dataset"].get_ydata(), [0.9, 0.9])
    np.testing.assert_allclose(lines["query length used elsewhere (2)"].get_xdata(), [2, 2])
    assert ax.get_xscale() == "log"
    plt.close(fig)
    with pytest.raises(ValueError, match="no pruned runs"):
        plots.plot_query_length_curves(frame[frame["protocol"] == "none"])


def test_result_figures_show_at_most_two_panels_side_by_side(frame):
    """Two panels fill the book's text column at a readable size; four metrics become 2 x 2."""
    for fig in (plots.plot_density_curves(frame, tuple(curves.METRICS), tradeoff=True),
                plots.plot_sorted_class_densities(frame, ["Random", "EL2N"]),
                plots.plot_class_profile(frame, "EL2N")):
        assert publish.panel_columns(fig) <= plots.MAX_COLUMNS
        plt.close(fig)
    fig = plots.plot_density_curves(frame, tuple(curves.METRICS))
    assert publish.panel_columns(fig) == 2 and len(fig.axes) == 4
    assert all("%" in ax.yaxis.get_major_formatter()(0.5, 0) for ax in fig.axes)
    assert {ax.get_xlabel() for ax in fig.axes} == {plots.DENSITY_AXIS}
    plt.close(fig)


def test_a_third_setting_is_a_third_row_without_code_changes(frame):
    three = pd.concat([two_settings(frame),
                       frame.assign(setting="vgg16-cifar10", dataset="cifar10", model="vgg16", device="cuda")],
                      ignore_index=True)
    fig = plots.plot_density_curves(three, ("test_worst_class",), labels=["Random", "EL2N"])
    assert [s.get_suptitle() for s in fig.subfigs] == ["fashion-mnist, MLP", "fashion-mnist, CNN", "cifar10, VGG16"]
    plt.close(fig)
    (title, text), = tables.setting_descriptions(three[three["setting"] == "vgg16-cifar10"])
    assert title == "cifar10, VGG16" and text.startswith("VGG-16 with BatchNorm and one linear head")
    assert "trained on a GPU" in text


# --------------------------------------------------------------------------- reader tools


def test_figure_data_holds_exactly_the_plotted_points(frame):
    fig = plots.plot_density_curves(frame, ("test_worst_class",), tradeoff=True)
    data = plots.figure_data(fig)
    assert tuple(data.columns) == plots.DATA_COLUMNS
    worst = data[data["panel"] == "worst-class accuracy"]
    random = worst[worst["curve"] == "Random"]
    np.testing.assert_allclose(random["x"].astype(float), [0.1, 0.5])
    np.testing.assert_allclose(random["y"], [0.4, 0.5])
    np.testing.assert_allclose(random["y min"].astype(float), [0.3, 0.5])
    assert list(random["n"]) == [2, 2] and set(random["x name"]) == {"dataset density d"}  # no TeX in a CSV
    full = worst[worst["curve"] == "Full dataset"].iloc[0]
    assert full["y"] == pytest.approx(0.65) and full["y max"] == pytest.approx(0.7)
    # every drawn line's points are in the table
    for line in fig.axes[0].get_lines():
        if line.get_label() in ("Random", "EL2N"):
            rows = worst[worst["curve"] == line.get_label()]
            np.testing.assert_allclose(rows["y"], line.get_ydata())
    tradeoff = data[data["panel"] == "average vs worst-class accuracy"]
    assert len(tradeoff) == 5  # two densities of two curves and the full dataset's star
    plt.close(fig)
    fig, ax = plt.subplots()
    assert plots.figure_data(fig).empty  # drawn without dropkit.plots: nothing recorded
    plt.close(fig)


def test_density_axis_stops_at_the_largest_density_a_setting_runs(frame):
    assert plots.density_limits([0.1, 0.3, 0.7]) == (0.0, pytest.approx(0.75))
    assert plots.density_limits([0.1, 0.9, 1.0]) == (0.0, 1.0)
    fig = plots.plot_density_curves(frame, ("test_accuracy",))
    assert fig.axes[0].get_xlim() == pytest.approx((0.0, 0.55))  # the frame's densities: 0.1 and 0.5
    plt.close(fig)


def test_zoomed_region_is_marked_without_connector_lines(frame):
    from matplotlib.patches import ConnectionPatch

    fig = plots.plot_density_curves(frame, (), tradeoff=True, zoom=0.14)
    full = fig.axes[0]
    assert not [a for a in fig.findobj(ConnectionPatch)]
    assert not any(getattr(c, "connectors", None) for c in full.get_children())
    plt.close(fig)


def test_seed_colours_are_greys_outside_the_method_palette():
    from matplotlib.colors import to_rgb

    styles = plots.seed_colors([0, 1, 2, 3, 4])
    palette = {to_rgb(c) for c in [*curves.METHOD_COLORS.values(), *curves.PROTOCOL_COLORS.values(),
                                   *curves.VARIANT_COLORS.values()]}
    colours = [to_rgb(style["color"]) for style in styles.values()]
    assert len(set(colours)) == 5 and not set(colours) & palette
    assert all(r == g == b for r, g, b in colours)
    assert len({style["marker"] for style in styles.values()}) == 5
    history = pd.DataFrame({"seed": [0, 0, 1, 1], "epoch": [2, 3, 2, 3], "val_worst_recall": [0.1, 0.2, 0.3, 0.4],
                            "max_weight": [2.0, 1.5, 1.2, 1.1]})
    fig = plots.plot_cdbw_weight_history(history)
    lines = fig.axes[0].get_lines()
    two = [to_rgb(style["color"]) for style in plots.seed_colors([0, 1]).values()]
    assert [to_rgb(line.get_color()) for line in lines] == two and two[0] != two[1]
    np.testing.assert_allclose(plots.figure_data(fig).query("curve == 'seed 1' and panel == 'largest CDB-W weight'")["y"],
                               [1.2, 1.1])
    assert min(t.get_fontsize() for t in fig.legends[0].get_texts()) >= 10  # no 8-pt legend
    plt.close(fig)
    # more seeds than LABELLED_SEEDS: thin grey lines, one legend entry, and their median per epoch
    many = pd.concat([history.assign(seed=history["seed"] + 2 * i) for i in range(plots.LABELLED_SEEDS)],
                     ignore_index=True)
    fig = plots.plot_cdbw_weight_history(many)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        f"each of {2 * plots.LABELLED_SEEDS} seeds", "median over seeds"]
    median = plots.figure_data(fig).query("curve == 'median over seeds' and panel == 'largest CDB-W weight'")
    np.testing.assert_allclose(median["y"], [1.6, 1.3])  # medians of (2.0, 1.2) and (1.5, 1.1)
    assert list(median["n"]) == [2 * plots.LABELLED_SEEDS] * 2
    assert len(plots.figure_data(fig)["curve"].unique()) == 2 * plots.LABELLED_SEEDS + 1  # every seed recorded
    plt.close(fig)


def test_min_font_px_and_the_csv_and_command_under_a_figure(tmp_path, frame):
    import io

    from PIL import Image

    fig, ax = plt.subplots()
    ax.set_title("big", fontsize=14)
    ax.set_xlabel("small", fontsize=7.2)
    assert publish.min_font_px(fig) == pytest.approx(7.2 * publish.CSS_DPI / 72)
    assert float(Image.open(io.BytesIO(publish.figure_png(fig))).text[publish.MIN_FONT_KEY]) == pytest.approx(10.0)
    plt.close(fig)
    fig = plots.plot_density_curves(frame, ("test_accuracy",))
    path = publish.write_figure_data("paper-figure-1", plots.figure_data(fig), tmp_path)
    plt.close(fig)
    written = pd.read_csv(path)
    assert path == tmp_path / "paper-figure-1.csv" and tuple(written.columns) == plots.DATA_COLUMNS and len(written) == 5
    with pytest.raises(ValueError, match="no plotted numbers"):
        publish.write_figure_data("empty", pd.DataFrame(), tmp_path)
    line = publish.figure_source_markdown("paper-figure-1", "02_bias_benchmark", "default")
    assert "{download}`Numbers of this figure (CSV) <data/paper-figure-1.csv>`" in line
    assert "`.venv/bin/python -m dropkit.book --profile default --chapter 02_bias_benchmark`" in line


def test_cdbw_seed_table_one_row_per_seed_from_its_history_and_final_run():
    history = pd.DataFrame({"seed": [1, 1, 1, 0, 0, 0], "epoch": [3, 1, 2, 1, 2, 3],
                            "val_worst_recall": [0.01, 0.2, 0.04, 0.5, 0.6, 0.7],
                            "max_weight": [9.0, 2.0, 5.0, 1.5, 1.2, 1.1], "worst_class": [2, 0, 1, 1, 1, 2]})
    final = pd.DataFrame({"seed": [0, 1], "test_recalls": [[0.9, 0.3, 0.8], [0.5, 0.9, 0.0]]})
    table = tables.cdbw_seed_table(history, final, ["a", "b", "c"])
    assert list(table.index) == [0, 1]
    assert publish.markdown_table(table, "t").splitlines()[1].split("|")[1].strip() == "seed"  # shown, though 0..n-1
    assert table.loc[1, "lowest validation recall, epoch by epoch"] == "a, b, c"   # in epoch order
    assert table.loc[0, "lowest validation recall, epoch by epoch"] == "b, b, c"
    assert table["epochs < 5 %"].tolist() == [0, 2] and table["largest weight"].tolist() == [1.5, 9.0]
    assert table["worst test class"].tolist() == ["b", "c"]
    assert table["its test recall %"].tolist() == pytest.approx([30.0, 0.0])
    with pytest.raises(ValueError, match="no final run of seed 1"):
        tables.cdbw_seed_table(history, final[final["seed"] == 0], ["a", "b", "c"])
