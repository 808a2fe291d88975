"""Paired statistics and verdicts (tf_lottery.reports.stats), learning curves and time to accuracy
(tf_lottery.results.curves), against hand-computed cases."""

import math

import pytest

from tf_lottery.results import curves
from tf_lottery.reports import stats


@pytest.mark.parametrize("degrees, expected", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (30, 2.0423)])
def test_t_quantiles_are_the_textbook_ones(degrees, expected):
    assert stats.t_quantile(0.95, degrees) == pytest.approx(expected, abs=1e-4)


def test_three_seeds_undetermined_by_hand():
    summary = stats.paired([0.4, 0.9, 0.2], seeds=[0, 1, 2])
    std = math.sqrt(((0.4 - 0.5) ** 2 + (0.9 - 0.5) ** 2 + (0.2 - 0.5) ** 2) / 2)  # 0.360555
    half = 4.302653 * std / math.sqrt(3)  # 0.895665
    assert summary.mean == pytest.approx(0.5) and summary.std == pytest.approx(std)
    assert (summary.low, summary.high) == (pytest.approx(0.5 - half, abs=1e-5), pytest.approx(0.5 + half, abs=1e-5))
    assert summary.verdict == "undetermined" and summary.n == 3 and summary.seeds == (0, 1, 2)
    assert stats.interval_text(summary) == "[-0.40, +1.40]"
    assert stats.per_seed_text(summary) == "+0.40 / +0.90 / +0.20"
    # At ξ = 1 pp the whole interval lies above -1: a winning ticket at ξ, not a win.
    assert stats.paired([0.4, 0.9, 0.2], xi=1.0).verdict == "winning ticket at ξ"


def test_the_four_verdicts_need_the_whole_interval():
    # mean 1.0, std 0.2: half width 4.3027 * 0.2 / sqrt(3) = 0.4968
    wins = stats.paired([1.0, 1.2, 0.8], xi=1.0)
    assert wins.low == pytest.approx(0.50317, abs=1e-5) and wins.verdict == "wins"
    assert stats.paired([-2.0, -2.2, -1.8], xi=1.0).verdict == "loses"  # [-2.50, -1.50] below -1
    assert stats.paired([-1.0, -1.2, -0.8], xi=1.0).verdict == "undetermined"  # crosses -1
    assert stats.paired([-1.0, -1.2, -0.8], xi=0.0).verdict == "loses"
    assert stats.paired([0.1, 2.0, 0.2]).verdict == "undetermined"  # every seed positive is not enough
    assert stats.verdict(1e-9, 0.8) == "wins" and stats.verdict(0.0, 0.8) == "undetermined"  # ξ = 0: at 0 is not above
    assert stats.verdict(0.0, 0.8, xi=0.5) == "winning ticket at ξ"
    assert stats.verdict(-0.6, -0.5, xi=0.5) == "undetermined" and stats.verdict(-0.6, -0.51, xi=0.5) == "loses"
    with pytest.raises(ValueError, match="xi must be"):
        stats.paired([0.1, 0.2], xi=-1)
    with pytest.raises(ValueError, match="kind must be"):
        stats.paired([0.1, 0.2], kind="dense")


def test_contrasts_of_two_tickets():
    assert stats.contrast(0.1, 0.5) == "better" and stats.contrast(-0.5, -0.1) == "worse"
    assert stats.contrast(-0.4, 0.4, xi=0.5) == "equivalent at ±ξ" and stats.contrast(-0.4, 0.6, xi=0.5) == "undetermined"
    assert stats.paired([0.1, -0.1, 0.0, 0.05], kind="contrast", xi=1.0).verdict == "equivalent at ±ξ"


def test_no_verdict_word_of_the_old_scale_is_left():
    assert "within noise" not in stats.VERDICTS + stats.CONTRASTS


def test_one_seed_and_unavailable_values():
    one = stats.paired([0.5])
    assert (one.mean, one.std, one.low, one.high, one.verdict, one.detectable) == (0.5, None, None, None, "one seed",
                                                                                    None)
    assert stats.interval_text(one) == "—" and stats.detectable_text(one) == "—"
    kept = stats.paired([0.4, None, 0.2], seeds=[0, 1, 2])
    assert kept.differences == (0.4, 0.2) and kept.seeds == (0, 2) and kept.mean == pytest.approx(0.3)
    none = stats.paired([None])
    assert none.mean is None and none.verdict is None
    with pytest.raises(ValueError, match="2 seeds for 3 differences"):
        stats.paired([0.1, 0.2, 0.3], seeds=[0, 1])
    assert stats.paired([0.1, 0.3]).to_dict()["n"] == 2
    assert stats.paired([0.3, 0.3, 0.3]).detectable is None  # no spread: no power to speak of


