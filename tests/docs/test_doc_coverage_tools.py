"""The two halves of the docs check on made-up files: the "not run" marks and the static scan."""

from __future__ import annotations

import textwrap

from tests.docs.coverage import calls_in
from tests.docs.doc_commands import blocks_in


def test_blocks_carry_the_reason_of_the_paragraph_right_after_them(tmp_path, monkeypatch):
    from tests.docs import doc_commands

    monkeypatch.setattr(doc_commands, "PROJECT_ROOT", tmp_path)
    page = tmp_path / "page.md"
    page.write_text(
        textwrap.dedent(
            """\
            ```bash
            kedro run --pipelines fleet   # long
            python -m thing \\
                --flag
            ```

            Not run by the tests: too long for the suite,
            see elsewhere.

            ```bash
            kedro registry list
            ```

            Some prose. Not run by the tests: this does not count, it is not at the start.

            ```python
            print("hi")
            ```
            """
        )
    )
    first, second, third = blocks_in(page)
    assert first.commands == ["kedro run --pipelines fleet", "python -m thing --flag"]
    assert first.not_run_reason == "too long for the suite, see elsewhere."
    assert second.commands == ["kedro registry list"] and second.not_run_reason is None
    assert third.language == "python" and third.commands == [] and third.line == 16


def test_scan_finds_literals_constants_fstrings_and_parametrized_commands(tmp_path):
    module = tmp_path / "test_x.py"
    module.write_text(
        textwrap.dedent(
            """\
            import pytest
            from tests.conftest import TEST_MACHINE
            from tests.docs.documented import run_documented

            RUN = f"kedro run --namespaces {TEST_MACHINE}"
            BUILT = "kedro " + "viz build"

            def test_a(cwd):
                run_documented("export X=1", RUN, cwd=cwd, env={})
                run_documented(BUILT, cwd=cwd, env={})
                run_documented(f"kedro run {cwd}", cwd=cwd, env={})  # built at run time: no

            @pytest.mark.parametrize("command", ["kedro registry list", "kedro info"])
            def test_b(command, cwd):
                run_documented(command, cwd=cwd, env={})
            """
        )
    )
    found = sorted(call.command for call in calls_in(module))
    assert found == [
        "export X=1",
        "kedro info",
        "kedro registry list",
        "kedro run --namespaces motor_siemens_1la7_001",
        "kedro viz build",
    ]
