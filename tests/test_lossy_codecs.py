"""The ASVspoof 5 codec conditions: lengths, alignment, a real change of the audio, bit rates, installation errors."""

from __future__ import annotations

import ctypes.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from scipy.signal import correlate

from lfcc_gmm import degrade, lossy_codecs
from lfcc_gmm.augment import Augmenter, item_seed
from lfcc_gmm.lossy_codecs import CODECS

# A bona fide demo utterance (2.7 s of real speech at 16 kHz).
SPEECH_FILE = Path(__file__).resolve().parents[1] / "data" / "demo" / "flac" / "DEMO_D_0002.flac"
NARROW = [name for name, codec in CODECS.items() if codec.rate == 8000]


def require(name: str) -> None:
    problem = lossy_codecs.unavailable(name)
    if problem is not None:
        pytest.skip(f"{name}: {problem}")


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    x, rate = sf.read(SPEECH_FILE, dtype="float64")
    assert rate == 16000 and x.ndim == 1
    return x


def asvspoof5_rates(name: str) -> tuple[float, float]:
    """The lowest and highest bit rate the codec takes within its ASVspoof 5 condition's range."""
    codec = CODECS[name]
    low, high = max(codec.asvspoof5_kbps[0], codec.kbps[0]), min(codec.asvspoof5_kbps[1], codec.kbps[1])
    if codec.modes:
        inside = [mode for mode in codec.modes if low <= mode <= high]
        return inside[0], inside[-1]
    return low, high


def lag(x: np.ndarray, y: np.ndarray) -> int:
    """Where y best matches x (samples; positive = y late), on the 300-3400 Hz band both keep."""
    x, y = degrade.telephone_band(x), degrade.telephone_band(y)
    return int(np.argmax(correlate(y, x, mode="full", method="fft"))) - (x.shape[0] - 1)


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(x**2) / np.sum((y - x) ** 2)))


def high_band_share(x: np.ndarray, cutoff_hz: float = 4500.0) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    return float(power[np.fft.rfftfreq(x.shape[0], 1 / 16000) > cutoff_hz].sum() / power.sum())


@pytest.mark.parametrize("name", CODECS)
def test_round_trip_keeps_length_and_alignment(name, speech):
    require(name)
    _, top = asvspoof5_rates(name)
    y = lossy_codecs.round_trip(speech, name, top)
    assert y.shape == speech.shape and y.dtype == np.float64 and np.all(np.isfinite(y))
    # The delays removed are 80 (AMR-NB) to over 1000 (MP3, AAC) samples at 16 kHz; what may remain is the
    # codecs' phase response (CELP codecs high-pass their input), a sample or two on real speech.
    assert abs(lag(speech, y)) <= 4
    for n in (speech.shape[0] - 1, 4001, 10, 1, 0):  # odd lengths, less than one frame, nothing at all
        assert lossy_codecs.round_trip(speech[:n], name, top).shape == (n,)


@pytest.mark.parametrize("name", CODECS)
def test_round_trip_really_changes_the_audio(name, speech):
    require(name)
    low, high = asvspoof5_rates(name)
    at_low, at_high = lossy_codecs.round_trip(speech, name, low), lossy_codecs.round_trip(speech, name, high)
    # Full-band SNRs seen: 0 to 12 dB at the low end of every condition's range, 25 dB for MP3 at 45 kbit/s.
    assert snr_db(speech, at_low) < 30.0
    # More bits, a closer copy (in the band every codec keeps).
    band = degrade.telephone_band(speech)
    assert snr_db(band, degrade.telephone_band(at_high)) > snr_db(band, degrade.telephone_band(at_low))
    np.testing.assert_array_equal(lossy_codecs.round_trip(speech, name, low), at_low)  # deterministic


@pytest.mark.parametrize("name", NARROW)
def test_narrow_band_codecs_remove_everything_above_4_khz(name, speech):
    require(name)
    assert high_band_share(speech) > 5e-3
    for kbps in asvspoof5_rates(name):
        # Above the 8 kHz resampler's transition band (4-4.5 kHz) only its stop-band leakage is left (seen: 1e-6).
        assert high_band_share(lossy_codecs.round_trip(speech, name, kbps)) < 1e-4