def _statsmodels_detectable(std, n, power=0.8):
    """The same quantity from statsmodels' TTestPower (an implementation independent of ours)."""
    from statsmodels.stats.power import TTestPower

    return std * TTestPower().solve_power(effect_size=None, nobs=n, alpha=0.05, power=power, alternative="two-sided")


@pytest.mark.parametrize("n", range(3, 11))
def test_power_and_the_minimum_detectable_difference_match_statsmodels_and_scipys_nct(n):
    from scipy import stats as scipy_stats
    from statsmodels.stats.power import TTestPower

    detectable = stats.minimum_detectable(0.41, n)
    assert detectable == pytest.approx(_statsmodels_detectable(0.41, n), rel=1e-6)
    assert stats.power(detectable, 0.41, n) == pytest.approx(0.8, abs=1e-8)
    for effect in (0.1, 0.3, 0.5):  # larger effects reach scipy's NaN of the far tail in statsmodels too
        expected = TTestPower().power(effect_size=effect / 0.41, nobs=n, alpha=0.05, alternative="two-sided")
        assert stats.power(effect, 0.41, n) == pytest.approx(expected, abs=1e-9)
        # by hand from the noncentral t: the mass beyond the critical values
        critical = scipy_stats.t.ppf(0.975, n - 1)
        shift = effect * math.sqrt(n) / 0.41
        by_hand = scipy_stats.nct.sf(critical, n - 1, shift) + scipy_stats.nct.cdf(-critical, n - 1, shift)
        assert stats.power(effect, 0.41, n) == pytest.approx(by_hand, abs=1e-12)


@pytest.mark.parametrize("n, golden", [(3, 1.3383), (4, 0.8725), (5, 0.6896), (6, 0.5882), (7, 0.5218),
                                       (8, 0.4740), (9, 0.4375), (10, 0.4084)])
def test_the_minimum_detectable_difference_at_the_old_twins_spread(n, golden):
    # Golden values (std 0.41 pp, the CNN twin's paired spread): statsmodels 0.15 TTestPower, rounded.
    assert stats.minimum_detectable(0.41, n) == pytest.approx(golden, abs=5e-5)


def test_the_planner_finds_the_fewest_seeds():
    assert stats.seeds_needed(0.41, 0.5) == 8  # 7 seeds detect 0.522 pp, 8 seeds 0.474
    assert stats.minimum_detectable(0.41, 7) > 0.5 >= stats.minimum_detectable(0.41, 8)
    assert stats.seeds_needed(0.41, 2.0) == 3 and stats.seeds_needed(0.41, 5.0) == 2
    for std, target in [(0.2, 0.3), (1.0, 0.5), (0.05, 0.1)]:
        n = stats.seeds_needed(std, target)
        assert _statsmodels_detectable(std, n) <= target < _statsmodels_detectable(std, n - 1)
    with pytest.raises(ValueError, match="target must be"):
        stats.seeds_needed(0.4, 0)
    with pytest.raises(ValueError, match="more than 1000 seeds"):
        stats.seeds_needed(10.0, 0.01)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        stats.power(0.5, 0.4, 1)


def test_pooled_spread_by_hand():
    # (1 * 0.08 + 2 * 0.04) / 3 = 0.05333
    assert stats.pooled_std([[0.1, 0.5], [1.0, 1.2, 1.4], [7.0]]) == pytest.approx(math.sqrt(0.16 / 3))
    assert stats.pooled_std([[1.0], []]) is None


def test_holm_by_hand_and_against_statsmodels():
    from statsmodels.stats.multitest import multipletests

    # sorted 0.01, 0.03, 0.04: x3, x2, x1 -> 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    assert stats.holm([0.5, 0.6]) == [1.0, 1.0] and stats.holm([]) == []
    values = [0.001, 0.2, 0.012, 0.04, 0.0049, 0.9, 0.013]
    assert stats.holm(values) == pytest.approx(list(multipletests(values, method="holm")[1]), abs=1e-12)
    with pytest.raises(ValueError, match="p-values must be in"):
        stats.holm([0.1, 1.5])


