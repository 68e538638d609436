"""The model builder, training, seeding, save/load and copies."""

from __future__ import annotations

import numpy as np
import pytest

import labkit


@pytest.fixture(scope="module")
def small():
    return labkit.load_dataset(n_train=200, n_test=100)


def test_architecture_has_dense_features_right_before_the_output(small):
    model = labkit.build_model(small.input_shape)
    names = [layer.name for layer in model.layers]
    assert names == ["conv1", "pool1", "conv2", "flatten", "features", "dropout", "predictions"]
    assert model.layers[-1].activation.__name__ == "softmax"
    assert model.output_shape == (None, 10)


def test_training_returns_an_art_classifier_that_learns(small):
    from art.estimators.classification import KerasClassifier

    labkit.set_seed(0)
    untrained = labkit.models.wrap_model(labkit.build_model(small.input_shape))
    classifier = labkit.train_model(small.x_train, small.y_train, epochs=8, progress=False)
    assert isinstance(classifier, KerasClassifier)
    assert classifier.clip_values is not None and tuple(map(float, classifier.clip_values)) == (0.0, 1.0)
    trained_acc = labkit.accuracy(classifier, small.x_test, small.y_test)
    assert trained_acc > labkit.accuracy(untrained, small.x_test, small.y_test) + 0.3
    assert trained_acc > 0.6


def test_set_seed_makes_two_trainings_equal(small):
    labkit.set_seed(7)
    first = labkit.train_model(small.x_train, small.y_train, epochs=2, progress=False)
    labkit.set_seed(7)
    second = labkit.train_model(small.x_train, small.y_train, epochs=2, progress=False)
    labkit.set_seed(8)
    third = labkit.train_model(small.x_train, small.y_train, epochs=2, progress=False)
    p1, p2, p3 = (c.predict(small.x_test) for c in (first, second, third))
    assert np.array_equal(p1, p2)
    assert not np.array_equal(p1, p3)


def test_set_seed_rejects_bad_seeds():
    for bad in (-1, 1.5, "0", True):
        with pytest.raises(ValueError, match="seed"):
            labkit.set_seed(bad)


def test_save_load_round_trip_and_copy_is_independent(small, build_dir):
    labkit.set_seed(0)
    classifier = labkit.train_model(small.x_train, small.y_train, epochs=2, progress=False)
    path = labkit.save_model(classifier, "baseline")
    assert path == build_dir / "models" / "baseline.keras" and path.exists()
    loaded = labkit.load_model("baseline")
    assert np.allclose(loaded.predict(small.x_test), classifier.predict(small.x_test), atol=1e-6)
    copy = labkit.copy_classifier(classifier)
    copy.fit(small.x_train, np.eye(10)[small.y_train], nb_epochs=1, batch_size=32)
    assert np.allclose(loaded.predict(small.x_test), classifier.predict(small.x_test), atol=1e-6)  # original unchanged
    assert not np.allclose(copy.predict(small.x_test), classifier.predict(small.x_test), atol=1e-6)


def test_missing_model_names_the_notebook_and_bad_names_are_refused():
    with pytest.raises(FileNotFoundError, match="00_setup.ipynb"):
        labkit.load_model("baseline")
    with pytest.raises(ValueError, match="plain word"):
        labkit.load_model("../etc/passwd")


def test_training_rejects_bad_labels_and_shapes(small):
    with pytest.raises(ValueError, match="labels"):
        labkit.train_model(small.x_train, small.y_train + 10, epochs=1, progress=False)
    with pytest.raises(ValueError, match="labels"):
        labkit.train_model(small.x_train, small.y_train[:-1], epochs=1, progress=False)
    with pytest.raises(ValueError, match="outside"):
        labkit.train_model(small.x_train * 255, small.y_train, epochs=1, progress=False)


def test_accuracy_accepts_integer_and_one_hot_labels(small):
    labkit.set_seed(0)
    classifier = labkit.train_model(small.x_train, small.y_train, epochs=1, progress=False)
    a = labkit.accuracy(classifier, small.x_test, small.y_test)
    b = labkit.accuracy(classifier, small.x_test, np.eye(10)[small.y_test])
    assert a == b and 0.0 <= a <= 1.0
    with pytest.raises(ValueError):
        labkit.accuracy(classifier, small.x_test[:0], small.y_test[:0])


def test_tensorflow_retracing_notices_are_hidden_and_other_tensorflow_warnings_are_not(caplog):
    import logging

    import labkit  # noqa: F401  (installs the filter)

    tf_logger = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING):
        tf_logger.warning("5 out of the last 5 calls to <function> triggered tf.function retracing.")
        tf_logger.warning("something else went wrong")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["something else went wrong"]


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_truncated_model_file_is_named_as_such(build_dir, damage):
    path = labkit.save_model(labkit.build_model((16, 16, 1)), "baseline")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    with pytest.raises(ValueError, match=rf"truncated or corrupt model file {path}: .*Re-save it: run "
                                         rf"00_setup.ipynb again"):
        labkit.load_model("baseline")
