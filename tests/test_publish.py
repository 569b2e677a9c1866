"""Publishing: one lock per reports folder, one atomic switch per run, exit codes, escaping.

Notebook execution is replaced by a fake that writes a marked ``.ipynb``/``.html`` pair
(``mode`` fast = run A, slow = run B), so these tests exercise the publishing steps themselves:
fault injection at every file-system step (an exception in-process, ``os._exit`` in a
subprocess), concurrent runs, leftovers of killed runs, the index's escaping, and the CLI's
one-line errors with their exit codes.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from crmlab.__main__ import main
from crmlab.report import params as P
from crmlab.report import publish as PUB
from crmlab.report import runner
from crmlab.report.export import external_refs
from crmlab.report.index import write_index

from tests.test_report import make_notebook

ROOT = Path(__file__).resolve().parents[1]
WEEK = "2026-W47"


def fake_execute(name, parameters, week, work, **kw):
    """What a successful kernel run leaves in the run's folder, marked with the run's mode."""
    mark = parameters.get("mode", "fast")
    nb = nbformat.v4.new_notebook(metadata={"mark": mark})
    nbformat.write(nb, str(work / f"{name}.ipynb"))
    (work / f"{name}.html").write_text(f"<html><body>{name} run {mark}</body></html>", encoding="utf-8")
    return runner.Outcome(name=name, ok=True, params=dict(parameters))


@pytest.fixture()
def nbdir(tmp_path):
    d = tmp_path / "notebooks"
    for n in ("tiny", "tiny2"):
        make_notebook(d, n)
    return d


def run_args(nbdir, out, *extra):
    return ["report", "all", "--notebooks", str(nbdir), "--out", str(out), "--week", WEEK, "--no-progress", *extra]


def week_state(out: Path) -> set[str]:
    """The run marks of everything the week shows (html, ipynb, manifest), for tiny and tiny2.
    A whole version has one mark; a missing file or manifest entry is the mark 'missing'."""
    wd = out / WEEK
    marks = set()
    manifest = json.loads((wd / "manifest.json").read_text()) if (wd / "manifest.json").exists() else {}
    for n in ("tiny", "tiny2"):
        html = wd / f"{n}.html"
        marks.add(html.read_text().rsplit(" ", 1)[-1].split("<")[0] if html.exists() else "missing")
        ipynb = wd / f"{n}.ipynb"
        marks.add(nbformat.read(str(ipynb), as_version=4).metadata["mark"] if ipynb.exists() else "missing")
        marks.add(manifest.get(n, {}).get("parameters", {}).get("mode", "fast") if n in manifest else "missing")
    return marks


def assert_clean(out: Path):
    assert not [p.name for p in out.iterdir() if p.name.startswith(PUB.TMP_PREFIX)]
    versions = sorted((out / PUB.VERSIONS).iterdir())
    assert versions == [PUB.week_target(out, WEEK).resolve()] or [v.resolve() for v in versions] == [
        PUB.week_target(out, WEEK).resolve()]


@pytest.fixture()
def fake(monkeypatch):
    monkeypatch.setattr(runner, "execute", fake_execute)


# ------------------------------------------------------------------------------ the switch
def test_a_run_switches_the_whole_week(nbdir, tmp_path, fake):
    out = tmp_path / "reports"
    assert main(run_args(nbdir, out)) == 0
    assert (out / WEEK).is_symlink() and week_state(out) == {"fast"}
    first = PUB.week_target(out, WEEK)
    assert main(run_args(nbdir, out, "--set", "mode=slow")) == 0
    assert week_state(out) == {"slow"}
    assert not first.exists()  # the old version is gone once the new one is shown
    assert_clean(out)
    # one notebook re-run: the week's other report is carried over unchanged
    before = (out / WEEK / "tiny2.html").read_bytes()
    assert main(["report", "tiny", *run_args(nbdir, out, "--set", "mode=fast")[2:]]) == 0
    assert (out / WEEK / "tiny.html").read_text().endswith("run fast</body></html>")
    assert (out / WEEK / "tiny2.html").read_bytes() == before
    assert set(json.loads((out / WEEK / "manifest.json").read_text())) == {"tiny", "tiny2"}


#: The file-system calls of publishing that change what exists (each one is a fault point).
#: fsync and the unlinks inside rmtree change nothing a reader could see between two of these.
FS_STEPS = [("os", "rename"), ("os", "replace"), ("os", "symlink"), ("os", "mkdir"),
            ("shutil", "copy2"), ("shutil", "rmtree"), ("tempfile", "mkstemp")]


class Boom(OSError):
    pass


def test_an_error_at_any_publishing_step_keeps_the_old_week_whole(nbdir, tmp_path, monkeypatch, capsys):
    """Raise at the k-th file-system call after the notebooks ran, for every k: exit 4 with one
    line, the old week or the new one whole; the next run cleans up and publishes."""
    import importlib
    out = tmp_path / "reports"
    monkeypatch.setattr(runner, "execute", fake_execute)
    assert main(run_args(nbdir, out)) == 0
    k = 0
    while True:
        k += 1
        calls = {"n": 0}

        def armed(*a, **kw):
            o = fake_execute(*a, **kw)
            for mod, fn in FS_STEPS:  # only the publishing steps, not the execution
                m = importlib.import_module(mod)
                monkeypatch.setattr(m, fn, _wrap(getattr(m, fn), calls, k))
            return o
        monkeypatch.setattr(runner, "execute", armed)
        capsys.readouterr()
        code = main(run_args(nbdir, out, "--set", "mode=slow"))
        monkeypatch.undo()
        monkeypatch.setattr(runner, "execute", fake_execute)
        err = capsys.readouterr().err
        if calls["n"] < k:  # the run got through without reaching step k: every step was covered
            assert code == 0 and week_state(out) == {"slow"}
            break
        if code == 0:  # the error hit a best-effort cleanup (rmtree(ignore_errors=True)) after the switch
            assert week_state(out) == {"slow"}, k
        else:
            assert code == 4, (k, err)
            assert err.count("\n") == 1 and "No space left on device" in err and "Traceback" not in err
            assert week_state(out) in ({"fast"}, {"slow"}), k
        assert main(run_args(nbdir, out)) == 0 and week_state(out) == {"fast"}  # back to run A
        assert_clean(out)
    print(f"error points: {k - 1} failed runs, then a clean one")
    assert k > 8  # every copy, rename, symlink and delete of the publishing was a fault point


def _wrap(orig, calls, k):
    def wrapped(*a, **kw):
        calls["n"] += 1
        if calls["n"] == k:
            raise Boom(errno.ENOSPC, "No space left on device (injected)")
        return orig(*a, **kw)
    return wrapped


KILL_SCRIPT = r'''
import importlib, os, sys
sys.path.insert(0, {tests!r})
from crmlab.report import runner
from test_publish import fake_execute, FS_STEPS
kill_at = int(os.environ["KILL_AT"])
calls = [0]
def armed(*a, **kw):
    o = fake_execute(*a, **kw)
    for mod, fn in FS_STEPS:
        m = importlib.import_module(mod)
        orig = getattr(m, fn)
        def wrapped(*x, _orig=orig, **y):
            calls[0] += 1
            if calls[0] == kill_at:
                os._exit(137)  # like kill -9: no cleanup, no finally
            return _orig(*x, **y)
        setattr(m, fn, wrapped)
    return o
runner.execute = armed
from crmlab.__main__ import main
code = main(sys.argv[1:])
print("STEPS", calls[0])  # noqa
sys.exit(code)
'''


def _subprocess_env():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return env


def test_killed_at_any_publishing_step_leaves_a_whole_week(nbdir, tmp_path, monkeypatch):
    """``os._exit`` (no cleanup at all, as ``kill -9``) at every file-system step of publishing:
    the week is run A's or run B's, whole; the next run removes the leftovers."""
    out = tmp_path / "reports"
    monkeypatch.setattr(runner, "execute", fake_execute)
    assert main(run_args(nbdir, out)) == 0
    script = KILL_SCRIPT.format(tests=str(ROOT / "tests"))
    env = _subprocess_env()
    k, outcomes = 0, {}
    while True:
        k += 1
        p = subprocess.run([sys.executable, "-c", script, *run_args(nbdir, out, "--set", "mode=slow")],
                           env={**env, "KILL_AT": str(k)}, capture_output=True, text=True, timeout=300)
        state = week_state(out)
        assert state in ({"fast"}, {"slow"}), (k, state, p.stderr[-500:])
        if p.returncode == 0:
            break
        assert p.returncode == 137, p.stderr[-2000:]
        outcomes[k] = state.pop()
        leftovers = [x.name for x in out.iterdir() if x.name.startswith(PUB.TMP_PREFIX)]
        assert main(run_args(nbdir, out)) == 0 and week_state(out) == {"fast"}
        assert_clean(out)  # ... and the next run removed what the killed one left
        outcomes[k] += f" ({len(leftovers)} leftovers)"
    # killed before the switch: the old week; after it: the new one; both happened
    print(f"kill points: {k - 1} killed runs, then a clean one; week shown after each kill: {outcomes}")
    states = [v.split()[0] for v in outcomes.values()]
    assert "fast" in states and "slow" in states, outcomes
    assert k > 8


def test_a_killed_migration_from_a_plain_week_folder_is_put_back(nbdir, tmp_path, monkeypatch):
    """A week published before the symlink layout is a plain folder; the first run moves it
    aside. A run killed right then has it restored by the next run."""
    out = tmp_path / "reports"
    monkeypatch.setattr(runner, "execute", fake_execute)
    assert main(run_args(nbdir, out)) == 0
    plain = out / WEEK
    target = PUB.week_target(out, WEEK)
    plain.unlink()
    os.rename(target, plain)  # the old layout: reports/<week>/ is a folder
    os.rename(plain, out / f"{PUB.TMP_PREFIX}legacy-{WEEK}-abc")  # killed after moving it aside
    assert not (out / WEEK).exists()
    assert main(run_args(nbdir, out, "--set", "mode=slow", "--lock-timeout", "0")) == 0
    assert week_state(out) == {"slow"}
    assert_clean(out)


# ------------------------------------------------------------------------------ lock
def _hold_lock(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / PUB.LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"pid 4242 since test")
    return fd


def test_a_concurrent_run_exits_4_without_writing(nbdir, tmp_path, fake, capsys):
    out = tmp_path / "reports"
    fd = _hold_lock(out)
    (out / f"{PUB.TMP_PREFIX}run-alive").mkdir()  # the live holder's work: must not be touched
    try:
        assert main(run_args(nbdir, out, "--lock-timeout", "0")) == 4
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "another run is publishing into" in err and "pid 4242" in err
        assert not (out / WEEK).exists() and (out / f"{PUB.TMP_PREFIX}run-alive").exists()
    finally:
        os.close(fd)


def test_a_concurrent_run_waits_for_the_lock(nbdir, tmp_path):
    out = tmp_path / "reports"
    fd = _hold_lock(out)
    script = ("import sys; sys.path.insert(0, %r)\nfrom crmlab.report import runner\n"
              "from test_publish import fake_execute\nrunner.execute = fake_execute\n"
              "from crmlab.__main__ import main\nsys.exit(main(sys.argv[1:]))" % str(ROOT / "tests"))
    p = subprocess.Popen([sys.executable, "-c", script, *run_args(nbdir, out, "--lock-timeout", "300")],
                         env=_subprocess_env(), stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()  # blocks until the run reports that it waits
        assert "another run is publishing" in line and "waiting" in line
        assert not (out / WEEK).exists()
    finally:
        os.close(fd)  # release: the waiting run goes on
    assert p.wait(timeout=300) == 0
    assert week_state(out) == {"fast"}


def test_many_concurrent_runs_lose_no_update(tmp_path):
    """Six runs of six notebooks into one week at once: all six published, one manifest with
    all six (a shared temp name lost 251 of 400 manifest updates)."""
    nbdir = tmp_path / "notebooks"
    names = [f"nb{i}" for i in range(6)]
    for n in names:
        make_notebook(nbdir, n)
    out = tmp_path / "reports"
    script = ("import sys; sys.path.insert(0, %r)\nfrom crmlab.report import runner\n"
              "from test_publish import fake_execute\nrunner.execute = fake_execute\n"
              "from crmlab.__main__ import main\nsys.exit(main(sys.argv[1:]))" % str(ROOT / "tests"))
    procs = [subprocess.Popen([sys.executable, "-c", script, "report", n, "--notebooks", str(nbdir), "--out", str(out),
                               "--week", WEEK, "--no-progress"], env=_subprocess_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for n in names]
    codes = [p.wait(timeout=600) for p in procs]
    assert codes == [0] * 6, [p.stderr.read() for p in procs]
    manifest = json.loads((out / WEEK / "manifest.json").read_text())
    assert sorted(manifest) == names
    assert all((out / WEEK / f"{n}.html").exists() for n in names)
    assert len(list((out / PUB.VERSIONS).iterdir())) == 1
    assert not [p for p in out.iterdir() if p.name.startswith(PUB.TMP_PREFIX)]


def test_leftovers_of_killed_runs_are_removed(nbdir, tmp_path, fake):
    out = tmp_path / "reports"
    assert main(run_args(nbdir, out)) == 0
    (out / f"{PUB.TMP_PREFIX}run-dead").mkdir()
    (out / f"{PUB.TMP_PREFIX}run-dead" / "x.ipynb").write_text("{}")
    (out / f"{PUB.TMP_PREFIX}index-dead.html").write_text("")
    (out / PUB.VERSIONS / f"{WEEK}.orphan").mkdir()
    assert main(run_args(nbdir, out)) == 0
    assert_clean(out)


# ------------------------------------------------------------------------------ exit codes, one line
@pytest.mark.parametrize("week", [" 2026-W47", "2026-W47\n", "2026-W47 ", "２０２６-W47", "2026-W4７"])
def test_week_must_be_exactly_yyyy_www(week, nbdir, tmp_path, capsys):
    with pytest.raises(P.ParamError, match="malformed ISO week"):
        P.parse_week(week)
    out = tmp_path / "reports"
    assert main(["report", "tiny", "--notebooks", str(nbdir), "--out", str(out), "--week", week]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("item, message", [("alpha=[0.1", "VALUE is not valid YAML"),
                                           ("alpha", "expected NAME=VALUE"),
                                           ("alpha={a: 1", "VALUE is not valid YAML")])
def test_malformed_set_is_a_parameter_error(item, message, nbdir, tmp_path, capsys):
    out = tmp_path / "reports"
    assert main(["report", "tiny", "--notebooks", str(nbdir), "--out", str(out), "--set", item]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: bad parameters: --set") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err and not out.exists()


def test_read_only_reports_folder_exits_4(nbdir, tmp_path, fake, monkeypatch, capsys):
    """(Tests run as root, for whom chmod does not forbid writing: the OS's answer is injected.)"""
    out = tmp_path / "reports"
    real_open = os.open

    def ro_open(path, flags, *a, **kw):
        if str(path).startswith(str(out)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *a, **kw)
    monkeypatch.setattr(os, "open", ro_open)
    assert main(run_args(nbdir, out)) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write") and "Read-only file system" in err and err.count("\n") == 1


def test_full_disk_while_executing_exits_4_and_keeps_the_week(nbdir, tmp_path, fake, monkeypatch, capsys):
    out = tmp_path / "reports"
    assert main(run_args(nbdir, out)) == 0

    def full(name, parameters, week, work, **kw):
        raise PUB.cannot_write(work, OSError(errno.ENOSPC, "No space left on device"))
    monkeypatch.setattr(runner, "execute", full)
    assert main(run_args(nbdir, out, "--set", "mode=slow")) == 4
    assert "No space left on device" in capsys.readouterr().err
    assert week_state(out) == {"fast"}
    assert_clean(out)


def test_unexpected_errors_are_one_line(nbdir, tmp_path, monkeypatch, capsys):
    def bug(*a, **kw):
        raise KeyError("surprise")
    monkeypatch.setattr(runner, "execute", bug)
    monkeypatch.delenv("CRMLAB_DEBUG", raising=False)
    assert main(run_args(nbdir, tmp_path / "reports")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected KeyError" in err and "CRMLAB_DEBUG=1" in err


# ------------------------------------------------------------------------------ escaping
def test_index_escapes_crafted_file_names(tmp_path):
    out = tmp_path / "reports"
    wd = out / WEEK
    wd.mkdir(parents=True)
    evil = '<img src=x onerror=alert(1)>'
    (wd / f"{evil}.html").write_text("x")
    (wd / f'a" onmouseover="alert(2).html').write_text("x")
    (wd / "manifest.json").write_text(json.dumps({"weekly_uplift": {"title": "<script>alert(3)</script>",
                                                                    "executed": "<b>", "lang": "<i>"}}))
    (wd / "weekly_uplift.html").write_text("x")
    page = write_index(out).read_text(encoding="utf-8")
    assert "<img" not in page and "<script>" not in page and "<b>" not in page and "<i>" not in page
    assert 'onmouseover="' not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;" in page
    assert f'href="{WEEK}/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.html"' in page
    import html.parser

    class Tags(html.parser.HTMLParser):
        tags: list = []

        def handle_starttag(self, tag, attrs):
            self.tags.append((tag, dict(attrs)))
    t = Tags()
    t.feed(page)
    assert {tag for tag, _ in t.tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "ul", "li",
                                           "a", "span"}
    assert all(set(attrs) <= {"href", "class", "charset", "name", "content", "lang"} for _, attrs in t.tags)


def test_offline_check_reads_markup_not_text():
    escaped = "<td>@import url(https://evil.example/x.css) and url(//cdn.example/y.png)</td>"
    assert external_refs(escaped) == []
    assert external_refs("<p>&lt;script src=&quot;https://cdn.example/x.js&quot;&gt;</p>") == []
    assert external_refs("<style>@import url('https://fonts.example/a.css');</style>") == ["https://fonts.example/a.css"]
    assert external_refs('<div style="background: url(//cdn.example/bg.png)"></div>') == ["//cdn.example/bg.png"]
    assert external_refs('<img srcset="a.png 1x, https://cdn.example/b.png 2x">') == ["https://cdn.example/b.png"]


def test_campaign_names_are_drawn_as_plain_text():
    """A campaign named ``$\\badcmd$`` failed the chart (mathtext); ``$x^2$`` was drawn as math."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd

    from crmlab.report import plots
    df = pd.DataFrame({"campaign": [r"$\badcmd$", "$x^2$ sale", "ok"], "rate": [0.1, 0.2, 0.3],
                       "variant": ["$a$", "b", "b"]})
    ax = plots.bar_plot(df, "campaign", "rate", hue="variant", percent=True, title=r"$\alpha$")
    ax.figure.savefig(io.BytesIO(), format="png")  # raised ValueError: Unknown symbol: \badcmd
    fig = ax.figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    label = next(t for t in ax.get_xticklabels() if t.get_text() == "$x^2$ sale")
    plain = fig.text(0, 0, "$x^2$ sale", fontproperties=label.get_fontproperties(), parse_math=False,
                     rotation=label.get_rotation())
    math = fig.text(0, 0, "$x^2$ sale", fontproperties=label.get_fontproperties(), parse_math=True,
                    rotation=label.get_rotation())
    width = label.get_window_extent(r).width
    assert width == pytest.approx(plain.get_window_extent(r).width)
    assert width != pytest.approx(math.get_window_extent(r).width)
    uplift = plots.uplift_plot(pd.DataFrame({"experiment": [r"$\badcmd$"], "abs_lift": [0.01], "abs_ci_low": [0.0],
                                             "abs_ci_high": [0.02]}))
    uplift.figure.savefig(io.BytesIO(), format="png")


@pytest.mark.browser
def test_crafted_file_name_runs_no_script_in_chromium(tmp_path):
    """The old index ran this name's onerror handler in Chromium (the page's title became PWNED)."""
    import shutil as sh
    exe = next((sh.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if sh.which(n)), None)
    if exe is None:
        pytest.skip("no Chromium")
    out = tmp_path / "reports"
    (out / WEEK).mkdir(parents=True)
    (out / WEEK / "<img src=x onerror=\"top['document']['title']='PWNED'\">.failed.ipynb").write_text("{}")
    write_index(out)
    dom = subprocess.run([exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (out / "index.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert "<title>crmlab reports</title>" in dom and "PWNED</title>" not in dom
    assert "<img" not in dom


def test_escaped_import_in_a_table_does_not_fail_the_export(tmp_path):
    """A campaign named '@import url(https://…)' is text in a table: the page is published."""
    from crmlab.report.export import notebook_to_html
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("rep.table(df)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": "<table><tr><td>@import url(https://evil.example/x.css) &lt;b&gt;</td></tr></table>"})]
    nb.cells = [cell]
    html = notebook_to_html(nb, tmp_path / "x.html")  # raised: "report HTML would fetch from the network"
    assert "@import url(https://evil.example/x.css)" in html


def test_a_relative_reports_folder_survives_a_notebook_changing_directory(nbdir, tmp_path, monkeypatch, capsys):
    """Papermill runs each notebook with ``cwd=`` the notebooks folder, which changes the whole
    process's directory while the other notebook (a second thread) writes its results: a
    relative ``--out`` (the default ``reports``) then pointed into the notebooks folder and the
    run exited 4 ("cannot write reports/.tmp-run-.../message_performance.ipynb"). The fake
    kernel run below changes directory exactly as Papermill does while it writes."""
    import threading

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(home)
    both_running = threading.Barrier(2, timeout=10)

    def chdir_execute(name, parameters, week, work, **kw):
        both_running.wait()  # both notebooks run at once
        os.chdir(elsewhere if name == "tiny" else home)
        both_running.wait()
        return fake_execute(name, parameters, week, work, **kw)

    monkeypatch.setattr(runner, "execute", chdir_execute)
    monkeypatch.setattr(runner, "report_jobs", lambda n: 2)
    code = main(["report", "all", "--notebooks", str(nbdir), "--out", "reports", "--week", WEEK, "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert week_state(home / "reports") == {"fast"}
    assert not (elsewhere / "reports").exists()
