"""labkit's LabClassifier: ART's KerasClassifier with a compiled gradient and a one-step fit, same results."""

from __future__ import annotations

import numpy as np
import pytest
from art.estimators.classification import KerasClassifier

import labkit
from labkit._fast_keras import LabClassifier


@pytest.fixture(scope="module")
def small():
    return labkit.load_dataset(n_train=120, n_test=60)


@pytest.fixture(scope="module")
def trained(small):
    labkit.set_seed(0)
    return labkit.train_model(small.x_train, small.y_train, epochs=2, progress=False)


def _art_twin(classifier):
    """ART's own KerasClassifier on the very same Keras model."""
    return KerasClassifier(model=classifier.model, clip_values=(0.0, 1.0), use_logits=False)


def _no_art_fallback(monkeypatch, method):
    def refuse(*args, **kwargs):
        raise AssertionError(f"ART's eager KerasClassifier.{method} was called")

    monkeypatch.setattr(KerasClassifier, method, refuse)


def test_the_lab_wraps_every_model_in_it_and_it_is_still_arts_keras_classifier(trained):
    assert type(trained) is LabClassifier
    assert isinstance(trained, KerasClassifier)


def test_its_gradient_is_arts_gradient_and_does_not_go_through_arts_eager_code(trained, small, monkeypatch):
    x = small.x_test[:40]
    onehot = np.eye(10, dtype=np.float32)[small.y_test[:40]]
    expected = _art_twin(trained).loss_gradient(x, onehot)
    assert np.abs(expected).max() > 0
    _no_art_fallback(monkeypatch, "loss_gradient")
    np.testing.assert_allclose(trained.loss_gradient(x, onehot), expected, rtol=1e-4, atol=1e-7)
    # integer labels mean the same one-hot labels
    np.testing.assert_allclose(trained.loss_gradient(x, small.y_test[:40]), expected, rtol=1e-4, atol=1e-7)
    # a batch of another size (PGD's last batch) is fine
    np.testing.assert_allclose(trained.loss_gradient(x[:7], onehot[:7]), expected[:7], rtol=1e-4, atol=1e-7)


def test_the_gradient_follows_the_weights_as_they_train(small):
    labkit.set_seed(1)
    classifier = labkit.models.wrap_model(labkit.build_model(small.input_shape))
    x, onehot = small.x_test[:20], np.eye(10, dtype=np.float32)[small.y_test[:20]]
    before = classifier.loss_gradient(x, onehot)
    classifier.fit(small.x_train, small.y_train, nb_epochs=2, batch_size=32)
    after = classifier.loss_gradient(x, onehot)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, _art_twin(classifier).loss_gradient(x, onehot), rtol=1e-4, atol=1e-7)


def test_with_a_preprocessing_defence_it_chains_the_defences_gradient_as_art_does(trained, small):
    from art.defences.preprocessor import FeatureSqueezing

    squeeze = FeatureSqueezing(clip_values=(0.0, 1.0), bit_depth=1)
    ours = LabClassifier(model=trained.model, clip_values=(0.0, 1.0), preprocessing_defences=[squeeze])
    art = KerasClassifier(model=trained.model, clip_values=(0.0, 1.0), preprocessing_defences=[squeeze])
    x, onehot = small.x_test[:10], np.eye(10, dtype=np.float32)[small.y_test[:10]]
    expected = art.loss_gradient(x, onehot)
    assert not np.allclose(expected, trained.loss_gradient(x, onehot))  # the squeezing changes the gradient
    np.testing.assert_allclose(ours.loss_gradient(x, onehot), expected, rtol=1e-4, atol=1e-7)


def _fresh_pair(small):
    """Two identical untrained models without dropout (so one step is deterministic): ours and ART's."""
    labkit.set_seed(3)
    model = labkit.build_model(small.input_shape, dropout=0.0)
    twin = labkit.models.copy_keras_model(model)
    return labkit.models.wrap_model(model), KerasClassifier(model=twin, clip_values=(0.0, 1.0), use_logits=False)


def test_one_epoch_over_one_batch_is_the_same_single_step_as_arts_fit(small, monkeypatch):
    ours, art = _fresh_pair(small)
    x, y = small.x_train[:64], np.eye(10, dtype=np.float32)[small.y_train[:64]]
    art.fit(x, y, nb_epochs=1, batch_size=len(x))
    _no_art_fallback(monkeypatch, "fit")
    ours.fit(x, y, nb_epochs=1, batch_size=len(x), validation_data=None)  # as AdversarialTrainerMadryPGD calls it
    for mine, theirs in zip(ours.model.get_weights(), art.model.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6)


