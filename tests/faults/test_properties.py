"""Case 15: property-based tests (hypothesis) of the config parser and the data scanners. Whatever the input —
any TOML text or bytes, any table of values under real or made-up keys, any `--set` string, any CSV/JSONL/TXT
bytes, any image-file bytes — the answer is a valid result or a typed error with a message, never a traceback
(any other exception type fails the test).

The hypothesis profile (tests/conftest.py) sets how many examples and whether they are the same on every run:
`ci` by default (60, derandomized), `explore` for a long random hunt (README, Tests). Every failing input ever
found is pinned below with @example, so it is tried on every run whatever the profile."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from finetune_gui.config import ConfigError, RunConfig, TaskKind, apply_overrides, load_config, validate_dict
from finetune_gui.core.data import ScanReport, scan_data
from finetune_gui.core.data.image_files import check_image
from finetune_gui.core.errors import DataError
from tests.conftest import HYPOTHESIS_PROFILE

# built on the loaded profile, so its derandomize / max_examples / print_blob hold for every test here
FAST = settings(settings.default, deadline=None, suppress_health_check=[HealthCheck.too_slow])
pytestmark = pytest.mark.explore
WORK = Path(tempfile.mkdtemp(prefix="finetune-props-"))  # hypothesis runs many examples per test function

# every (section, key) of the real config, plus a few that do not exist
SECTIONS = {
    name: list(f.annotation.model_fields)
    for name, f in RunConfig.model_fields.items()
    if isinstance(f.annotation, type) and hasattr(f.annotation, "model_fields")
}
KEYS = [(s, k) for s, ks in SECTIONS.items() for k in ks] + [("train", "lrr"), ("tarin", "lr"), ("model", "x")]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "auto",
            "cpu",
            "sgd",
            "cosine",
            "resnet18",
            "image-classification",
            "none",
            "head-only",
            "1e-3",
            "",
            "../x",
            "val_loss",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


DEFAULTS = RunConfig().to_dict()


def _plausible(section: str, key: str):
    """Values of the right kind for a field (taken from other fields' defaults), so that many tables are valid."""
    default = DEFAULTS.get(section, {}).get(key) if isinstance(DEFAULTS.get(section), dict) else None
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(min_value=-2, max_value=max(4, default * 3))
    if isinstance(default, float):
        return st.floats(min_value=-0.5, max_value=max(2.0, default * 3), allow_nan=False)
    if isinstance(default, str):
        return st.sampled_from([default, "auto", "none", "sgd", "cosine", "cpu", "val_accuracy", "x y"])
    if isinstance(default, list):
        return st.lists(st.one_of(st.integers(0, 50), st.text(max_size=6)), max_size=3)
    return values


@st.composite
def config_tables(draw) -> dict:
    """The default config with a few fields changed: mostly plausible values, sometimes anything at all."""
    data = json.loads(json.dumps(DEFAULTS))
    for section, key in draw(st.lists(st.sampled_from(KEYS), max_size=6)):
        strategy = values if draw(st.integers(0, 3)) == 0 else _plausible(section, key)
        if section == "model" and key == "lora":
            strategy = st.dictionaries(
                st.sampled_from(["enabled", "r", "alpha", "dropout", "rank"]), values, max_size=3
            )
        if not isinstance(data.get(section), dict):
            data[section] = {}
        data[section][key] = draw(strategy)
    if draw(st.integers(0, 4)) == 0:
        data[draw(st.sampled_from(["schema_version", "name", "task", "description", "extra"]))] = draw(values)
    if draw(st.integers(0, 5)) == 0:
        del data[draw(st.sampled_from(sorted(data)))]
    return data


def _valid_or_config_error(make):
    try:
        result = make()
    except ConfigError as e:
        event("config error")
        assert e.problems and all(isinstance(p, str) and p for p in e.problems)
        assert e.by_field()  # every message can be shown somewhere
        return None
    event("valid config")
    assert isinstance(result, RunConfig)
    return result


@FAST
@given(config_tables())
def test_any_table_of_values_is_a_valid_config_or_field_level_messages(data):
    config = _valid_or_config_error(lambda: validate_dict(data))
    if config is not None:  # a valid config writes out and reads back as the same config
        path = WORK / "roundtrip.toml"
        path.write_text(config.to_toml(), encoding="utf-8")
        assert load_config(path).to_dict() == config.to_dict()


@FAST
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_any_text_as_a_config_file_is_a_config_or_a_config_error(text):
    path = WORK / "any.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _valid_or_config_error(lambda: load_config(path))


@FAST
@given(st.binary(max_size=300))
def test_any_bytes_as_a_config_file_is_a_config_or_a_config_error(raw):
    path = WORK / "bytes.toml"
    path.write_bytes(raw)
    _valid_or_config_error(lambda: load_config(path))


@FAST
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.builds(lambda k, v: f"{k}={v}", st.sampled_from([f"{s}.{k}" for s, k in KEYS]), st.text(max_size=15)),
        ),
        max_size=4,
    )
)
def test_any_set_overrides_give_a_config_or_a_config_error(overrides):
    _valid_or_config_error(lambda: validate_dict(apply_overrides({}, overrides)))