def test_other_sample_rates_come_back_at_their_rate(speech):
    require("opus-wb")
    from lfcc_gmm.audio import resample

    at_22k = resample(speech, 16000, 22050)
    y = lossy_codecs.round_trip(at_22k, "opus-wb", 30, sample_rate=22050)
    assert y.shape == at_22k.shape
    assert abs(lag(resample(at_22k, 22050, 16000), resample(y, 22050, 16000))) <= 1


def test_bit_rates_are_checked():
    with pytest.raises(ValueError, match="amr-nb takes a bit rate of one of 4.75, 5.15, .*12.2 kbit/s, got 8"):
        lossy_codecs.round_trip(np.zeros(100), "amr-nb", 8)
    with pytest.raises(ValueError, match="mp3 takes a bit rate of 8 to 160 kbit/s, got 256"):
        lossy_codecs.round_trip(np.zeros(100), "mp3", 256)
    with pytest.raises(ValueError, match="unknown codec 'gsm'"):
        lossy_codecs.round_trip(np.zeros(100), "gsm", 13)
    with pytest.raises(ValueError, match=r"bad parameter in 'speex-wb:10': .*one of 3.95, 5.75"):
        degrade.parse_condition("speex-wb:10")
    with pytest.raises(ValueError, match="needs a parameter"):
        degrade.parse_condition("opus-nb:")
    assert degrade.parse_condition("opus-nb").steps == (("opus-nb", None),)  # a random bit rate, see below
    rng = np.random.default_rng(0)
    for name in CODECS:
        low, high = asvspoof5_rates(name)
        drawn = [lossy_codecs.draw_bitrate(name, rng) for _ in range(50)]
        assert all(low <= kbps <= high and lossy_codecs.accepts(name, kbps) for kbps in drawn)
        assert len(set(drawn)) > 1


def test_conditions_use_the_codecs(speech):
    usage = degrade.describe_conditions()
    for name in CODECS:
        assert name in degrade.CONDITIONS
        assert f"{name}[:<bit rate in kbit/s" in usage
    require("amr-nb")
    require("mp3")
    x = speech[:16000]
    np.testing.assert_array_equal(degrade.parse_condition("amr-nb:7.95")(x), lossy_codecs.round_trip(x, "amr-nb", 7.95))
    np.testing.assert_array_equal(degrade.parse_condition("mp3:64")(x), lossy_codecs.round_trip(x, "mp3", 64))
    chained = degrade.parse_condition("tel8k+amr-nb:12.2")
    assert chained.steps == (("tel8k", None), ("amr-nb", 12.2))
    np.testing.assert_array_equal(chained(x), lossy_codecs.round_trip(degrade.resample_round_trip(x), "amr-nb", 12.2))
    if "mp3" in degrade.available_codecs():  # a bare mp3 keeps its meaning: libsndfile's LAME
        np.testing.assert_array_equal(degrade.parse_condition("mp3")(x), degrade.mp3_round_trip(x))


def test_a_bare_codec_condition_draws_its_bit_rate_from_the_condition_generator(speech):
    require("amr-nb")
    x = speech[:16000]
    condition = degrade.parse_condition("amr-nb")
    rates = set()
    for seed in range(8):
        kbps = lossy_codecs.draw_bitrate("amr-nb", np.random.default_rng(seed))
        rates.add(kbps)
        np.testing.assert_array_equal(condition(x, rng=seed), lossy_codecs.round_trip(x, "amr-nb", kbps))
    assert len(rates) > 1 and rates <= set(lossy_codecs.AMR_NB_MODES)


