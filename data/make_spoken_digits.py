"""Synthesize the spoken digits of AV-Digits once, with espeak-ng and sox.

Run from the repository root (needs the Debian/Ubuntu packages espeak-ng and sox; the
course itself never does, it reads the committed WAVs):

    sudo apt-get install espeak-ng sox
    python data/make_spoken_digits.py

Writes data/spoken_digits/<speaker>_<digit>.wav (16 kHz, mono, 16-bit, silence trimmed)
and data/spoken_digits/manifest.csv with one row per file. A "speaker" is one
combination of accent, voice variant, speed and pitch, drawn with a fixed seed, so the
script is repeatable; every speaker says every digit once.
"""

from __future__ import annotations

import csv
import random
import subprocess
import tempfile
from pathlib import Path

NUM_SPEAKERS = 40
SEED = 2024
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# espeak-ng's English accents (built-in voices; the mbrola ones need extra packages).
ACCENTS = ["en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
# Voice variants that sound like people (robotic and joke variants left out).
VARIANTS = [
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "adam",
    "Alicia",
    "Andy",
    "Annie",
    "aunty",
    "belinda",
    "benjamin",
    "caleb",
    "david",
    "edward",
    "grandpa",
    "grandma",
    "john",
    "linda",
    "max",
    "Michael",
    "paul",
    "quincy",
    "rob",
    "robert",
    "steph",
    "zac",
    "norbert",
    "shelby",
    "travis",
    "victor",
    "whisper",
]
OUT = Path(__file__).resolve().parent / "spoken_digits"


def speakers(n: int, seed: int) -> list[dict]:
    """n distinct (accent, variant, speed, pitch) combinations."""
    rng = random.Random(seed)
    chosen, seen = [], set()
    while len(chosen) < n:
        combo = (rng.choice(ACCENTS), rng.choice(VARIANTS), rng.randrange(120, 221, 10), rng.randrange(20, 81, 5))
        if combo[:2] in seen:  # one speed/pitch per accent+variant keeps speakers distinct
            continue
        seen.add(combo[:2])
        accent, variant, speed, pitch = combo
        chosen.append(
            {"speaker": f"s{len(chosen):02d}", "accent": accent, "variant": variant, "speed": speed, "pitch": pitch}
        )
    return chosen


def synthesize(text: str, speaker: dict, path: Path) -> None:
    with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
        subprocess.run(
            [
                "espeak-ng",
                "-v",
                f"{speaker['accent']}+{speaker['variant']}",
                "-s",
                str(speaker["speed"]),
                "-p",
                str(speaker["pitch"]),
                "-w",
                raw.name,
                text,
            ],
            check=True,
        )
        # 16 kHz mono 16-bit; trim leading and trailing silence (below 0.5% for 20 ms).
        subprocess.run(
            [
                "sox",
                "-R",
                "-G",
                raw.name,
                "-r",
                "16000",
                "-c",
                "1",
                "-b",
                "16",
                str(path),
                "silence",
                "1",
                "0.02",
                "0.5%",
                "reverse",
                "silence",
                "1",
                "0.02",
                "0.5%",
                "reverse",
            ],
            check=True,
        )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for speaker in speakers(NUM_SPEAKERS, SEED):
        for digit, word in enumerate(WORDS):
            name = f"{speaker['speaker']}_{digit}.wav"
            synthesize(word, speaker, OUT / name)
            rows.append({"file": name, "digit": digit, **speaker})
    with open(OUT / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    size = sum(p.stat().st_size for p in OUT.glob("*.wav"))
    print(f"wrote {len(rows)} files from {NUM_SPEAKERS} speakers, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