# ---------------------------------------------------------------- data scanners

CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["a", "b", "1", "2.5", "-3", "nan", "inf", "", '"', ",", "a;b", "img.png", "\n", "\x00"]),
)


WORDS = st.sampled_from(["a good film", "dull", "great, really", 'bad "quoted"', "x", "", "ünïcödé", "1.5"])


@st.composite
def csv_bytes(draw) -> bytes:
    """Mostly a text/label or path/label table with odd cells, sometimes any header, any encoding, junk."""
    sep = draw(st.sampled_from([",", ";", "\t"]))
    header = draw(
        st.one_of(
            st.just(["text", "label"]),
            st.just(["path", "label"]),
            st.just(["text", "label", "split"]),
            st.lists(st.sampled_from(["text", "label", "path", "value", "split", "x", ""]), max_size=4),
        )
    )
    cell = st.one_of(WORDS, CELLS, st.sampled_from(["pos", "neg", "train", "val", "test", "img.png"]))
    rows = draw(st.lists(st.lists(cell, min_size=max(0, len(header) - 1), max_size=len(header) + 1), max_size=14))
    text = "\n".join(sep.join(r) for r in [header, *rows])
    enc = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    raw = text.encode(enc, errors="replace")
    if draw(st.integers(0, 4)) == 0:
        raw += draw(st.binary(max_size=20))  # garbage at the end
    return raw


@st.composite
def jsonl_bytes(draw) -> bytes:
    row = st.one_of(
        st.fixed_dictionaries(
            {"text": st.one_of(WORDS, values), "label": st.one_of(st.sampled_from(["a", "b", 1, 0]), values)}
        ),
        st.dictionaries(st.sampled_from(["text", "label", "path", "y"]), values, max_size=3),
        values,
        st.text(max_size=10),
    )
    lines = []
    for r in draw(st.lists(row, max_size=12)):
        try:
            lines.append(json.dumps(r))
        except (TypeError, ValueError):
            lines.append(str(r))
    return "\n".join(lines).encode("utf-8", errors="surrogatepass")


def _scan(path: Path, kind: TaskKind, **data) -> None:
    config = validate_dict({"task": {"kind": kind.value}, "data": {"path": str(path), **data}})
    try:
        report = scan_data(config)
    except DataError as e:
        event("data error")
        assert str(e)
        return
    event(f"report with {'some' if report.num_samples else 'no'} samples")
    assert isinstance(report, ScanReport)
    assert report.num_samples >= 0 and all(p.reason for p in report.problems)


