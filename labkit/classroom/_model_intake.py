"""The tournament's intake of untrusted files: a pair's model (``.keras``) and its attack file (``.npz``).

Nothing here runs code from a file or unpickles anything. A ``.keras`` file is a zip archive: its size is
checked before it is read, its members against what Keras writes, and its ``config.json`` is read as JSON and
walked (without recursion) against an allow-list of Keras's built-in layers, initializers, regularizers and
constraints. A Lambda layer, a custom object (``registered_name`` of a class of its own), a serialised function
(``__lambda__``) or any module outside Keras is refused with the reason. ``compile_config`` is not walked: the
teacher loads with ``compile=False``, so Keras never reads it. What passes is loaded later, in a child process
with a timeout and a memory limit (``labkit.classroom._tournament_worker``), with ``safe_mode=True``.

An attack file is an ``.npz`` read with ``allow_pickle=False`` after the checks ``labkit.data`` makes on a data
set (declared sizes from the zip directory and the ``.npy`` header, no object arrays, no zip bomb); its array
must match the challenge images' shape, be finite, in [0, 1] and within eps (+1e-6) of them in L-infinity.
A file outside the budget is refused, never clipped.

Used by ``labkit.tournament`` (a pair's ``save_entry`` / ``save_attack`` in notebook 10, Step 3 and 5) and by
``labkit.classroom.tournament`` (the teacher's ``labkit tournament``).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Refused", "check_model_file", "check_attack_file", "MAX_MODEL_BYTES", "MAX_CONFIG_BYTES",
           "MAX_PARAMS", "MAX_ATTACK_BYTES", "EPS_TOLERANCE", "INPUT_SHAPE", "NB_CLASSES", "ATTACK_KEY",
           "ALLOWED"]

MAX_MODEL_BYTES = 20_000_000
"""The largest .keras file read (the lab's CNN takes ~0.6 MB; 20 MB holds ~5 million float32 weights)."""
MAX_CONFIG_BYTES = 1_000_000
"""The largest config.json read (the lab's CNN's is ~6 kB)."""
MAX_PARAMS = 2_000_000
"""The most parameters a model may have (the lab's CNN has ~137,000); checked after loading, in the child."""
MAX_ATTACK_BYTES = 50_000_000
"""The largest attack file read."""
EPS_TOLERANCE = 1e-6
"""Rounding allowed beyond eps (float32 arithmetic on [0, 1] pixels)."""
INPUT_SHAPE = (16, 16, 1)
"""The lab's image shape (digits upsampled to 16x16, one channel)."""
NB_CLASSES = 10
ATTACK_KEY = "x_adv"
"""The array an attack file holds: ``numpy.savez(path, x_adv=...)``."""
_MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}

ALLOWED: dict[str, set[str]] = {
    "keras": {"Sequential", "DTypePolicy", "FloatDTypePolicy", "Functional", "Model"},
    "keras.models": {"Sequential", "Functional", "Model"},
    "keras.src.models.functional": {"Functional"},
    "keras.layers": {
        "InputLayer", "Dense", "Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D",
        "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten", "Reshape", "Permute",
        "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "BatchNormalization",
        "LayerNormalization", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "Rescaling", "Add",
        "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "ZeroPadding2D", "Cropping2D",
        "UpSampling2D", "ActivityRegularization", "Identity"},
    "keras.initializers": {
        "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform", "LecunNormal", "Zeros", "Ones",
        "Constant", "RandomUniform", "RandomNormal", "TruncatedNormal", "Orthogonal", "VarianceScaling",
        "Identity"},
    "keras.regularizers": {"L1", "L2", "L1L2", "OrthogonalRegularizer"},
    "keras.constraints": {"MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm"},
}
"""Keras built-in classes a tournament model may use, by the module its config names."""
ACTIVATIONS = {"celu", "elu", "exponential", "gelu", "glu", "hard_sigmoid", "hard_silu", "hard_swish", "leaky_relu",
               "linear", "log_softmax", "mish", "relu", "relu6", "selu", "sigmoid", "silu", "softmax", "softplus",
               "softsign", "swish", "tanh", None}
_GRAPH = {"__keras_tensor__"}
"""Entries of a functional model's graph (references between layers), not objects."""


class Refused(ValueError):
    """A tournament file that is not taken in; the message is the reason shown in its row."""


def _read_member(archive: zipfile.ZipFile, name: str, cap: int) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > cap:
        raise Refused(f"its {name} unpacks to {info.file_size:,} bytes, over the cap of {cap:,}")
    with archive.open(info) as member:
        raw = member.read(cap + 1)
    if len(raw) > cap:
        raise Refused(f"its {name} is larger than it declares (over {cap:,} bytes)")
    return raw


