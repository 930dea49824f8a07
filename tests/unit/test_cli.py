"""The command line a data engineer meets first: every option says what it does, and a wrong window is
refused before any source is read or any run recorded."""

from __future__ import annotations

import argparse

import pytest

from ingestion import cli


def _parsers(parser: argparse.ArgumentParser, path: str = "chiso"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, parser in _parsers(cli.build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{path} {c.dest}" for c in action._choices_actions if not c.help]
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"no help text: {missing}"


@pytest.mark.parametrize("argv", [
    ["extract", "dossiers", "--start", "2026-09-30", "--end", "2026-09-01"],
    ["extract", "dvcqg", "--start", "2026-10-01", "--end", "2026-09-01"],
    ["extract", "dvcqg", "--start", "2026-09-01"],
    ["extract", "feedback", "--end", "2026-09-01"],
    ["pipeline", "run", "--start", "2026-09-30", "--end", "2026-09-01"],
])
def test_a_wrong_window_fails_before_any_source_is_read(argv, monkeypatch, capsys) -> None:
    def must_not_run(*args, **kwargs):
        raise AssertionError("a source was read")

    from ingestion import orchestration, pipeline
    from ingestion.sources import dvcqg

    for module, name in ((pipeline, "extract_provincial"), (dvcqg, "extract"), (orchestration, "run_dag")):
        monkeypatch.setattr(module, name, must_not_run)
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"chiso {argv[0]}") and ("reversed" in error or "--start and --end" in error)