def test_longer_fits_still_go_through_keras_fit(small):
    ours, art = _fresh_pair(small)
    ours.fit(small.x_train, small.y_train, nb_epochs=2, batch_size=40)
    assert labkit.accuracy(ours, small.x_test, small.y_test) > labkit.accuracy(art, small.x_test, small.y_test)


def test_arts_adversarial_trainer_runs_on_it_and_makes_a_model_harder_to_fool(small):
    from art.attacks.evasion import FastGradientMethod
    from art.defences.trainer import AdversarialTrainer

    labkit.set_seed(0)
    plain = labkit.train_model(small.x_train, small.y_train, epochs=6, progress=False)
    labkit.set_seed(0)
    robust = labkit.models.wrap_model(labkit.build_model(small.input_shape))
    trainer = AdversarialTrainer(robust, attacks=FastGradientMethod(robust, eps=0.2), ratio=1.0)
    trainer.fit(small.x_train, np.eye(10)[small.y_train], nb_epochs=6, batch_size=32)

    def under_fgsm(clf):
        x_adv = FastGradientMethod(clf, eps=0.2).generate(small.x_test, y=np.eye(10)[small.y_test])
        return labkit.accuracy(clf, x_adv, small.y_test)

    assert under_fgsm(robust) > under_fgsm(plain)


def test_its_compiled_step_and_gradient_are_traced_once_for_every_batch_size(small):
    """An epoch's last batch is smaller: neither compiled function is traced again for it (each trace ~0.6 s)."""
    ours, _ = _fresh_pair(small)
    onehot = np.eye(10, dtype=np.float32)[small.y_train]
    for size in (64, 37, 64, 5):
        ours.fit(small.x_train[:size], onehot[:size], nb_epochs=1, batch_size=size)
        ours.loss_gradient(small.x_train[:size], onehot[:size])
    assert ours._compiled_step[1].experimental_get_tracing_count() == 1
    assert ours._gradient_function().experimental_get_tracing_count() == 1


def test_after_a_recompile_the_step_uses_the_new_optimiser(small):
    import keras

    ours, _ = _fresh_pair(small)
    x, onehot = small.x_train[:32], np.eye(10, dtype=np.float32)[small.y_train[:32]]
    ours.fit(x, onehot, nb_epochs=1, batch_size=32)
    ours.model.compile(optimizer=keras.optimizers.SGD(0.0), loss="categorical_crossentropy")
    before = [w.copy() for w in ours.model.get_weights()]
    ours.fit(x, onehot, nb_epochs=1, batch_size=32)   # a learning rate of 0 leaves every weight where it was
    for now, then in zip(ours.model.get_weights(), before):
        np.testing.assert_array_equal(now, then)


def test_its_predictions_are_arts_and_one_trace_serves_every_batch_size(trained, small, monkeypatch):
    """The Square attack predicts ~900 times per model on shrinking sets of images: one trace, ART's numbers."""
    x, art = small.x_test, _art_twin(trained)
    sizes = (60, 37, 1, 60)
    expected = [art.predict(x[:size]) for size in sizes] + [art.predict(x.astype(np.float64))]
    _no_art_fallback(monkeypatch, "predict")
    for size, theirs in zip(sizes, expected):
        np.testing.assert_array_equal(trained.predict(x[:size]), theirs)
    np.testing.assert_array_equal(trained.predict(x.astype(np.float64)), expected[-1])   # cast as Keras casts
    assert trained._forward_function().experimental_get_tracing_count() == 1


def test_its_predictions_keep_arts_pre_and_post_processing(trained, small, monkeypatch):
    from art.defences.postprocessor import ReverseSigmoid
    from art.defences.preprocessor import FeatureSqueezing

    squeeze = FeatureSqueezing(clip_values=(0.0, 1.0), bit_depth=1)
    reverse = ReverseSigmoid(beta=1.0, gamma=0.2)
    kwargs = {"model": trained.model, "clip_values": (0.0, 1.0), "preprocessing_defences": [squeeze],
              "postprocessing_defences": [reverse]}
    expected = KerasClassifier(**kwargs).predict(small.x_test)
    assert not np.allclose(expected, trained.predict(small.x_test))   # the defences change the answers
    _no_art_fallback(monkeypatch, "predict")
    np.testing.assert_array_equal(LabClassifier(**kwargs).predict(small.x_test), expected)


