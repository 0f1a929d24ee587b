"""How every command-line tool reports failure: one clear line, no traceback, a non-zero status."""

from __future__ import annotations

import sys



def run_cli(main, argv=None) -> int:
    """Call ``main(argv)``; user errors (ValueError and subclasses, TrainingError) print
    ``error: ...`` and return 2; Ctrl-C returns 130. Anything else is a bug and keeps its traceback.
    First installs facepack.tfquiet (the tools import Keras inside ``main``: TensorFlow's start-up
    noise is dropped); a library import of this module changes nothing."""
    from facepack import tfquiet
    from facepack.training import TrainingError

    tfquiet.install()
    try:
        result = main(argv)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (ValueError, TrainingError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0
