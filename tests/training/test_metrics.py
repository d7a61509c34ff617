"""metrics.jsonl writing/truncation on resume, and the loss plot."""

import json

from lmlab.training.metrics import MetricsLog, plot_losses, read_metrics


def test_log_appends_flushes_and_truncates_on_resume(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for step in range(1, 6):
        log.write({"step": step, "train_loss": 5.0 - step, "lr": 1e-3})
    # flushed: a reader sees every line while the writer is still open (a killed run loses nothing it logged)
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 4, 5]
    log.close()
    with open(path, "a") as f:
        f.write('{"step": 6, "train_lo')  # torn last line of a killed writer
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 4, 5]
    with MetricsLog(path, resume_step=3) as log:
        log.write({"step": 4, "train_loss": 0.5, "val_loss": float("nan")})
    lines = path.read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3, 4]
    assert json.loads(lines[-1])["val_loss"] is None  # NaN written as null: strict JSON
    with MetricsLog(path) as log:  # a fresh (non-resumed) run starts an empty file
        pass
    assert path.read_text() == ""


def test_plot_writes_a_png(tmp_path):
    records = [{"step": s, "train_loss": 3.0 / s} for s in range(1, 20)] + [{"step": 20, "train_loss": 0.1,
                                                                             "val_loss": 0.2}]
    plot_losses(records, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot_losses([], tmp_path / "empty.png")  # no data yet: still a valid (empty) figure
    assert (tmp_path / "empty.png").stat().st_size > 0