def test_one_sided_p_values_by_hand():
    from scipy import stats as scipy_stats

    values = [0.4, 0.9, 0.2]
    t = (0.5 + 1.0) / (stats.paired(values).std / math.sqrt(3))  # against -1: 7.2058
    assert stats.one_sided_p(values, -1.0, "greater") == pytest.approx(scipy_stats.t.sf(t, 2), abs=1e-12)
    assert stats.one_sided_p(values, -1.0, "less") == pytest.approx(scipy_stats.t.cdf(t, 2), abs=1e-12)
    assert stats.one_sided_p([0.3, 0.3], 0.0, "greater") == 0.0 and stats.one_sided_p([0.3, 0.3], 0.0, "less") == 1.0


def test_a_family_of_one_reads_as_its_interval_and_holm_only_widens():
    # one comparison against dense: three one-sided tests, so Holm multiplies the smallest by 3
    values = [0.4, 0.9, 0.2]
    alone = stats.family([("grasp", "ticket", values, None)], xi=1.0)[0]
    assert set(alone.tests) == {"above 0", "above -ξ", "below -ξ"}
    p_above_xi = stats.one_sided_p(values, -1.0, "greater")  # 0.0094: 3 x 0.0094 = 0.028 > 0.025
    assert alone.tests["above -ξ"] == (pytest.approx(p_above_xi), pytest.approx(3 * p_above_xi))
    assert alone.summary.verdict == "winning ticket at ξ" and alone.verdict == "undetermined"
    tight = stats.family([("grasp", "ticket", [0.5, 0.6, 0.55, 0.45], None)], xi=1.0)[0]
    assert tight.verdict == "wins" and tight.summary.verdict == "wins"
    # a contrast: four tests; equivalence needs both of its one-sided tests
    pair = stats.family([("grasp - snip", "contrast", [0.1, -0.05, 0.02, 0.0, 0.03], None)], xi=1.0)[0]
    assert set(pair.tests) == {"above 0", "below 0", "above -ξ", "below +ξ"} and pair.verdict == "equivalent at ±ξ"
    # a one-seed comparison is left out of the family and of its correction
    assert [c.name for c in stats.family([("a", "ticket", [0.1], None), ("b", "ticket", values, None)], 1.0)] == ["b"]
    # Holm over the family: the adjusted p-values are statsmodels' over every test of every comparison
    from statsmodels.stats.multitest import multipletests

    found = stats.family([("a", "ticket", values, None), ("b", "contrast", [0.2, 0.1, 0.4], None)], xi=1.0)
    raw = [p for c in found for p, _ in c.tests.values()]
    adjusted = [a for c in found for _, a in c.tests.values()]
    assert adjusted == pytest.approx(list(multipletests(raw, method="holm")[1]), abs=1e-12)


def test_the_verdict_text_names_its_margin():
    assert stats.verdict_text("winning ticket at ξ", 1.0) == "winning ticket at ξ = 1 pp"
    assert stats.verdict_text("equivalent at ±ξ", 0.5, "%") == "equivalent at ±ξ = 0.5 %"
    assert stats.verdict_text("loses", 1.0) == "loses" and stats.verdict_text(None, 1.0) == "—"


def test_the_modules_examples_run():
    import doctest

    assert doctest.testmod(stats).failed == 0


def test_learning_curve_adds_the_setup_before_the_first_epoch():
    curve = curves.learning_curve({"val_accuracy": [0.5, 0.7, 0.8]}, [10.0, 9.0, 9.0], 31.0)
    assert curve == [[13.0, 0.5], [22.0, 0.7], [31.0, 0.8]]
    assert curves.final_accuracy(curve) == 0.8
    assert curves.learning_curve({"val_accuracy": [0.5]}, [10.0, 9.0], 19.0) is None  # disagree on epochs
    assert curves.learning_curve({"accuracy": [0.5]}, [10.0], 10.0) is None  # no validation split


def test_seconds_to_reach_is_the_first_epoch_at_or_above_the_target():
    curve = [(10.0, 0.70), (19.0, 0.81), (28.0, 0.80), (37.0, 0.85)]
    assert curves.seconds_to_reach(curve, 0.81) == 19.0
    assert curves.seconds_to_reach(curve, 0.80) == 19.0
    assert curves.seconds_to_reach(curve, 0.86) is None
    assert curves.seconds_to_reach(None, 0.5) is None and curves.seconds_to_reach(curve, None) is None


