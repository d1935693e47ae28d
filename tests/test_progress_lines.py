"""Progress in a log: plain lines, about one per tenth of a stage, never a bar's carriage returns."""
from components.domain.progress_lines import progress_bar


def test_off_a_terminal_a_stage_writes_a_line_at_its_start_every_tenth_and_its_end(capsys):
    bar = progress_bar(range(50), desc="textual inversion <concept>", unit="step", enabled=True)
    for i in bar:
        bar.set_postfix(loss=f"{i / 100:.2f}")
    with progress_bar(total=37, desc="erased model", unit="img", enabled=True) as images:
        for start in range(0, 37, 16):
            images.update(min(16, 37 - start))
    out = capsys.readouterr()
    lines = out.out.splitlines()
    ti = [line for line in lines if line.startswith("textual inversion")]
    assert ti[0] == "textual inversion <concept>: 0/50 step" and ti[-1].startswith("textual inversion <concept>: 50/50 step")
    assert len(ti) == 11 and "loss=0.49" in ti[-1]
    assert [line for line in lines if line.startswith("erased model")] == [
        "erased model: 0/37 img", "erased model: 16/37 img", "erased model: 32/37 img", "erased model: 37/37 img"]
    assert "\r" not in out.out + out.err


def test_disabled_progress_writes_nothing(capsys):
    for _ in progress_bar(range(5), desc="quiet", enabled=False):
        pass
    assert capsys.readouterr() == ("", "")
