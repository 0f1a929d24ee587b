"""facepack/progress.py: in a log (not a terminal) whole lines, the final state exactly once (tqdm
wrote its 100 % line twice there); on a terminal tqdm itself. That a command-line tool's log gets
whole lines is checked on a real predict.py run (tests/test_predict.py's kill test)."""

import io
import re

from facepack.progress import LOG_STEP_FRACTION, LogProgress, progress


TOTAL = 30


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_log_lines_show_the_final_state_once():
    log = io.StringIO()
    assert [x for x in progress(range(TOTAL), desc="x", unit="face", file=log)] == list(range(TOTAL))
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines[0] == "x: 0/30 face (0 %) in 0.0 s"
    assert sum(f"{TOTAL}/{TOTAL} " in line for line in lines) == 1 and f"{TOTAL}/{TOTAL} " in lines[-1]
    assert len(lines) == 1 + round(1 / LOG_STEP_FRACTION)  # the first line, then one per step


def test_manual_updates_initial_and_an_early_close():
    log = io.StringIO()
    bar = progress(total=10, initial=4, unit="file", desc="predict", file=log)
    for _ in range(3):
        bar.update(1)
    bar.close()
    bar.close()
    lines = log.getvalue().splitlines()
    assert re.fullmatch(r"predict: 4/10 file \(40 %\) in \d+\.\d s", lines[0])
    assert [line.split(" in ")[0] for line in lines] == ["predict: 4/10 file (40 %)", "predict: 5/10 file (50 %)",
                                                         "predict: 6/10 file (60 %)", "predict: 7/10 file (70 %)"]
    no_total = io.StringIO()
    with LogProgress(iter(range(3)), unit="frame", file=no_total) as bar:
        for _ in bar:
            pass
    assert no_total.getvalue().splitlines()[-1].startswith("3 frame in ")


def test_a_terminal_gets_tqdm():
    from tqdm import tqdm

    bar = progress(range(3), file=Terminal())
    assert isinstance(bar, tqdm)
    bar.close()

