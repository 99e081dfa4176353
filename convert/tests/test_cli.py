"""The command line's error handling: one line for what the user can fix, the traceback with --debug."""

import pytest
import torch

from gss_convert import cli


def test_a_user_error_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path), "--out", str(tmp_path / "pkg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gss-convert: error: ") and "train" in err
    assert "--debug" not in err  # a message written for the user needs no traceback


def test_a_raise_over_several_lines_counts_as_gss_convert_s_own(monkeypatch, capsys):
    from gss_convert.official.importer import check_input_size

    monkeypatch.setattr(cli, "_macs", lambda args: check_input_size((100, 200)))
    assert cli.main(["macs"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gss-convert: error: --input-size 100x200") and len(err.splitlines()) == 1


def _torch_error(args):
    return int(torch.zeros(2, 3) @ torch.zeros(2, 3))  # a RuntimeError from inside torch


def test_an_error_from_inside_torch_says_how_to_see_the_traceback(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_macs", _torch_error)
    assert cli.main(["macs"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("gss-convert: error: ") and len(err) == 2
    assert "RuntimeError" in err[1] and "gss-convert --debug" in err[1]


def test_debug_lets_the_error_through(monkeypatch):
    monkeypatch.setattr(cli, "_macs", _torch_error)
    with pytest.raises(RuntimeError):
        cli.main(["--debug", "macs"])
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError):
        cli.main(["--debug", "macs", "--config", "/no/such/config.yaml"])


def test_every_subcommand_has_a_handler():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        if name == "data":
            data = next(a for a in p._actions if a.dest == "data_command")
            assert all(callable(q.get_default("func")) for q in data.choices.values())
        else:
            assert callable(p.get_default("func")), name
