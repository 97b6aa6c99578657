"""Folders of your own data, made by the tests: PIL-drawn shapes and synthesized tone words.

`write_shapes(root)` writes `root/<shape>/<n>.png` (a filled circle, square or triangle at a
random place and size, random colours); `write_tones(root)` writes `root/<word>/<n>.wav`, each
"word" a tone of its own pitch with a random onset, length and level, 16 kHz mono 16-bit unless
asked otherwise. The same arguments always give the same files.
"""

import wave
from pathlib import Path

import numpy as np

SHAPES = ("circle", "square", "triangle")
WORDS = {"low": 300.0, "mid": 900.0, "high": 2500.0}


def write_shapes(root, per_class=8, size=32, classes=SHAPES, seed=0):
    """Write `per_class` PNGs of each shape class under `root`; returns `root`."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    root = Path(root)
    for shape in classes:
        (root / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 80, 3)))
            draw = ImageDraw.Draw(img)
            r = int(rng.integers(size // 5, size // 3))
            cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
            fill = tuple(int(v) for v in rng.integers(150, 256, 3))
            box = (cx - r, cy - r, cx + r, cy + r)
            if shape == "circle":
                draw.ellipse(box, fill=fill)
            elif shape == "square":
                draw.rectangle(box, fill=fill)
            else:
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
            img.save(root / shape / f"{i:03d}.png")
    return root


def write_wav(path, samples, rate=16000, channels=1):
    """Write int16 `samples` ((n,) or (n, channels)) as a PCM WAV."""
    data = np.asarray(samples, dtype="<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


def tone(freq, rng, rate=16000, seconds=1.0):
    """One "word": a tone at `freq` Hz with a random onset, length and level, plus noise."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    start = rng.uniform(0.05, 0.3)
    length = rng.uniform(0.3, 0.6)
    envelope = np.clip(np.minimum(t - start, start + length - t) / 0.03, 0, 1)
    level = rng.uniform(0.3, 0.8) * 32767
    wave_ = level * envelope * np.sin(2 * np.pi * freq * rng.uniform(0.95, 1.05) * t)
    return np.clip(wave_ + rng.normal(0, 200, n), -32768, 32767).astype(np.int16)


def write_tones(root, per_class=8, words=WORDS, seed=0, rate=16000, channels=1):
    """Write `per_class` tone clips of each word under `root`; returns `root`."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for word, freq in words.items():
        (root / word).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            clip = tone(freq, rng, rate)
            if channels > 1:
                clip = np.repeat(clip[:, None], channels, axis=1)
            write_wav(root / word / f"{i:03d}.wav", clip, rate, channels)
    return root
