"""Any value of any flag either builds a config or is refused with one line, before anything is written.

Hypothesis draws a flag among all of tf_lottery's and a value for it: one of its allowed
values, a number at the edges (negative, zero, huge), a list with repeats, or arbitrary text
(non-ASCII digits, separators, nothing). The command line is parsed and the config built as
``tf-lottery`` does; the outcome must be a config (which round-trips through ``config.json``
to the same identity) or a ``UsageError``/flag error of one line, and the runs folder must not
exist afterwards. ``tests/test_cli.py`` checks the exit code and the absence of a traceback in
real processes.
"""

import os

from absl import app, flags
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tf_lottery import cli
from tf_lottery.config import Config

NAMES = sorted(cli.OPTIONS)


def _values(option):
    edges = st.sampled_from(["0", "-1", "1", "2", "99999999999999999999", "1.5", "nan", "inf", "", " ", "２"])
    listed = st.sampled_from([",".join(["1", "1"]), "1,2,3", ",", "a,a", "3,x"])
    text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
    allowed = option.names()
    choices = st.sampled_from(allowed) if allowed else st.nothing()
    return st.one_of(edges, listed, text, choices)


@st.composite
def flag_values(draw):
    name = draw(st.sampled_from(NAMES))
    option = cli.OPTIONS[name]
    if option.kind == "boolean":
        return [draw(st.sampled_from([f"--{name}", f"--no{name}", f"--{name}=maybe"]))]
    value = draw(_values(option)).replace("\n", " ").replace("\x00", "")
    return [f"--{name}={value}"]


@settings(max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=flag_values())
def test_any_value_of_any_flag_builds_a_config_or_gives_one_line(args, tmp_path):
    runs_dir = tmp_path / "runs"  # a drawn --runs_dir comes later and wins: it must not be made either
    cli.FLAGS.unparse_flags()
    try:
        cli.parse_flags(["tf-lottery", f"--runs_dir={runs_dir}", *args])
        config = cli.config_from_flags()
    except (app.UsageError, flags.Error) as error:
        message = str(error)
        assert message.strip() and len(message.strip().splitlines()) == 1, message
        assert "Traceback" not in message
    else:
        again = Config.from_dict(Config.from_dict(config.to_dict()).to_dict())
        assert again.identity("sweep") == config.identity("sweep")
        assert again.digest("ticket") == config.digest("ticket")
    finally:
        cli.FLAGS.unparse_flags()
    assert not os.path.exists(runs_dir)
