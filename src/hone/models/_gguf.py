"""GGUF files behind `hf:PATH`: converted once to a Hugging Face folder, cached by content.

transformers reads a GGUF file's config, tokenizer (with its chat template) and weights,
dequantising every tensor (its `gguf_file=` loading, which needs the `gguf` package: extra
`hone[gguf]`). That takes a while (a minute for a 135M-parameter Q4 file on two busy cores,
most of it building the tokenizer), so the result is saved as an ordinary model folder under
`$HONE_GGUF_CACHE` (default `~/.cache/hone/gguf`), named by the file's SHA-256: the next load
reads that folder. The folder's `README.md` (its model card) and `hone_gguf.json` say where it
came from, the GGUF's quantisation and the dtype it was dequantised to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hone.core import ConfigError

GGUF_HINT = "GGUF files need the gguf extra: pip install 'hone[gguf]'"
INFO_FILE = "hone_gguf.json"
_SUFFIX = ".gguf"
_DTYPE = "float32"  # what gguf dequantises to; kept, so no precision is lost converting


@dataclass(frozen=True)
class GGUFInfo:
    """Where a converted model came from: the GGUF file, its quantisation, and the dtype it now holds."""

    file: str
    sha256: str
    quantization: str  # the file type llama.cpp records (e.g. "Q4_1"), else the commonest weight type
    tensor_types: dict[str, int]  # tensor type name -> count
    architecture: str
    dtype: str  # the dequantised weights' dtype in the converted folder

    def describe(self) -> str:
        """One line for a model card or a CLI header."""
        return f"GGUF {Path(self.file).name} ({self.quantization}, {self.architecture}) dequantised to {self.dtype}"


def gguf_file(path: Path) -> Path | None:
    """The GGUF file `path` names: itself when it ends in `.gguf`, the only one in a folder without
    `config.json`; None when `path` is not about a GGUF. A folder holding several is refused."""
    if path.suffix.lower() == _SUFFIX:
        if not path.is_file():
            raise ConfigError(f"{path}: no such GGUF file")
        return path
    if not path.is_dir() or (path / "config.json").is_file():
        return None
    found = sorted(p for p in path.iterdir() if p.suffix.lower() == _SUFFIX and p.is_file())
    if len(found) > 1:
        names = ", ".join(p.name for p in found[:5])
        raise ConfigError(f"{path} holds {len(found)} GGUF files ({names}); name one: hf:{found[0]}")
    return found[0] if found else None


def cache_root() -> Path:
    """Where converted GGUF models live: `$HONE_GGUF_CACHE`, else `~/.cache/hone/gguf`."""
    return Path(os.environ.get("HONE_GGUF_CACHE") or Path.home() / ".cache" / "hone" / "gguf").expanduser()


def read_info(folder: Path) -> GGUFInfo | None:
    """The `GGUFInfo` of a converted folder, None for any other folder."""
    try:
        data = json.loads((folder / INFO_FILE).read_text())
        return GGUFInfo(**data)
    except (OSError, ValueError, TypeError):
        return None


def convert(file: Path, *, cache: Path | None = None) -> tuple[Path, GGUFInfo]:
    """The Hugging Face folder for GGUF `file` (converting it on first use) and its `GGUFInfo`.

    Raises `ConfigError` in one line naming the file when the `gguf` package is missing, when
    transformers cannot read its architecture, or cannot dequantise its quantisation.
    """
    try:
        import gguf  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"{file}: {GGUF_HINT}") from exc
    file = file.resolve()
    digest = _sha256(file)
    folder = (cache or cache_root()) / digest
    info = read_info(folder)
    if info is not None and (folder / "config.json").is_file():
        return folder, info
    info = _inspect(file, digest)
    _check_types(file, info)
    scratch = folder.with_name(f"{digest}.tmp-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        scratch.mkdir(parents=True)
    except OSError as exc:
        raise ConfigError(
            f"{file}: cannot write its converted model under {folder.parent} ({exc.strerror or exc}); "
            "set HONE_GGUF_CACHE to a writable folder"
        ) from None
    try:
        _save(file, info, scratch)
        if read_info(folder) is None:  # not a finished conversion (those end with INFO_FILE): replace it
            shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # another process finished first: its folder is as good
            scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder, info


def _sha256(file: Path) -> str:
    h = hashlib.sha256()
    with file.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _inspect(file: Path, digest: str) -> GGUFInfo:
    from gguf import GGUFReader, LlamaFileType

    try:
        reader = GGUFReader(str(file))
    except Exception as exc:  # not a GGUF file, truncated, unknown version
        raise ConfigError(f"{file} is not a readable GGUF file: {type(exc).__name__}: {_line(str(exc))}") from None
    types = Counter(t.tensor_type.name for t in reader.tensors)
    arch = _field(reader, "general.architecture") or "unknown"
    quant = ""
    file_type = _field(reader, "general.file_type")
    if isinstance(file_type, int):
        with contextlib.suppress(ValueError):
            quant = LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
    if not quant or quant == "GUESSED":
        weights = Counter(t.tensor_type.name for t in reader.tensors if len(t.shape) > 1)
        quant = (weights or types).most_common(1)[0][0] if (weights or types) else "unknown"
    return GGUFInfo(str(file), digest, quant, dict(types), str(arch), _DTYPE)


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None or not field.data:
        return None
    value = field.parts[field.data[0]]
    if getattr(value, "dtype", None) is not None and value.dtype.kind == "u" and value.dtype.itemsize == 1:
        return bytes(value).decode("utf-8", "replace")
    return value.tolist()[0] if hasattr(value, "tolist") else value


def _check_types(file: Path, info: GGUFInfo) -> None:
    """Refuse, before minutes of loading, a file holding a tensor type gguf cannot dequantise."""
    import gguf.quants

    traits = getattr(gguf.quants, "_type_traits", None)
    if not isinstance(traits, dict):  # a gguf version without the table: transformers will say
        return
    readable = {"F32", "F16"} | {t.name for t in traits}
    bad = sorted(set(info.tensor_types) - readable)
    if bad:
        raise ConfigError(
            f"{file}: transformers cannot dequantise GGUF tensor type {', '.join(bad)} "
            f"(quantisation {info.quantization}); re-quantise it to one of Q8_0, Q6_K, Q4_K_M or F16 "
            "with llama.cpp's llama-quantize, or use the model's Hugging Face checkpoint"
        )


def _save(file: Path, info: GGUFInfo, out: Path) -> None:
    """Load `file` with transformers (weights dequantised) and save it as a plain model folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": file.name}
    try:  # newer transformers may keep GGUF blocks packed; hone wants plain dense weights
        from transformers.utils.quantization_config import GgufConfig

        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    except ImportError:
        pass
    try:
        tokenizer = AutoTokenizer.from_pretrained(file.parent, gguf_file=file.name)
        model = AutoModelForCausalLM.from_pretrained(file.parent, dtype=torch.float32, **kwargs)
    except Exception as exc:  # unknown architecture or tokenizer, tensors it cannot map
        raise ConfigError(
            f"transformers cannot load {file} ({info.architecture}, quantisation {info.quantization}): "
            f"{_line(str(exc))}; use the model's Hugging Face checkpoint, or a GGUF of an architecture "
            "transformers lists as GGUF-loadable"
        ) from None
    # The dequantised model is dense; drop the marker that would make save_pretrained refuse it.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / INFO_FILE).write_text(json.dumps(asdict(info), indent=2) + "\n")
    (out / "README.md").write_text(_card(info))


def _card(info: GGUFInfo) -> str:
    types = ", ".join(f"{name} x{n}" for name, n in sorted(info.tensor_types.items()))
    return (
        f"# {Path(info.file).name} (converted by hone)\n\n"
        f"- source: `{info.file}` (sha256 `{info.sha256}`)\n"
        f"- architecture: {info.architecture}\n"
        f"- GGUF quantisation: {info.quantization} (tensors: {types})\n"
        f"- weights here: dequantised to {info.dtype}; the quantised model's outputs, at full precision "
        "(no requantisation error beyond the GGUF's own)\n"
    )


def _line(text: str) -> str:
    return " ".join(text.split())[:300]
