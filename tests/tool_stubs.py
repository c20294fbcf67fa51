"""Executables named like the AMD tools, for the tests of the flow around them (no Vitis HLS or Vivado here).

Nothing here stands in for code under test: the flow's own Python (tool discovery, release checks, argument
passing, metadata) and its own Tcl (run_hls.tcl, build_overlay.tcl, block_design.tcl) run unchanged. A stub
prints the version banner the real tool prints (``vivado -version``: ``vivado v2022.1 (64-bit)``; Vitis HLS:
``Vitis HLS - High-Level Synthesis from C, C++ and OpenCL v2022.1 (64-bit)``), and when it is asked to run
a script it runs that script in ``tclsh`` with every vendor command recorded instead of executed
(``CALL <command> <args>`` lines in ``$RESILQ_STUB_LOG``). The Vivado stub also writes what an
implementation run leaves behind (bitstream, hardware handoff, reports) where Vivado writes them, with
post-route slacks and utilisation the test chooses.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

BANNERS = {"vivado": "vivado v{v} (64-bit)",
           "vitis_hls": "Vitis HLS - High-Level Synthesis from C, C++ and OpenCL v{v} (64-bit)"}

#: Recording stand-ins for the Vitis HLS / Vivado Tcl commands, sourced before the flow's script.
RECORDER = r'''
set ::resilq_stub_log [open $::env(RESILQ_STUB_LOG) a]
proc ::stub_record {args} { puts $::resilq_stub_log "CALL $args"; flush $::resilq_stub_log }
proc ::stub_env {name default} { expr {[info exists ::env($name)] ? $::env($name) : $default} }
proc unknown {args} { ::stub_record {*}$args; return [lindex $args end] }
proc version {args} { return [::stub_env RESILQ_STUB_VERSION 2022.1] }
proc get_board_parts {args} { ::stub_record get_board_parts {*}$args; return [::stub_env RESILQ_STUB_BOARD_PARTS ""] }
proc get_ipdefs {args} { ::stub_record get_ipdefs {*}$args; return [lindex $args end] }
proc get_runs {args} { return [lindex $args end] }
proc get_files {args} { return [lindex $args end] }
proc make_wrapper {args} { ::stub_record make_wrapper {*}$args; return resilq_wrapper.v }
proc get_cells {args} { ::stub_record get_cells {*}$args; return [::stub_env RESILQ_STUB_CELLS resilq_i/resilq_accel_0] }
proc get_property {name args} {
    switch -- $name {
        PROGRESS { return 100% }
        DIRECTORY { return [file join [::stub_env RESILQ_STUB_BUILD .] vivado resilq.runs [lindex $args end]] }
        STATS.WNS { return [::stub_env RESILQ_STUB_WNS 0.250] }
        STATS.WHS { return [::stub_env RESILQ_STUB_WHS 0.030] }
    }
    return ""
}
proc launch_runs {run args} {
    ::stub_record launch_runs $run {*}$args
    if {$run eq "impl_1"} {  # what an implementation run leaves behind
        set build [::stub_env RESILQ_STUB_BUILD .]
        set impl [file join $build vivado resilq.runs impl_1]
        file mkdir $impl
        set f [open [file join $impl resilq_wrapper.bit] w]; puts $f bitstream; close $f
        set handoff [file join $build vivado resilq.gen sources_1 bd resilq hw_handoff]
        file mkdir $handoff
        file copy -force $::env(RESILQ_STUB_HWH) [file join $handoff resilq.hwh]
    }
}
proc report_utilization {args} {
    ::stub_record report_utilization {*}$args
    set text [expr {"-cells" in $args ? $::env(RESILQ_STUB_UTIL_ACCEL) : $::env(RESILQ_STUB_UTIL)}]
    set f [open [lindex $args [expr {[lsearch $args -file] + 1}]] w]; puts -nonewline $f $text; close $f
}
proc report_timing_summary {args} {
    ::stub_record report_timing_summary {*}$args
    set f [open [lindex $args [expr {[lsearch $args -file] + 1}]] w]; puts $f "Design Timing Summary"; close $f
}
'''

#: A Vivado tool's command line -> run its -source script with -tclargs in tclsh (recorded).
VIVADO_STUB = r'''#!/bin/sh
case "$1" in -version) echo "{banner}"; exit 0;; esac
script=""; tclargs=""
while [ $# -gt 0 ]; do
  case "$1" in
    -source) script="$2"; shift 2;;
    -tclargs) shift; tclargs="$*"; break;;
    *) shift;;
  esac
done
exec tclsh "{runner}" "$script" $tclargs
'''

#: Vitis HLS: `vitis_hls -f SCRIPT` or `vitis-run --mode hls --tcl SCRIPT` -> the script in tclsh, no argv.
VITIS_STUB = r'''#!/bin/sh
case "$1" in -version|--version) echo "{banner}"; exit 0;; esac
script=""
while [ $# -gt 0 ]; do
  case "$1" in
    -f|--tcl) script="$2"; shift 2;;
    *) shift;;
  esac
done
echo "STUB $(basename "$0") script=$script args_file=$RESILQ_HLS_ARGS" >> "$RESILQ_STUB_LOG"
exec tclsh "{runner}" "$script"
'''

RUNNER = r'''source [file join [file dirname [info script]] recorder.tcl]
set script [lindex $argv 0]
set argv [lrange $argv 1 end]
set argc [llength $argv]
source $script
'''


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
    return path


def install(directory: Path, tools: dict[str, str]) -> dict[str, str]:
    """Write stub executables ``{name: release}`` (vivado, vitis_hls, vitis-run) into ``directory``; returns an
    environment with it first on PATH. The release is printed by the version flag (vitis-run prints
    nothing: its release comes from its install path, like the real one)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "recorder.tcl").write_text(RECORDER)
    runner = directory / "runner.tcl"
    runner.write_text(RUNNER)
    for name, release in tools.items():
        banner = BANNERS.get(name, "").format(v=release)
        template = VIVADO_STUB if name == "vivado" else VITIS_STUB
        _executable(directory / name, template.replace("{banner}", banner).replace("{runner}", str(runner)))
    return {**os.environ, "PATH": f"{directory}{os.pathsep}{os.environ['PATH']}"}


def calls(log: Path) -> list[str]:
    """The recorded commands (``CALL`` lines) of a stub run."""
    if not log.exists():
        return []
    return [line[5:] for line in log.read_text().splitlines() if line.startswith("CALL ")]


def utilization_report(lut: int, ff: int, bram: float, dsp: int, prohibited: bool = True) -> str:
    """A ``report_utilization`` text report of the 7-series layout Vivado 2022.1 writes (Prohibited column)."""
    head = "| Site Type | Used | Fixed | Prohibited | Available | Util% |" if prohibited else \
        "| Site Type | Used | Fixed | Available | Util% |"
    extra = " 0 |" if prohibited else ""

    def row(name, used, avail):
        return f"| {name} | {used} | 0 |{extra} {avail} | {100 * used / avail:.2f} |"

    return "\n".join(["1. Slice Logic", "-" * 14, "", "+----+", head, "+----+", row("Slice LUTs", lut, 53200),
                      "|   LUT as Logic | 1 | 0 |" + extra + " 53200 | 0.00 |", row("Slice Registers", ff, 106400),
                      "+----+", "", "2. Memory", "", head, row("Block RAM Tile", bram, 140),
                      "|   RAMB36/FIFO* | 1 | 0 |" + extra + " 140 | 0.71 |", "", "3. DSP", "", head,
                      row("DSPs", dsp, 220), "|   DSP48E1 only | 1 | | | |", ""])
