"""The board file: every field the HLS generator, the overlay build and the driver read, and its JSON snapshot."""

from __future__ import annotations

import pytest

from resilq.boards import BOARDS_DIR, load_board, write_board_json
from resilq.errors import FormatError


def test_pynq_z2_board_file():
    b = load_board("pynq-z2")
    assert (b.part, b.board_part, b.ddr_bytes) == ("xc7z020clg400-1", "tul.com.tw:pynq-z2:part0:1.0", 512 << 20)
    assert (b.ps_mhz, b.pl_mhz, b.pl_clock) == (650.0, 100.0, "FCLK_CLK0")
    assert (b.hp_port, b.hp_port_bits, b.lite_port, b.lite_base) == ("S_AXI_HP0", 64, "M_AXI_GP0", 0x4000_0000)
    sw = b.software
    assert (sw.pynq_image, sw.pynq, sw.python, sw.numpy, sw.vitis_hls, sw.vivado) == (
        "3.0.1", "3.0.1", "3.10", "1.21", "2022.1", "2022.1")


def test_json_snapshot_is_the_same_board(tmp_path):
    board = load_board("pynq-z2")
    snap = load_board(write_board_json(board, tmp_path))
    assert snap.as_dict() == board.as_dict() and snap.path.name == "board.json"


def test_board_without_a_toml_parser_uses_the_snapshot(tmp_path, monkeypatch):
    import resilq.boards as boards

    (tmp_path / "board.toml").write_text((BOARDS_DIR / "pynq-z2" / "board.toml").read_text())
    monkeypatch.setattr(boards, "_toml_loads", lambda: None)
    with pytest.raises(FormatError, match="needs Python >= 3.11 or the tomli package"):
        load_board(tmp_path / "board.toml")
    monkeypatch.undo()
    write_board_json(load_board(tmp_path / "board.toml"), tmp_path)
    monkeypatch.setattr(boards, "_toml_loads", lambda: None)
    assert load_board(tmp_path / "board.toml").path.name == "board.json"


@pytest.mark.parametrize("old,new,message", [
    ("hp_port_bits = 64", "hp_port_bits = 48", "hp_port_bits must be 32 or 64"),
    ('numpy = "1.21"', 'numpy = "latest"', "numpy must be a version"),
    ("lite_base = 0x40000000 ", "", "missing \\[axi\\] lite_base"),
])
def test_bad_board_files_are_refused(tmp_path, old, new, message):
    text = (BOARDS_DIR / "pynq-z2" / "board.toml").read_text()
    assert old in text
    (tmp_path / "board.toml").write_text(text.replace(old, new))
    with pytest.raises(FormatError, match=message):
        load_board(tmp_path / "board.toml")