def _check_object(node: dict, where: str) -> None:
    """Refuse one serialised object (a dict with ``class_name``) unless it is an allowed Keras built-in."""
    name, module = node.get("class_name"), node.get("module")
    if name == "__lambda__" or name == "Lambda":
        raise Refused(f"it holds a Lambda layer or a serialised Python function ({where}): Lambda layers carry "
                      f"code, which the tournament never runs. Rebuild the model from Keras's built-in layers")
    if name in _GRAPH:
        return
    if not isinstance(module, str) or not isinstance(name, str) or name not in ALLOWED.get(module, ()):
        raise Refused(f"it uses {module}.{name} ({where}), which is not one of Keras's built-in layers the "
                      f"tournament allows (custom layers and objects carry code). Use keras.layers only")
    registered = node.get("registered_name")
    if registered not in (None, name):
        raise Refused(f"it uses a custom registered object {registered!r} ({where}); only Keras's built-in "
                      f"classes are allowed")


def check_config(config: Any) -> list[tuple[int, ...]]:
    """Walk a model's config (without recursion) and return its input shapes; raise ``Refused`` on what is not
    allowed.

    :param config: the parsed ``config.json``.
    """
    if not isinstance(config, dict) or config.get("class_name") not in {"Sequential", "Functional", "Model"}:
        raise Refused("its config.json does not describe a Keras Sequential or functional model")
    inputs: list[tuple[int, ...]] = []
    stack: list[tuple[Any, str]] = [(config, "model")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            if "class_name" in node:
                cfg = node.get("config")
                where = f"{where} > {str(node.get('class_name'))[:40]}"
                if isinstance(cfg, dict) and cfg.get("name"):
                    where = f"{where} '{str(cfg['name'])[:40]}'"
                _check_object(node, where)
                if node.get("class_name") == "InputLayer" and isinstance(cfg, dict):
                    shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
                    inputs.append(tuple(shape[1:]) if isinstance(shape, list) else ())
            if "activation" in node and node["activation"] not in ACTIVATIONS:
                raise Refused(f"its activation {str(node['activation'])[:60]!r} ({where}) is not a Keras built-in "
                              f"activation")
            stack.extend((value, where) for key, value in node.items() if key != "compile_config")
        elif isinstance(node, list):
            stack.extend((value, where) for value in node)
    return inputs


def _open_archive(path: Path) -> tuple[zipfile.ZipFile, bytes]:
    """Return the open archive of a .keras file and its raw bytes, after the size cap."""
    import io

    from labkit.classroom._intake import IntakeError, read_capped

    try:
        raw = read_capped(Path(path), MAX_MODEL_BYTES)
    except IntakeError as err:
        raise Refused(str(err)) from None
    try:
        return zipfile.ZipFile(io.BytesIO(raw)), raw
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise Refused(f"not a .keras archive (zip) ({err}); save the model with labkit.tournament.save_entry") \
            from None


def check_model_file(path: str | Path, input_shape: tuple[int, ...] = INPUT_SHAPE) -> dict[str, Any]:
    """Check a submitted ``.keras`` file without running anything from it; return its size and its bytes
    (``raw``: load these, not the file again, which could have changed since).

    :param path: the file.
    :param input_shape: the lab's image shape; the model's input must be exactly this.
    :raises Refused: with the reason, when the file is not taken in.
    """
    archive, raw = _open_archive(Path(path))
    with archive:
        names = set(archive.namelist())
        extra = sorted(names - _MEMBERS)
        if extra or "config.json" not in names or "model.weights.h5" not in names:
            found = ", ".join(extra[:3]) if extra else "no config.json or model.weights.h5"
            raise Refused(f"its archive is not what Keras writes ({found}); save the model with "
                          f"labkit.tournament.save_entry")
        weights = archive.getinfo("model.weights.h5").file_size
        if weights > MAX_MODEL_BYTES:
            raise Refused(f"its weights unpack to {weights:,} bytes, over the cap of {MAX_MODEL_BYTES:,} "
                          f"(about {MAX_PARAMS:,} parameters are allowed)")
        text = _read_member(archive, "config.json", MAX_CONFIG_BYTES)
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise Refused(f"its config.json is not readable JSON ({type(err).__name__})") from None
    inputs = check_config(config)
    if len(inputs) != 1 or inputs[0] != tuple(None if d is None else d for d in input_shape):
        got = ", ".join(str(tuple(s)) for s in inputs) or "none"
        raise Refused(f"its input shape is {got}; the tournament's images are {tuple(input_shape)} "
                      f"(the lab's digits): train on the lab's data")
    return {"bytes": len(raw), "weights_bytes": weights, "raw": raw}


def _declared_bytes(path: Path, archive: zipfile.ZipFile) -> tuple[tuple[int, ...], np.dtype]:
    """Check the attack array's member as ``labkit.data`` checks a data set's: from its zip entry and header."""
    from labkit.data import _RATIO_CHECKED_FROM, MAX_COMPRESSION_RATIO, _npy_header

    name = f"{ATTACK_KEY}.npy"
    if name not in archive.namelist():
        raise Refused(f"it holds no {ATTACK_KEY} array; save it with labkit.tournament.save_attack")
    info = archive.getinfo(name)
    if info.file_size > MAX_ATTACK_BYTES:
        raise Refused(f"its {ATTACK_KEY} unpacks to {info.file_size:,} bytes, over the cap of {MAX_ATTACK_BYTES:,}")
    if info.file_size > _RATIO_CHECKED_FROM and info.file_size / max(info.compress_size, 1) > MAX_COMPRESSION_RATIO:
        raise Refused("it expands far more than image data does: refused as a possible zip bomb")
    try:
        with archive.open(info) as member:
            shape, dtype, header = _npy_header(member, path, ATTACK_KEY)
    except ValueError as err:
        raise Refused(str(err).split(": ", 1)[-1]) from None
    if dtype.hasobject:
        raise Refused(f"its {ATTACK_KEY} holds Python objects ({dtype}), which are never unpickled")
    if int(np.prod(shape, dtype=object)) * dtype.itemsize != info.file_size - header:
        raise Refused(f"its {ATTACK_KEY} declares shape {shape} but holds another size: truncated or corrupt")
    return shape, dtype


def check_attack_file(path: str | Path, x: np.ndarray, eps: float) -> np.ndarray:
    """Read a submitted attack file and return its images as float32, or refuse it with the reason.

    :param path: the ``.npz`` file (``x_adv``: adversarial versions of the challenge images, in order).
    :param x: the challenge images.
    :param eps: the class budget (L-infinity, in pixel units of [0, 1] images).
    :raises Refused: wrong shape, not finite, outside [0, 1] or over eps (never clipped).
    """
    from labkit.classroom._intake import IntakeError, read_capped

    import io

    path = Path(path)
    try:
        raw = read_capped(path, MAX_ATTACK_BYTES)  # size and file type checked before reading; read once
    except IntakeError as err:
        raise Refused(str(err)) from None
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            shape, dtype = _declared_bytes(path, archive)
        if shape != tuple(x.shape):
            raise Refused(f"its {ATTACK_KEY} has shape {shape}; the challenge images have shape {tuple(x.shape)} "
                          f"(one adversarial image per challenge image, in the same order)")
        if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)) or dtype == bool:
            raise Refused(f"its {ATTACK_KEY} has dtype {dtype}; adversarial images are float32 in [0, 1]")
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            x_adv = np.asarray(data[ATTACK_KEY])
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        if isinstance(err, Refused):
            raise
        raise Refused(f"not a readable .npz file ({type(err).__name__}); save it with "
                      f"labkit.tournament.save_attack") from None
    return check_budget(x_adv, x, eps)