def test_robustness_draws_codec_bit_rates_per_file_and_condition_name(speech, tmp_path):
    # evaluate_robustness seeds each (file, condition) with named_seed(seed, file ID, condition name): a bare
    # codec's bit rate is drawn from that stream, whatever the other files and conditions are. The degraded audio
    # it saves (16-bit FLAC) is compared with the round trip at the bit rate drawn here from that seed.
    from lfcc_gmm.augment import named_seed
    from lfcc_gmm.baseline import LFCCGMMScorer
    from lfcc_gmm.protocols import Trial
    from lfcc_gmm.robustness import evaluate_robustness

    require("amr-nb")
    require("opus-wb")
    trials = []
    for i, key in enumerate(["bonafide", "spoof"] * 3):
        path = tmp_path / f"F{i}.flac"
        sf.write(path, 0.5 * speech[4000 * i : 4000 * i + 8000], 16000, subtype="PCM_16")
        trials.append(Trial(f"F{i}", key, "-" if key == "bonafide" else "A01", path=path))
    scorer = LFCCGMMScorer(n_components=2, max_iter=2, init_samples=200).fit(trials)

    def saved(folder):
        return {t.file_id: sf.read(folder / "amr-nb" / f"{t.file_id}.flac", dtype="float64")[0] for t in trials}

    evaluate_robustness(scorer, trials, degrade.parse_conditions("opus-wb,amr-nb"), seed=5, chunk_size=4,
                        audio_dir=tmp_path / "both")
    both = saved(tmp_path / "both")
    rates = set()
    for trial in trials:
        kbps = lossy_codecs.draw_bitrate("amr-nb", np.random.default_rng(named_seed(5, trial.file_id, "amr-nb")))
        rates.add(kbps)
        expected = lossy_codecs.round_trip(sf.read(trial.path, dtype="float64")[0], "amr-nb", kbps)
        assert np.max(np.abs(expected)) < 1  # saved unscaled
        np.testing.assert_array_equal(both[trial.file_id], np.round(expected * 32768) / 32768)
    assert len(rates) > 1
    # The same condition alone, on the trials reversed, sees the same audio.
    evaluate_robustness(scorer, trials[::-1], degrade.parse_conditions("amr-nb"), seed=5, audio_dir=tmp_path / "alone")
    alone = saved(tmp_path / "alone")
    for trial in trials:
        np.testing.assert_array_equal(alone[trial.file_id], both[trial.file_id])


def test_augmenter_draws_codecs(speech):
    for name in CODECS:
        require(name)
    augmenter = Augmenter("codec,amr-nb")
    x = speech[:16000]
    outputs = [augmenter(x, item_seed(0, 0, i)) for i in range(6)]
    assert all(y.shape == x.shape and not np.allclose(y, x) for y in outputs)
    np.testing.assert_array_equal(augmenter(x, item_seed(0, 0, 3)), outputs[3])
    assert len({y.tobytes() for y in outputs}) > 1


@pytest.fixture
def no_libraries(monkeypatch):
    """Neither ctypes.util.find_library nor dlopen of the soname finds the system libraries (the cached lookups
    are forgotten before and after)."""
    lossy_codecs._library.cache_clear()
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    for name, (soname, package) in list(lossy_codecs.SYSTEM_LIBRARIES.items()):
        monkeypatch.setitem(lossy_codecs.SYSTEM_LIBRARIES, name, (f"{soname}.absent", package))
    yield
    lossy_codecs._library.cache_clear()


def test_libraries_load_by_soname_where_find_library_fails(monkeypatch):
    # A minimal image may lack the ldconfig cache entry or the tools find_library asks; dlopen still finds the
    # installed library, so the codec is not reported missing.
    for name in ("speex-nb", "amr-wb"):
        require(name)
    lossy_codecs._library.cache_clear()
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    try:
        assert lossy_codecs.unavailable("speex-nb") is None and lossy_codecs.unavailable("amr-wb") is None
        assert lossy_codecs.missing_system_packages() == []
    finally:
        lossy_codecs._library.cache_clear()


def test_missing_libraries_say_how_to_install_them(no_libraries):
    assert "apt-get install libspeex1" in lossy_codecs.unavailable("speex-nb")
    assert "apt-get install libvo-amrwbenc0" in lossy_codecs.unavailable("amr-wb")
    with pytest.raises(degrade.CodecUnavailableError, match="speex-wb: needs the speex library"):
        lossy_codecs.round_trip(np.zeros(100), "speex-wb", 16.8)
    with pytest.raises(degrade.CodecUnavailableError, match="condition 'amr-wb:12.65': needs the vo-amrwbenc"):
        degrade.parse_condition("amr-wb:12.65")
    with pytest.raises(degrade.CodecUnavailableError, match="condition 'speex-nb': needs the speex"):
        degrade.parse_condition("speex-nb")  # a random bit rate needs the library too
    with pytest.raises(degrade.CodecUnavailableError, match="augmentation 'codec'"):
        Augmenter("codec")
    assert "speex-nb" not in lossy_codecs.available()
    assert lossy_codecs.missing_system_packages() == ["libvo-amrwbenc0", "libspeex1"]