def test_read_curve_from_a_run_folder(tmp_path):
    from tf_lottery.results.records import Timing

    (tmp_path / "history_ticket.csv").write_text("epoch,accuracy,val_accuracy\n0,0.6,0.55\n1,0.8,0.75\n")
    timing = Timing(train_seconds=25.0, epoch_seconds=[12.0, 10.0], epochs_timed=2, images_per_second=100.0,
                    images_per_second_note="")
    assert curves.read_curve(str(tmp_path), "ticket", timing) == [[15.0, 0.55], [25.0, 0.75]]
    assert curves.read_curve(str(tmp_path), "dense", timing) is None
    assert curves.read_curve(None, "ticket", timing) is None


def test_recipe_check_measures_flattening_and_collapse():
    assert curves.last_epoch_gain([0.80, 0.90, 0.905]) == pytest.approx(0.5)
    assert curves.last_epoch_gain([0.9]) is None and curves.last_epoch_gain(None) is None
    curve = [[1, 0.20], [2, 0.80], [3, 0.50], [4, 0.85]]
    assert curves.worst_drop(curve, after_epochs=1) == pytest.approx(30.0)
    assert curves.worst_drop(curve, after_epochs=3) == 0.0  # the fall at epoch 3 is inside a 3-epoch warm-up
    assert curves.worst_drop([[1, 0.5], [2, 0.6]]) == 0.0 and curves.worst_drop(None) is None
    # Batch-norm statistics that lag the weights: validation far below training (measured at BN momentum 0.99).
    lagging = [[68, 0.09], [129, 0.419], [184, 0.513], [236, 0.777]]
    assert curves.worst_gap(lagging, [0.563, 0.7848, 0.8485, 0.8675], after_epochs=1) == pytest.approx(36.58)
    assert curves.worst_drop(lagging, after_epochs=1) == 0.0  # rising all along: the drop alone misses it
    assert curves.worst_gap(lagging, [0.5, 0.6], after_epochs=1) is None  # epochs disagree


def test_a_dip_the_training_recovered_from_is_not_called_a_collapse():
    from types import SimpleNamespace

    from tf_lottery.reports.recipe_check import _recipe_flags

    train = [0.70, 0.80, 0.88, 0.90, 0.93, 0.935]
    dipped = SimpleNamespace(dense_train_accuracy=train,  # epoch 3 falls 16 pp below training, then recovers
                             dense_curve=[[1, 0.68], [2, 0.78], [3, 0.72], [4, 0.89], [5, 0.925], [6, 0.93]])
    assert _recipe_flags(dipped, 1)[2] == "validation dip, recovered"
    lasting = SimpleNamespace(dense_train_accuracy=train,  # the last epoch is 17 pp below the best: collapsed
                              dense_curve=[[1, 0.68], [2, 0.78], [3, 0.85], [4, 0.89], [5, 0.80], [6, 0.72]])
    assert _recipe_flags(lasting, 1)[2] == "validation collapse"
    rising = [0.70, 0.80, 0.88, 0.90, 0.93, 0.95]
    smooth = SimpleNamespace(dense_train_accuracy=rising, dense_curve=[[i + 1, a - 0.01] for i, a in enumerate(rising)])
    assert _recipe_flags(smooth, 1)[2] == "still rising"  # the last epoch adds 2 pp of training accuracy


def test_the_papers_numbers_are_looked_up_only_where_they_exist():
    from tf_lottery.reports import paper

    assert paper.table2(32, "snip", 5) == -1.00 and paper.table2(20, "snip", 5) is None
    assert paper.table2(32, "synflow", 1) is None and paper.table2(32, "grasp", 6) is None
    # Table 1 at the same fraction of the training: θ_1, θ_2, θ_3 of 8 epochs are the paper's θ_25, θ_50, θ_75.
    assert [paper.table1(32, "hrank", "weights", i, 8) for i in range(4)] == [-0.01, +0.21, +0.10, +0.12]
    assert paper.table1(32, "hrank", "weights", 1, 6) is None  # 33 % of the training: not one of the paper's
    assert paper.table1(32, "hrank", "lr", 0, 8) is None and paper.table1(56, "kl", "weights", 0, 8) is None
    assert paper.table3(32, "filters", "snip", 1) == -0.79 and paper.table3(32, "filters", "snip", 2) is None
    assert paper.table4(56, "grasp", 12) == (45.00, 45.82, 51.11, 2.03) and paper.table4(56, "snip", 12) is None


