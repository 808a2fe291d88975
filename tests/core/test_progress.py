"""Progress lines: index, total, elapsed time and the estimate of the time left, on a driven clock."""

import pytest

from tf_lottery.core.progress import Progress, format_duration


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (8.4, "8 s"), (59.6, "1 min 00 s"), (724, "12 min 04 s"),
                                           (3600, "1 h 00 min"), (7530, "2 h 05 min"), (-3, "0 s")])
def test_durations_read_as_a_person_reads_them(seconds, text):
    assert format_duration(seconds) == text


def test_the_time_left_is_the_mean_of_the_finished_steps_times_those_to_go():
    times = iter([100.0, 100.0, 160.0, 400.0, 460.0])
    progress = Progress(5, clock=lambda: next(times))
    assert progress.status(1) == "1/5, 0 s elapsed"  # nothing finished: no estimate
    assert progress.status(2) == "2/5, 1 min 00 s elapsed, about 4 min 00 s left"  # 60 s a step, 4 to go
    assert progress.status(3) == "3/5, 5 min 00 s elapsed, about 7 min 30 s left"  # 150 s a step, 3 to go
    assert progress.status(5) == "5/5, 6 min 00 s elapsed, about 1 min 30 s left"