def test_training_mode_and_other_input_shapes_go_to_arts_predict(trained, small, monkeypatch):
    calls = []
    art_predict = KerasClassifier.predict
    monkeypatch.setattr(KerasClassifier, "predict", lambda self, *a, **k: calls.append(k) or art_predict(
        self, *a, **k))
    trained.predict(small.x_test[:5], training_mode=True)
    with pytest.raises(Exception):   # noqa: B017 - what ART raises for a wrong shape is ART's (and Keras's) error
        trained.predict(small.x_test[:5, :8])
    trained.predict(small.x_test[:5])   # the lab's own case: not ART's
    assert [k["training_mode"] for k in calls] == [True, False]


def _pgd_predictions(classifier, x, y, monkeypatch):
    """Run ART's PGD on ``x`` and return (its adversarial images, how many images the classifier predicted on)."""
    from art.attacks.evasion import ProjectedGradientDescent

    seen = []
    predict = type(classifier).predict
    monkeypatch.setattr(type(classifier), "predict", lambda self, xs, *a, **k: seen.append(len(xs)) or predict(
        self, xs, *a, **k))
    x_adv = ProjectedGradientDescent(classifier, eps=0.1, eps_step=0.05, max_iter=3, verbose=False).generate(x, y=y)
    monkeypatch.undo()
    return x_adv, sum(seen)


def test_arts_pgd_skips_the_success_rate_it_would_only_log_unless_info_is_shown(trained, small, monkeypatch,
                                                                               caplog):
    import logging

    x, onehot = small.x_test[:30], np.eye(10, dtype=np.float32)[small.y_test[:30]]
    quiet_adv, quiet_predicted = _pgd_predictions(trained, x, onehot, monkeypatch)
    assert quiet_predicted == 0          # ART alone predicts on every image twice, for one INFO line
    with caplog.at_level(logging.INFO, logger="art.attacks.evasion.projected_gradient_descent"):
        shown_adv, shown_predicted = _pgd_predictions(trained, x, onehot, monkeypatch)
    assert shown_predicted == 2 * len(x)
    assert any("Success rate of attack" in r.getMessage() and "nan" not in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(quiet_adv, shown_adv)   # the attack itself is the same


def _count_train_step_traces(monkeypatch, model_class):
    traces = []
    step = model_class.train_step
    monkeypatch.setattr(model_class, "train_step", lambda self, data: traces.append(1) or step(self, data))
    return traces


def test_a_fresh_models_first_fit_traces_its_train_step_once_and_trains_the_same_weights(small, monkeypatch):
    """Keras creates the optimiser's and metrics' variables inside the first trace, and TensorFlow traces again."""
    from labkit._fast_keras import prepare_fit

    x, onehot = small.x_train, np.eye(10, dtype=np.float32)[small.y_train]

    def fit(prepare):
        labkit.set_seed(0)
        model = labkit.build_model(small.input_shape)
        traces = _count_train_step_traces(monkeypatch, type(model))
        if prepare:
            prepare_fit(model, x, onehot)
        model.fit(x, onehot, epochs=2, batch_size=32, verbose=0, shuffle=True)
        monkeypatch.undo()
        return len(traces), model.get_weights()

    (plain, plain_weights), (ours, our_weights) = fit(False), fit(True)
    assert (plain, ours) == (2, 1)
    for mine, theirs in zip(our_weights, plain_weights):
        np.testing.assert_array_equal(mine, theirs)


def test_the_labs_fits_trace_their_train_step_once(small, monkeypatch):
    """train_model and LabClassifier.fit (ART's fit of several epochs: substitutes, copies) build first."""
    model_class = type(labkit.build_model(small.input_shape))
    traces = _count_train_step_traces(monkeypatch, model_class)
    labkit.set_seed(0)
    trained = labkit.train_model(small.x_train, small.y_train, epochs=2, batch_size=32, progress=False)
    assert len(traces) == 1
    copy = labkit.copy_classifier(trained)
    copy.fit(small.x_train, small.y_train, nb_epochs=2, batch_size=32)
    assert len(traces) == 2