def _record(epochs, images_per_epoch=1000):
    from tf_lottery.results.records import Energy, ModelRecord, Timing, TrainingRecord
    from tf_lottery.training.resume import timing_of

    timing = Timing(**timing_of(epochs, images_per_epoch, 1))
    energy = Energy.from_dict({"status": "unavailable", "reason": "test"})
    return ModelRecord("m", 9, TrainingRecord(timing, 10, len(epochs), energy), {})


def test_a_resumed_training_is_compared_at_its_steady_pace():
    from tf_lottery.results.records import Comparison

    def epoch(seconds, first, session):
        return {"epoch": 0, "seconds": seconds, "setup_seconds": 3.0 if first else 0.0, "session": session, "logs": {}}

    dense = _record([epoch(14.0, True, 0), epoch(10.0, False, 0), epoch(10.0, False, 0), epoch(10.0, False, 0)])
    unbroken = _record([epoch(9.0, True, 0), epoch(5.0, False, 0), epoch(5.0, False, 0), epoch(5.0, False, 0)])
    # Killed in its third epoch: two sessions, each first epoch traced again.
    resumed = _record([epoch(9.0, True, 0), epoch(5.0, False, 0), epoch(9.0, True, 1), epoch(5.0, False, 1)])
    assert Comparison.between(dense, unbroken).training_speedup_x == pytest.approx((44.0 + 3) / (24.0 + 3))
    steady = Comparison.between(dense, resumed)
    assert steady.training_speedup_x == pytest.approx(2.0)  # 10 s against 5 s an epoch, tracing left out
    assert steady.images_per_second_ratio_x == pytest.approx(2.0)
    # Every epoch of the resumed run was the first of its session: no steady pace, so no figure.
    traced = _record([epoch(9.0, True, 0), epoch(9.0, True, 1)])
    unmeasured = Comparison.between(dense, traced)
    assert unmeasured.training_speedup_x is None and unmeasured.images_per_second_ratio_x is None
    assert resumed.training.timing.to_dict()["steady_epoch_seconds"] == [5.0, 5.0]


@pytest.mark.parametrize("dense_ppl, ticket_ppl, wins", [(12.0, 11.5, True), (12.0, 12.0, True), (12.0, 12.5, False)])
def test_a_language_models_ticket_wins_by_perplexity_not_token_accuracy(dense_ppl, ticket_ppl, wins):
    import dataclasses

    from tf_lottery.results.records import Comparison

    def epoch(seconds):
        return {"epoch": 0, "seconds": seconds, "setup_seconds": 0.0, "session": 0, "logs": {}}

    # The ticket's token accuracy is higher in every case: only the perplexity decides.
    dense = dataclasses.replace(_record([epoch(10.0)]), evals={"clean": {"accuracy": 0.40, "perplexity": dense_ppl}})
    ticket = dataclasses.replace(_record([epoch(8.0)]), evals={"clean": {"accuracy": 0.45, "perplexity": ticket_ppl}})
    compared = Comparison.between(dense, ticket)
    assert compared.winning_ticket is wins and compared.accuracy_pp == pytest.approx(5.0)
    images = dataclasses.replace(_record([epoch(8.0)]), evals={"clean": {"accuracy": 0.39}})
    assert Comparison.between(dataclasses.replace(dense, evals={"clean": {"accuracy": 0.40}}), images
                              ).winning_ticket is False  # without perplexities: accuracy, as for images


def test_plateau_over_the_last_fifth_of_the_epochs():
    # 16 epochs: the last 20 % are epochs 13 to 16 (0.8 x 16 = 12.8)
    curve = [[i, 0.90] for i in range(12)] + [[12, 0.9366], [13, 0.9356], [14, 0.9342], [15, 0.9334]]
    found = curves.plateau(curve)
    assert found.epochs == (13, 14, 15, 16) and found.state == "falling"
    assert (found.range_pp, found.change_pp) == (pytest.approx(0.32), pytest.approx(-0.32))
    assert curves.plateau(curve[:12] + [[12, 0.935], [13, 0.936], [14, 0.934], [15, 0.9352]]).state == "plateaued"
    assert curves.plateau(curve[:12] + [[12, 0.930], [13, 0.932], [14, 0.934], [15, 0.9352]]).state == "still rising"
    assert curves.plateau(curve[:12] + [[12, 0.930], [13, 0.935], [14, 0.929], [15, 0.9301]]).state == "moving"
    assert curves.plateau([[1, 0.5], [2, 0.6]]).epochs == (1, 2)  # at least two epochs are compared
    assert curves.plateau([[1, 0.5]]) is None and curves.plateau(None) is None
