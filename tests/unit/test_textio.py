"""The one reader of user files: every way a file can be unreadable is a one-line named error."""

from __future__ import annotations

import pytest

from collapselab.config import ConfigError
from collapselab.errors import CollapselabError
from collapselab.textio import (
    FileFormatError,
    parquet_row_count,
    read_json,
    read_jsonl,
    read_parquet,
    read_text,
    read_yaml,
)


def _raises(fn, path, message: str, error: type[CollapselabError] = FileFormatError) -> None:
    with pytest.raises(error) as e:
        fn(path, error=error)
    assert str(e.value) == message
    assert "\n" not in str(e.value)


def test_text_that_is_not_utf8_names_file_and_line(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"first line\ncaf\xe9\n")
    _raises(read_text, p, f"{p}:2: not UTF-8 text (byte 0xe9 at offset 14); save the file as UTF-8")


def test_binary_file_is_not_text(tmp_path):
    p = tmp_path / "a.json"
    p.write_bytes(b'{"a":\n 1}\x00\x00\x00')  # valid UTF-8, but NUL bytes: no text file has them
    _raises(read_json, p, f"{p}:2: not a text file (NUL byte at character 9)")


def test_missing_file_and_folder(tmp_path):
    _raises(read_text, tmp_path / "nope.txt", f"{tmp_path / 'nope.txt'}: file does not exist")
    _raises(read_text, tmp_path, f"{tmp_path}: is a folder, expected a file")


def test_byte_order_mark_is_not_content(tmp_path):
    p = tmp_path / "a.json"
    p.write_bytes(b'\xef\xbb\xbf{"a": "\xc3\xa9"}')
    assert read_json(p) == {"a": "é"}


def test_json_errors_say_where_and_when_the_file_was_cut(tmp_path):
    p = tmp_path / "a.json"
    p.write_text("")
    _raises(read_json, p, f"{p}: empty, expected JSON")
    p.write_text('{"data": [\n  {"title": "T",')
    _raises(read_json, p, f"{p}:2:17: not valid JSON (Expecting property name enclosed in double quotes) (the text ends early: truncated?)")
    p.write_text('{"a": 1,, "b": 2}\n')
    _raises(read_json, p, f"{p}:1:9: not valid JSON (Expecting property name enclosed in double quotes)")


def test_jsonl_names_the_line(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text('{"id": 1}\n\n{"id": 2\n')
    rows = read_jsonl(p)
    assert next(rows) == (1, {"id": 1})
    with pytest.raises(FileFormatError, match=rf"^{p}:3: not valid JSON \(Expecting ',' delimiter at column 9\)$"):
        next(rows)


def test_yaml_errors_are_one_line_with_the_position(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text("experiment:\n  name: [unclosed\ndata: {}\n")
    with pytest.raises(ConfigError) as e:
        read_yaml(p, error=ConfigError)
    assert str(e.value).startswith(f"{p}:3:5: not valid YAML (while parsing a flow sequence expected ',' or ']'")
    assert "\n" not in str(e.value)
    p.write_text("   \n")
    _raises(read_yaml, p, f"{p}: empty, expected YAML")


def test_yaml_key_given_twice_is_refused(tmp_path):
    # PyYAML keeps the second silently; in a config the first value would vanish unseen.
    p = tmp_path / "a.yaml"
    p.write_text("training:\n  epochs: 1\n  lr: 0.1\n  epochs: 3\n")
    _raises(read_yaml, p, f"{p}:4:3: not valid YAML (key 'epochs' is given twice)")
    p.write_text("a: {x: 1}\nb: {x: 2}\n")  # equal keys in different mappings are fine
    assert read_yaml(p) == {"a": {"x": 1}, "b": {"x": 2}}


def test_parquet_reads_and_every_damage_is_one_named_line(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "n": [1, 2, 3]}), p)
    assert read_parquet(p, columns=["n"]).to_pydict() == {"n": [1, 2, 3]}
    assert parquet_row_count(p) == 3
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(p.read_bytes()[:-20])  # a copy interrupted: the footer is gone
    for fn in (read_parquet, parquet_row_count):
        with pytest.raises(ConfigError) as e:
            fn(cut, error=ConfigError)
        assert str(e.value).startswith(f"{cut}: not a readable Parquet file (") and "\n" not in str(e.value)
        _raises(fn, tmp_path / "nope.parquet", f"{tmp_path / 'nope.parquet'}: file does not exist")
        _raises(fn, tmp_path, f"{tmp_path}: is a folder, expected a file")
    with pytest.raises(FileFormatError, match=f"^{p}: not a readable Parquet file \\(.*scores"):
        read_parquet(p, columns=["scores"])


def test_progress_in_a_log_is_a_line_now_and_then_and_one_at_the_end(monkeypatch, capsys):
    from collapselab import textio

    clock = [100.0]
    monkeypatch.setattr(textio.time, "monotonic", lambda: clock[0])
    monkeypatch.delenv(textio.PROGRESS_ENV, raising=False)
    bar = textio.progress(100, "train replace g1", "step")  # stderr is not a terminal here
    for _ in range(100):
        clock[0] += 1.0  # a step a second: a line every 30 s
        bar.set_postfix(loss="2.500", refresh=False)
        bar.update(1)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "train replace g1: 30/100 steps (30 %), 30 s, about 70 s left, loss=2.500",
        "train replace g1: 60/100 steps (60 %), 60 s, about 40 s left, loss=2.500",
        "train replace g1: 90/100 steps (90 %), 90 s, about 10 s left, loss=2.500",
        "train replace g1: 100/100 steps (100 %), 100 s, loss=2.500",
    ]


@pytest.mark.parametrize(("mode", "shows"), [("off", False), ("lines", True), ("bar", True)])
def test_progress_mode_comes_from_the_environment(mode, shows, monkeypatch, capsys):
    from collapselab import textio

    monkeypatch.setenv(textio.PROGRESS_ENV, mode)
    bar = textio.progress(3, "generate g0", "prompt")
    bar.update(3)
    bar.close()
    assert ("generate g0" in capsys.readouterr().err) == shows
    silent = textio.progress(3, "rank 1", "step", show=False)  # another rank: never shown
    silent.update(3)
    silent.close()
    assert "rank 1" not in capsys.readouterr().err


def test_an_unknown_progress_mode_names_the_variable(monkeypatch):
    from collapselab import textio

    monkeypatch.setenv(textio.PROGRESS_ENV, "loud")
    with pytest.raises(textio.CollapselabError, match=r"^\$COLLAPSELAB_PROGRESS='loud': expected one of bar, lines, off$"):
        textio.progress_mode()