def test_missing_pyav_says_how_to_install_it(monkeypatch):
    lossy_codecs._pyav_problem.cache_clear()
    monkeypatch.setitem(sys.modules, "av", None)  # makes the import fail
    try:
        assert "pip install av" in lossy_codecs.unavailable("opus-nb")
        with pytest.raises(degrade.CodecUnavailableError, match="pip install av"):
            degrade.parse_condition("m4a:32")
    finally:
        lossy_codecs._pyav_problem.cache_clear()


def test_robustness_help_lists_every_codec():
    from cli.robustness import robustness

    text = CliRunner().invoke(robustness, ["--help"], terminal_width=200).output
    for name, codec in CODECS.items():
        assert f"{name}:KBPS" in text and f"ASVspoof 5 {codec.asvspoof5}" in text


MISSING = "libvo-amrwbenc0 libspeex1"
#: fake apt-get behaviours: every call fails (no network, no package lists); install works once update has run
APT_GETS = {
    "broken": 'echo "$*" >> "{log}"; exit 100',
    "stale lists": 'echo "$*" >> "{log}"; [ "$1" = update ] && : > "{log}.updated"; '
                   '[ "$1" = update ] || [ -e "{log}.updated" ] || exit 100; exit 0',
}


def make_codec_libs(tmp_path, *, apt_get: str | None, uid: int, missing: str = MISSING):
    """``make codec-libs`` with only fake ``id`` and ``apt-get`` on PATH; returns (result, apt-get's calls)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    fake = tmp_path / "bin"
    fake.mkdir(parents=True)
    log = tmp_path / "apt.log"
    scripts = {"id": f"echo {uid}"}
    if apt_get is not None:
        scripts["apt-get"] = APT_GETS[apt_get].format(log=log)
    for name, body in scripts.items():
        (fake / name).write_text(f"#!/bin/sh\n{body}\n")
        (fake / name).chmod(0o755)
    result = subprocess.run([make, "-s", "-C", str(Path(__file__).resolve().parents[1]), "codec-libs",
                             f"MISSING_CODEC_LIBS=echo {missing}"], env={"PATH": str(fake)},
                            capture_output=True, text=True, timeout=60)
    return result, log.read_text().splitlines() if log.exists() else []


def test_make_codec_libs_never_fails_the_installation(tmp_path):
    # The Makefile's apt step on a clean machine: apt-get unusable (no network), not root, or absent.
    result, calls = make_codec_libs(tmp_path / "broken", apt_get="broken", uid=0)
    assert result.returncode == 0, result.stderr
    assert calls[0].startswith("install") and calls[0].endswith(MISSING) and calls[1].startswith("update")
    assert f"apt-get could not install {MISSING}" in result.stderr
    for name, apt_get, uid in (("user", "broken", 1000), ("no apt", None, 0)):
        result, calls = make_codec_libs(tmp_path / name, apt_get=apt_get, uid=uid)
        assert result.returncode == 0 and calls == [], result.stderr
        assert f"{MISSING} not installed" in result.stderr and "apt-get install" in result.stderr


def test_make_codec_libs_refreshes_stale_package_lists(tmp_path):
    result, calls = make_codec_libs(tmp_path / "stale", apt_get="stale lists", uid=0)
    assert result.returncode == 0, result.stderr
    assert [call.split()[0] for call in calls] == ["install", "update", "install"]
    assert f"installed {MISSING}" in result.stdout and result.stderr == ""
    result, calls = make_codec_libs(tmp_path / "none", apt_get="broken", uid=0, missing="")
    assert (result.returncode, calls, result.stdout, result.stderr) == (0, [], "", "")
