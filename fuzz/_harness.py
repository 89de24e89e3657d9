"""What the coverage-guided harnesses share: the seed corpus from tests/data and the
atheris entry point.

Each harness is ``python fuzz/<name>.py [libFuzzer options] [corpus dirs]``. Without a
corpus directory it uses ``fuzz/corpus/<name>/``, filled from ``tests/data`` the first
time (the directory is not committed). A harness fails, and libFuzzer saves the input
as ``fuzz/crash-*``, when the code under test raises anything but its documented errors or
breaks a promise the harness checks (set ``AMQPCODEC_FUZZ_LOSSLESS=0`` to leave out
the byte-exact re-encoding checks).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
MAX_SEED = 1 << 16  # bytes of a seed file kept: libFuzzer mutates small inputs best

# Whether decoded values must re-encode to their exact bytes. AMQPCODEC_FUZZ_LOSSLESS=0
# turns that check off, to fuzz for foreign exceptions alone while the codec does not
# yet keep every stray bit and non-canonical boolean.
LOSSLESS = os.environ.get("AMQPCODEC_FUZZ_LOSSLESS", "1") != "0"

sys.path.insert(0, str(ROOT))  # this checkout's amqpcodec before any installed one


def run(name: str, test_one_input: Callable[[bytes], None], seeds: Iterable[bytes]) -> None:
    """Fuzz ``test_one_input`` with atheris (libFuzzer's options come from argv)."""
    import atheris

    args = list(sys.argv)
    if not any(arg.startswith("-artifact_prefix=") for arg in args):
        args.append(f"-artifact_prefix={ROOT / 'fuzz'}/")  # crash-* files go to fuzz/
    if not any(Path(arg).is_dir() for arg in args[1:] if not arg.startswith("-")):
        corpus = ROOT / "fuzz" / "corpus" / name
        corpus.mkdir(parents=True, exist_ok=True)
        if not any(corpus.iterdir()):
            for number, seed in enumerate(seeds):
                (corpus / f"seed-{number:04d}").write_bytes(seed[:MAX_SEED])
        args.append(str(corpus))
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


def files(*patterns: str) -> list[bytes]:
    """The contents of the files under tests/data matching ``patterns``."""
    return [path.read_bytes() for pattern in patterns for path in sorted(DATA.glob(pattern))]