def check_budget(x_adv: np.ndarray, x: np.ndarray, eps: float) -> np.ndarray:
    """Return ``x_adv`` as float32 after checking shape, finiteness, [0, 1] and the eps budget (never clipped).

    :param x_adv: adversarial versions of ``x``.
    :param x: the challenge images.
    :param eps: the class budget.
    """
    x_adv = np.asarray(x_adv)
    if tuple(x_adv.shape) != tuple(x.shape):
        raise Refused(f"its images have shape {tuple(x_adv.shape)}; the challenge images have shape "
                      f"{tuple(x.shape)} (one adversarial image per challenge image, in the same order)")
    if x_adv.dtype == bool or not (np.issubdtype(x_adv.dtype, np.floating) or np.issubdtype(x_adv.dtype, np.integer)):
        raise Refused(f"its images have dtype {x_adv.dtype}; adversarial images are float32 in [0, 1]")
    x_adv = x_adv.astype(np.float32)
    if not np.isfinite(x_adv).all():
        raise Refused("its images hold NaN or infinite values")
    if x_adv.min() < 0.0 or x_adv.max() > 1.0:
        raise Refused(f"its pixels lie in [{x_adv.min():.3g}, {x_adv.max():.3g}], outside [0, 1]")
    distance = float(np.abs(x_adv.astype(np.float64) - x.astype(np.float64)).max())
    if distance > eps + EPS_TOLERANCE:
        over = int((np.abs(x_adv - x).reshape(len(x), -1).max(axis=1) > eps + EPS_TOLERANCE).sum())
        raise Refused(f"it is outside the budget: {over} image(s) differ from the challenge by up to {distance:.4f} "
                      f"in L-infinity, over eps = {eps:g}. Refused, not clipped: project your images with "
                      f"np.clip(x_adv, x - eps, x + eps) and clip them to [0, 1]")
    return x_adv