@FAST
@given(csv_bytes(), st.sampled_from(list(TaskKind)), st.sampled_from([".csv", ".tsv"]))
@example(b"path,label\n~0", TaskKind.IMAGE_CLASSIFICATION, ".csv")  # found by hypothesis: ~user of no user
@example(b"path,label\n" + b"x" * 300 + b".png,a", TaskKind.IMAGE_CLASSIFICATION, ".csv")  # name too long
def test_any_csv_scans_to_a_report_or_a_data_error(raw, kind, suffix):
    path = WORK / f"table{suffix}"
    path.write_bytes(raw)
    _scan(path, kind)


@FAST
@given(jsonl_bytes(), st.sampled_from(list(TaskKind)))
@example(  # found by a user: a file name longer than the OS allows (OSError: File name too long)
    json.dumps({"path": "x" * 300 + ".png", "label": "a"}).encode(), TaskKind.IMAGE_CLASSIFICATION
)
@example(b'{"path": "~a\\u0000b", "label": "a"}', TaskKind.IMAGE_CLASSIFICATION)  # ~user with a NUL byte
def test_any_jsonl_scans_to_a_report_or_a_data_error(raw, kind):
    path = WORK / "rows.jsonl"
    path.write_bytes(raw)
    _scan(path, kind, label_columns=["label"])


@FAST
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_any_txt_scans_to_a_report_or_a_data_error(raw):
    path = WORK / "docs.txt"
    path.write_bytes(raw)
    _scan(path, TaskKind.CAUSAL_LM)


def _image_prefix(kind: str) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (9, 7), (1, 2, 3)).save(buf, kind)
    return buf.getvalue()


HEADERS = {k: _image_prefix(k) for k in ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")}


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the damage it reads past
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # a damaged header may claim a huge size
@FAST
@given(
    st.sampled_from(sorted(HEADERS)),
    st.integers(min_value=0, max_value=400),
    st.binary(max_size=64),
    st.integers(min_value=0, max_value=10_000),
)
def test_any_damage_to_an_image_file_gives_ok_or_a_reason_never_an_exception(fmt, cut, junk, position):
    good = HEADERS[fmt]
    damaged = bytearray(good[: min(cut, len(good))] + junk)
    assume(damaged)
    damaged[position % len(damaged)] ^= 0xFF
    path = WORK / f"img.{fmt.lower()}"
    path.write_bytes(bytes(damaged))
    reason = check_image(path)
    event("refused" if reason else "accepted")
    assert reason is None or (isinstance(reason, str) and reason)
    if reason is None:  # accepted at the scan: the training loader must then decode it (or fall back)
        from finetune_gui.core.data.images import ImageDataset

        ds = ImageDataset([str(path), str(WORK / "fallback.png")], [0, 1], None, "class", 2)
        (WORK / "fallback.png").write_bytes(HEADERS["PNG"])
        image, _ = ds[0]
        event("accepted and decoded" if not ds.failures else "accepted, failed to decode")
        assert image.mode == "RGB"
        if fmt in ("PNG", "JPEG"):  # checksums / end marker + small decode: what the scan accepts decodes
            assert not ds.failures, ds.failures
        else:  # other formats are checked by header only; a bad one is replaced and recorded while training
            assert not ds.failures or "delete or replace" in ds.failures[0].reason


def test_every_property_test_runs_under_the_loaded_profile():
    """FAST must not shadow the profile: under `ci` every property test is derandomized (the same examples on every
    run and machine, so CI does not turn red by chance); under `explore` each one tries 2000 random examples."""
    profile = settings.get_profile(HYPOTHESIS_PROFILE)
    tests = {name: f for name, f in globals().items() if name.startswith("test_") and hasattr(f, "hypothesis")}
    assert len(tests) == 8, sorted(tests)
    for name, f in tests.items():
        s = f._hypothesis_internal_use_settings  # what @settings gave this test
        assert (s.derandomize, s.max_examples, s.print_blob) == (profile.derandomize, profile.max_examples, True), name
    if HYPOTHESIS_PROFILE == "ci":
        assert profile.derandomize and profile.max_examples == 60 and profile.database is None


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    import shutil

    shutil.rmtree(WORK, ignore_errors=True)
