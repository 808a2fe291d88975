"""The language-model recipe: its batch order, its schedule, and that it learns what the labels say."""

import numpy as np
import pytest

from tf_lottery.training.language import batch_order, compile_next_token, fit_next_token, next_token_schedule


def test_the_batch_order_is_seeded_rounds_of_permutations():
    order = batch_order(5, steps=6, batch_size=2, seed=4)
    assert order.shape == (12,)
    assert sorted(order[:5]) == list(range(5)) and sorted(order[5:10]) == list(range(5))
    assert np.array_equal(order, batch_order(5, steps=6, batch_size=2, seed=4))
    assert not np.array_equal(order, batch_order(5, steps=6, batch_size=2, seed=5))
    with pytest.raises(ValueError, match="no training examples"):
        batch_order(0, steps=1, batch_size=1, seed=0)


def test_the_schedule_warms_up_then_decays_to_zero():
    import keras

    schedule = next_token_schedule(100, learning_rate=0.5)
    rate = [float(schedule(step)) for step in (0, 5, 100)]
    assert rate[0] == 0.0 and rate[1] == pytest.approx(0.5) and rate[2] == pytest.approx(0.0, abs=1e-7)
    model = compile_next_token(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), steps=100)
    assert isinstance(model.optimizer, keras.optimizers.AdamW) and model.optimizer.weight_decay == pytest.approx(0.01)
    with pytest.raises(ValueError, match="steps must be >= 1 and learning_rate > 0; got steps=0"):
        next_token_schedule(0)


def test_a_decoder_learns_the_labels_and_ignores_the_padded_ones():
    pytest.importorskip("keras_hub")
    from tf_lottery.evals.language import perplexity
    from tf_lottery.models.decoder import byte_decoder

    ids = np.tile(np.arange(2, 10), (8, 1))  # one sentence, eight times
    mask = np.ones_like(ids)
    mask[:, -2:] = 0
    inputs = {"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]}
    labels = np.where(mask[:, 1:], ids[:, 1:], -1)
    lm = byte_decoder(layers=1, hidden=16, heads=2, length=7, seed=0)
    before = perplexity(lm, ids, mask)
    fit_next_token(lm, inputs, labels, steps=40, batch_size=4, seed=0, learning_rate=1e-2)
    assert before > 100 and perplexity(lm, ids, mask) < 3  # near-uniform over 258 ids, then memorized
    with pytest.raises(ValueError, match="inputs and labels differ in length"):
        fit_next_token(lm, inputs, labels[:3], steps=1, batch_size=2)


def _tiny_lm(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    ids = keras.Input((6,), dtype="int32", name="token_ids")
    mask = keras.Input((6,), dtype="int32", name="padding_mask")
    hidden = keras.layers.Embedding(12, 8)(ids)
    return keras.Model({"token_ids": ids, "padding_mask": mask}, keras.layers.Dense(12)(hidden))


def _sequences():
    ids = np.random.default_rng(0).integers(0, 12, size=(10, 7))
    mask = np.ones_like(ids)
    return {"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]}, ids[:, 1:]


def test_a_checkpointed_training_in_chunks_ends_where_one_fit_ends(tmp_path):
    inputs, labels = _sequences()
    whole, chunked = _tiny_lm(), _tiny_lm()
    plain = fit_next_token(whole, inputs, labels, steps=7, batch_size=3, seed=1, learning_rate=1e-2)
    timed = fit_next_token(chunked, inputs, labels, steps=7, batch_size=3, seed=1, learning_rate=1e-2,
                           checkpoint_dir=str(tmp_path / "state"), checkpoint_steps=3)
    for a, b in zip(whole.get_weights(), chunked.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert plain.sessions == timed.sessions == 1 and timed.seconds > 0 and timed.cpu_seconds > 0
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["progress.json", "state-7.weights.h5"]
    again = _tiny_lm(seed=5)  # a finished state: nothing left to train, the trained weights load
    rerun = fit_next_token(again, inputs, labels, steps=7, batch_size=3, seed=1, learning_rate=1e-2,
                           checkpoint_dir=str(tmp_path / "state"), checkpoint_steps=3)
    assert rerun.sessions == 2 and rerun.seconds == pytest.approx(timed.seconds)
    for a, b in zip(chunked.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_next_token_training_killed_after_a_chunk_resumes_on_the_same_batches(tmp_path):
    import subprocess
    import sys
    import textwrap

    state = tmp_path / "state"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
        from test_language import _sequences, _tiny_lm
        from tf_lottery.training.language import fit_next_token
        fit_next_token(_tiny_lm(), *_sequences(), steps=7, batch_size=3, seed=1, learning_rate=1e-2,
                       checkpoint_dir={str(state)!r}, checkpoint_steps=2)
    """)
    killed = subprocess.run([sys.executable, "-c", script], env=dict(__import__("os").environ,
                            TF_LOTTERY_CRASH_AT="chunk:2"), capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert __import__("json").loads((state / "progress.json").read_text())["steps_done"] == 4
    resumed, whole = _tiny_lm(), _tiny_lm()
    timing = fit_next_token(resumed, *_sequences(), steps=7, batch_size=3, seed=1, learning_rate=1e-2,
                            checkpoint_dir=str(state), checkpoint_steps=2)
    fit_next_token(whole, *_sequences(), steps=7, batch_size=3, seed=1, learning_rate=1e-2)
    assert timing.sessions == 2
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="belongs to another training"):
        fit_next_token(_tiny_lm(), *_sequences(), steps=9, batch_size=3, seed=1, checkpoint_dir=str(state))
    with pytest.raises(ValueError, match="checkpoint_steps must be >= 1; got 0"):
        fit_next_token(_tiny_lm(), *_sequences(), steps=9, batch_size=3, checkpoint_steps=0)


def test_a_state_that_does_not_load_is_said_and_the_training_starts_over(tmp_path, capsys):
    inputs, labels = _sequences()
    state = tmp_path / "state"
    fit_next_token(_tiny_lm(), inputs, labels, steps=4, batch_size=3, seed=1, checkpoint_dir=str(state),
                   checkpoint_steps=2)
    (state / "state-4.weights.h5").write_bytes(b"truncated")
    model, whole = _tiny_lm(), _tiny_lm()
    timing = fit_next_token(model, inputs, labels, steps=4, batch_size=3, seed=1, checkpoint_dir=str(state),
                            checkpoint_steps=2)
    fit_next_token(whole, inputs, labels, steps=4, batch_size=3, seed=1)
    assert timing.sessions == 1 and "does not load" in capsys.readouterr().out
    for a, b in zip(whole.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    (state / "progress.json").write_text("{not json")
    assert fit_next_token(_tiny_lm(), inputs, labels, steps=4, batch_size=3, seed=1, checkpoint_dir=str(state),
                          checkpoint_steps=2).sessions == 1
    assert "is unreadable" in capsys.readouterr().out
