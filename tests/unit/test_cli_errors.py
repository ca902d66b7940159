"""What a user sees when they get something wrong: one line on stderr that names the field,
the value and what is allowed, exit code 2, and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from meetscale.cli import main

ROOT = Path(__file__).resolve().parents[2]
MONDAY = ROOT / "traces" / "monday-briefing.yaml"
DAY_ARGS = ["--agency", "so-y-te", "--participants", "300", "--minutes", "90"]


def trace_with(tmp_path: Path, change) -> str:
    data = yaml.safe_load(MONDAY.read_text())
    change(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return str(path)


def set_start(value):
    def change(d):
        d["start"] = value

    return change


def set_meeting(i, key, value):
    def change(d):
        d["meetings"][i][key] = value

    return change


CASES = [
    pytest.param(
        ["simulate", str(MONDAY), "--policy", "hpa@abc"],
        "meetscale simulate: --policy hpa@abc: the target after @ must be a number above 0 "
        "and at most 1, e.g. hpa@0.5 (got 'abc')",
        id="simulate-policy-target-not-a-number",
    ),
    pytest.param(
        ["simulate", str(MONDAY), "--policy", "operator@2"],
        "meetscale simulate: --policy operator@2: only hpa takes a target (hpa@0.5); "
        "operator takes none",
        id="simulate-target-on-the-wrong-policy",
    ),
    pytest.param(
        ["simulate", str(MONDAY), "--hpa-target", "1.5"],
        "meetscale simulate: --hpa-target 1.5: must be a target stress above 0 and at most 1, "
        "e.g. 0.7",
        id="simulate-hpa-target",
    ),
    pytest.param(
        ["simulate", "TRACE:start=2026-13-40T06:00:00+07:00"],
        "meetscale simulate: {trace}: invalid trace: start: Input should be a valid datetime or "
        "date, month value is outside expected range of 1-12 (got '2026-13-40T06:00:00+07:00')",
        id="trace-bad-date-shows-the-value",
    ),
    pytest.param(
        ["simulate", "TRACE:meetings[2].start=2026-04-06 25:00"],
        "meetscale simulate: {trace}: invalid trace: meetings[2] "
        "(ubnd-huyen-nam-dan-hop-khan-0406).start: Input should be a valid datetime or date, "
        "unexpected extra characters at the end of the input (got '2026-04-06 25:00')",
        id="trace-meeting-bad-time",
    ),
    pytest.param(
        ["slots", *DAY_ARGS[:4], "--minutes", "2000"],
        "meetscale slots: argument --minutes: must be a whole number from 1 to 1440 "
        "(got '2000') (see meetscale slots --help)",
        id="slots-minutes",
    ),
    pytest.param(
        ["slots", *DAY_ARGS, "--on", "08/12/2026"],
        "meetscale slots: argument --on: must be a date YYYY-MM-DD, e.g. 2026-12-08 "
        "(got '08/12/2026') (see meetscale slots --help)",
        id="slots-date",
    ),
    pytest.param(
        ["slots", *DAY_ARGS, "--tz", "GMT+7"],
        "meetscale slots: argument --tz: must be a UTC offset like +07:00, from -14:00 to "
        "+14:00 (got 'GMT+7') (see meetscale slots --help)",
        id="slots-offset",
    ),
    pytest.param(
        ["slots", *DAY_ARGS, "--from", "17:00", "--to", "08:00"],
        "meetscale slots: --from 17:00 --to 08:00: --to must be after --from",
        id="slots-range",
    ),
    pytest.param(
        [
            "slots",
            "--agency",
            "so-y-t",
            *DAY_ARGS[2:],
            "-f",
            "examples/quotas.yaml",
            "-f",
            "examples/pool.yaml",
        ],
        "meetscale slots: --agency so-y-t: no AgencyQuota of that name (there are: ubnd-tinh, "
        "so-gd-dt, so-y-te)",
        id="slots-unknown-agency",
    ),
    pytest.param(
        ["slots", *DAY_ARGS, "-f", "examples/quotas.yaml", "--pool", "tinh"],
        "meetscale slots: --pool tinh --pool-namespace meetscale-system: no BridgePool "
        "meetscale-system/tinh in examples/quotas.yaml (there are: none)",
        id="slots-unknown-pool",
    ),
    pytest.param(
        [
            "book",
            "giao-ban",
            "-n",
            "so-y-te",
            "--title",
            "Giao ban",
            "--start",
            "8h thứ Hai",
            "--minutes",
            "90",
            "--participants",
            "120",
        ],
        "meetscale book: argument --start: must be a local date and time 'YYYY-MM-DD HH:MM', "
        "e.g. '2026-12-08 08:00' (got '8h thứ Hai') (see meetscale book --help)",
        id="book-start",
    ),
    pytest.param(
        [
            "book",
            "Giao_Ban",
            "-n",
            "so-y-te",
            "--title",
            "x",
            "--start",
            "2026-12-08 08:00",
            "--minutes",
            "90",
            "--participants",
            "120",
        ],
        "meetscale book: argument name: NAME must be lower-case letters, digits and '-', at "
        "most 63, starting and ending with a letter or digit, e.g. giao-ban-thu-hai "
        "(got 'Giao_Ban') (see meetscale book --help)",
        id="book-name",
    ),
    pytest.param(
        [
            "book",
            "giao-ban",
            "-n",
            "so-y-te",
            "--title",
            "x",
            "--start",
            "2026-12-08 08:00",
            "--minutes",
            "90",
            "--participants",
            "120",
            "--room",
            "Phòng họp",
        ],
        "meetscale book: spec.room: String should match pattern "
        "'^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$' (got 'Phòng họp')",
        id="book-room",
    ),
]


@pytest.mark.parametrize(("argv", "expected"), CASES)
def test_one_line_exit_2(argv, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    trace = None
    if argv[1].startswith("TRACE:"):
        field, _, value = argv[1][len("TRACE:") :].partition("=")
        if field == "start":
            trace = trace_with(tmp_path, set_start(value))
        else:
            trace = trace_with(tmp_path, set_meeting(2, "start", value))
        argv = [argv[0], trace]
    with pytest.raises(SystemExit) as exit_:
        raise SystemExit(main(argv))
    out, err = capsys.readouterr()
    assert exit_.value.code == 2
    assert err == expected.format(trace=trace) + "\n"
    assert "Traceback" not in out + err


def run_without_kubeconfig(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if k != "KUBECONFIG" and not k.startswith("KUBERNETES")
    }
    environ.update(HOME="/nonexistent", **env)
    return subprocess.run(
        [sys.executable, "-m", "meetscale", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


def test_run_without_a_cluster_fails_at_once_in_one_line():
    r = run_without_kubeconfig("run")
    assert r.returncode == 2
    assert r.stderr == (
        "meetscale run: no Kubernetes credentials: not in a pod (KUBERNETES_SERVICE_HOST "
        "unset) and kubeconfig ~/.kube/config unusable (Invalid kube-config file. No "
        "configuration found); set KUBECONFIG to your kubeconfig file\n"
    )


def test_run_with_a_bad_setting_names_the_variable():
    r = run_without_kubeconfig("run", MEETSCALE_PRE_JOIN_MARGIN_SECONDS="9000")
    assert r.returncode == 2
    assert r.stderr == (
        "meetscale run: invalid settings: MEETSCALE_PRE_JOIN_MARGIN_SECONDS='9000': Input "
        "should be less than or equal to 7200\n"
    )


def test_slots_without_a_cluster():
    r = run_without_kubeconfig("slots", *DAY_ARGS)
    assert r.returncode == 2
    assert r.stderr.startswith("meetscale slots: no Kubernetes credentials:")
    assert r.stderr.endswith("or pass --kubeconfig\n") and r.stderr.count("\n") == 1


def test_run_help_describes_it_and_lists_every_setting(capsys):
    from meetscale.config import Settings

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "Run the operator: admit Meetings against AgencyQuotas" in out
    for name in Settings.model_fields:
        assert f"MEETSCALE_{name.upper()}=" in out
    assert "MEETSCALE_PRE_JOIN_MARGIN_SECONDS=600 (0 to 7200)" in out
    assert "MEETSCALE_WEBHOOK_ENABLED=false" in out
    # every setting says what it does
    lines = out[out.index("settings (") :].splitlines()[1:]
    names = [i for i, ln in enumerate(lines) if ln.startswith("  MEETSCALE_")]
    assert all(lines[i + 1].startswith("      ") for i in names)


def test_kubectl_plugin_speaks_as_kubectl(capsys):
    """`kubectl meetscale ...` runs the `kubectl-meetscale` console script on PATH."""
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-meetscale"] == "meetscale.cli:kubectl_main"
    with pytest.raises(SystemExit) as exit_:
        main(["slots", *DAY_ARGS[:4], "--minutes", "0"], prog="kubectl meetscale")
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "kubectl meetscale slots: argument --minutes: must be a whole number from 1 to 1440 "
        "(got '0') (see kubectl meetscale slots --help)\n"
    )
